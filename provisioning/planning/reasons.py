"""Why a sync disables a user, and why it cannot create one: the values the planner hands the applier.

Each is an enum in one place; the models build their choices from them (`PortalUser.disabled_reason`,
`CreationIssue.reason`). Disable reasons are the portal user's, so they live in `passportal.reasons`.
"""

from __future__ import annotations

from enum import StrEnum

from passportal.reasons import DisableReason

__all__ = ["DisableReason", "IssueReason"]


class IssueReason(StrEnum):
    """Why a directory user in scope is not created or keeps its portal email (CreationIssue.reason, R4, R7)."""

    NO_EMAIL = "no_email"
    INVALID_EMAIL = "invalid_email"
    EMAIL_TAKEN = "email_taken"  # a portal user of the client that no directory user here claims holds it
    DUPLICATE_EMAIL = "duplicate_email"  # another directory user (here or in another directory) holds it
