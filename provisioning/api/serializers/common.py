"""Helpers every part of the staff API's serializers shares: a level as people tell it apart, one-line names."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from passportal.models import PermissionLevel
from passportal.text import validate_one_line


def level_label(level: PermissionLevel | None) -> str:
    """A level as people tell it apart: two levels may share a name, one per kind ("Read Only (Site-User)")."""
    return str(level) if level is not None else ""


def one_line(value: str) -> str:
    try:
        validate_one_line(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc
    return value.strip()
