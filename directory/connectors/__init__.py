"""Connectors: each reads one kind of directory into plain records. They take plain settings and never
import models; `directory.sources` builds them from an integration."""

from __future__ import annotations

from typing import Any

from .base import Connector, DirectoryAuthError, DirectoryError, DirectoryUnavailable

__all__ = ["Connector", "DirectoryAuthError", "DirectoryError", "DirectoryUnavailable", "connector_for"]


def connector_for(integration: Any) -> Connector:
    """Moved to `directory.sources`: kept only while provisioning's run pipeline is being split (issue 18)."""
    from directory.sources import connector_for as build

    return build(integration)
