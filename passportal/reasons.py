"""Why a sync disabled a portal user: the values of `PortalUser.disabled_reason`, in one place.

Plain Python (no Django): the planner, which is pure, decides with these, and the model builds its choices
from them. A staff disable is not among them: it is kept apart in `PortalUser.disabled_by_staff` (R8).
"""

from __future__ import annotations

from enum import StrEnum


class DisableReason(StrEnum):
    DIRECTORY = "directory"  # disabled in the directory (R8)
    DELETED = "deleted"  # deleted in the directory (R8)
    OUT_OF_SCOPE = "out_of_scope"  # in no mapped folder any more, or its folder is gone (R9, R19, G4)
    LINK_OFF = "link_off"  # the integration's link was switched off (R10)
