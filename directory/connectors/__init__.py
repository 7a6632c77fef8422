"""Connectors: each reads one kind of directory into plain records. They take plain settings and never
import models; `directory.sources` builds them from an integration."""

from __future__ import annotations

from .base import Connector, DirectoryAuthError, DirectoryError, DirectoryUnavailable

__all__ = ["Connector", "DirectoryAuthError", "DirectoryError", "DirectoryUnavailable"]
