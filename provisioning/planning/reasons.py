"""Why a sync disables a user, and why it cannot create one: the values the planner hands the applier."""

from __future__ import annotations

# Reasons a sync disables a user (PortalUser.disabled_reason values).
DIRECTORY = "directory"
DELETED = "deleted"
OUT_OF_SCOPE = "out_of_scope"
LINK_OFF = "link_off"

# Creation issue reasons (CreationIssue.reason values).
NO_EMAIL = "no_email"
INVALID_EMAIL = "invalid_email"
EMAIL_TAKEN = "email_taken"
DUPLICATE_EMAIL = "duplicate_email"
