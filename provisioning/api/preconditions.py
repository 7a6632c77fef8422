"""ETag and If-Match for a portal user: a change over a row that changed since the client read it is refused.

The version is the one the admin's form carries (passportal.models.row_version): every write of a user, by
staff or by a run, moves it. A PATCH or PUT must say which version it read; the check and the write are made
under the row's lock (PostgreSQL) or the database's write lock (SQLite), so nothing slips in between.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers, status
from rest_framework.exceptions import APIException

from passportal.models import row_version

IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=True,
    description='Required. The ETag of the user as you read it (GET /api/users/<id>/, or the user\'s "version" '
                'quoted: "2026-12-02T10:42:03.123456+00:00"). If the user changed since (a sync run or another '
                "staff member), nothing is saved and the answer is 412 with the user as it is now; without "
                "If-Match the answer is 428. `*` deliberately writes over whatever the user holds now.")
ETAG = OpenApiParameter(
    "ETag", str, OpenApiParameter.HEADER, response=[200],
    description="The version of the user this answer shows: send it back in If-Match with a PATCH or PUT.")


class StaleSerializer(serializers.Serializer):
    detail = serializers.CharField()
    etag = serializers.CharField(help_text="The user's ETag now: send it in If-Match once you have reviewed it.")
    current = serializers.DictField(help_text="The user as it is now (the same fields as GET).")


class PreconditionRequiredSerializer(serializers.Serializer):
    detail = serializers.CharField()


def etag(updated_at: datetime) -> str:
    return f'"{row_version(updated_at)}"'


class PreconditionRequired(APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = ("Nothing was saved: send the user's ETag (from GET /api/users/<id>/) in the If-Match header, "
                      "so a change made since you read the user is not overwritten.")
    default_code = "precondition_required"


def if_match(header: str | None) -> list[str]:
    """The entity tags an If-Match header names; 428 when it names none."""
    tags = [tag.strip() for tag in (header or "").split(",") if tag.strip()]
    if not tags:
        raise PreconditionRequired()
    return tags


def matches(tags: list[str], updated_at: datetime) -> bool:
    # Strong comparison (RFC 9110 13.1.1): a weak tag W/"..." never matches.
    return "*" in tags or etag(updated_at) in tags


def stale_message(updated_at: datetime) -> str:
    changed_at = timezone.localtime(updated_at).strftime("%H:%M:%S")
    return (f"This user changed since you read it (at {changed_at}, by a sync or another staff member). Nothing was "
            "saved: review the user as it is now (below) and send your change again with its ETag in If-Match.")
