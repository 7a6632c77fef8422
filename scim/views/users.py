"""/Users: list, search, create, read, replace, patch and delete a SCIM user; each write runs the user through the
engine in the same transaction (R7, R8)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from provisioning.planner import IssueReason

from .. import resources
from ..models import ScimUser
from ..resources import ScimError
from ..sync import open_issue_for
from .listing import paging, search_body, user_page
from .protocol import Ctx, error, json_response, lock_integration, run_engine, scim_view


@scim_view({"GET", "POST"})
def users(ctx: Ctx) -> HttpResponse:
    if ctx.request.method == "GET":
        start, count = paging(ctx.request.GET)
        return json_response(user_page(ctx, ctx.request.GET.get("filter"), start, count, ctx.params()))
    return _create_user(ctx)


@scim_view({"POST"})
def users_search(ctx: Ctx) -> HttpResponse:
    text, start, count, params = search_body(ctx)
    return json_response(user_page(ctx, text, start, count, params))


def _user(ctx: Ctx, scim_id: str, *, lock: bool = False) -> ScimUser:
    rows = ScimUser.objects.filter(integration=ctx.integration, scim_id=scim_id.strip().lower(),
                                   deleted_at__isnull=True)
    row = (rows.select_for_update() if lock else rows).first()
    if row is None:
        raise ScimError(404, f"no user {scim_id}")  # another integration's id too (R26)
    return row


@scim_view({"GET", "PUT", "PATCH", "DELETE"})
def user(ctx: Ctx, scim_id: str) -> HttpResponse:
    method = ctx.request.method
    if method == "GET":
        return json_response(resources.user_resource(_user(ctx, scim_id), ctx.base, ctx.params()))
    if method == "DELETE":
        return _delete_user(ctx, scim_id)
    body = ctx.body()
    with transaction.atomic():
        lock_integration(ctx.integration)
        row = _user(ctx, scim_id, lock=True)
        if method == "PUT":
            parsed = resources.parse_user(body, replacing=True)
            columns = resources.user_columns(parsed)
            if not _names_active(body):
                # Okta's full PUT may leave `active` out: keeping it is what Okta expects (RFC 7644 3.5.1).
                columns["active"] = row.active
                columns["data"]["active"] = row.active
        else:
            columns = resources.user_columns(resources.patched_user(row, body, ctx.base))
        _save_user(ctx, row, columns)
    return json_response(resources.user_resource(row, ctx.base, ctx.params()))


def _names_active(body: Any) -> bool:
    return isinstance(body, dict) and any(k.lower() == "active" for k in body)


def _taken(ctx: Ctx, key: str, but: int | None = None) -> ScimUser | None:
    rows = ScimUser.objects.filter(integration=ctx.integration, user_name_key=key)
    if but is not None:
        rows = rows.exclude(pk=but)
    return rows.first()


def _save_user(ctx: Ctx, row: ScimUser, columns: dict) -> None:
    other = _taken(ctx, columns["user_name_key"], but=row.pk)
    if other is not None and other.deleted_at is None:
        raise ScimError(409, f"userName {columns['user_name']} is already taken", "uniqueness")
    if other is not None:
        other.delete()  # a deleted user's tombstone gives way to a live user taking its name
    changed = [k for k, v in columns.items() if getattr(row, k) != v]
    for key, value in columns.items():
        setattr(row, key, value)
    row.version += 1
    row.save()
    ctx.resource_id = row.scim_id
    ctx.summary = f"user {row.user_name}: " + (", ".join(changed) if changed else "no change")
    run_engine(ctx, [row.scim_id])


def _create_user(ctx: Ctx) -> HttpResponse:
    body = ctx.body()
    parsed = resources.parse_user(body)
    columns = resources.user_columns(parsed)
    with transaction.atomic():
        lock_integration(ctx.integration)
        existing = _taken(ctx, columns["user_name_key"])
        if existing is not None and existing.deleted_at is None:
            raise ScimError(409, f"userName {columns['user_name']} is already taken", "uniqueness")
        if existing is not None:
            # Created again after a DELETE: the same identity comes back (its portal user with it).
            row = existing
            row.deleted_at = None
        else:
            row = ScimUser(integration=ctx.integration, scim_id=str(uuid.uuid4()), version=0)
        try:
            with transaction.atomic():
                _save_user(ctx, row, columns)
        except IntegrityError:
            raise ScimError(409, f"userName {columns['user_name']} is already taken", "uniqueness") from None
    ctx.summary = "created " + ctx.summary
    issue = open_issue_for(ctx.integration, row.scim_id)
    if issue is not None:
        # R7: stored as the IdP sent it (so its next cycle finds it by userName and updates it), refused
        # to the IdP with the reason, and a creation issue for staff that closes once the cause is fixed.
        refused_email = issue.reason in (IssueReason.NO_EMAIL, IssueReason.INVALID_EMAIL)
        status, scim_type = (400, "invalidValue") if refused_email else (409, "uniqueness")
        ctx.summary += f"; refused: {issue.message}"
        return error(status, f"The portal cannot create this user: {issue.message}", scim_type)
    location = f"{ctx.base}/Users/{row.scim_id}"
    return json_response(resources.user_resource(row, ctx.base, ctx.params()), 201, {"Location": location})


def _delete_user(ctx: Ctx, scim_id: str) -> HttpResponse:
    with transaction.atomic():
        lock_integration(ctx.integration)
        row = _user(ctx, scim_id, lock=True)
        # R8: deleted in the directory -> disabled in the portal, never deleted. The SCIM resource is gone
        # (404 from now on); its tombstone keeps the identity for a user created again with the same name.
        groups = list(row.memberships.values_list("group_id", flat=True))
        row.memberships.all().delete()
        row.deleted_at = timezone.now()
        row.version += 1
        row.save(update_fields=["deleted_at", "version", "updated_at"])
        ctx.resource_id = row.scim_id
        ctx.summary = f"deleted user {row.user_name}" + (f" (left {len(groups)} groups)" if groups else "")
        run_engine(ctx, [row.scim_id])
    return HttpResponse(status=204)
