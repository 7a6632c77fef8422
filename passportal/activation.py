"""Transitional: the old home of the activation code, kept only while passportal/admin.py (the resend action and
the email to a user staff create) and provisioning/applier.py still import from here. The link tokens are in
passportal/tokens.py, the emails in notifications/activation.py; this module goes, with its entry under
ignore_imports in .importlinter, once those two callers import from their new homes."""

from notifications.activation import queue_activation_emails, void_tokens_for

__all__ = ["queue_activation_emails", "void_tokens_for"]
