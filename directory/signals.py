"""Signals the directory app sends; the provisioning engine listens (directory never imports it)."""

from django.dispatch import Signal

# Sent after an agent upload is committed. Keyword arguments: integration, upload.
agent_upload_committed = Signal()
