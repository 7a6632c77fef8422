"""/Groups: list, search, create, read, replace, patch and delete a SCIM group; a group is a folder (R19) and a
change of its members runs those users through the engine (R9)."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.http import HttpResponse

from .. import resources
from ..models import ScimGroup, ScimMembership, ScimUser
from ..resources import ScimError
from ..sync import ensure_folders
from .listing import group_page, members_of, paging, search_body, wants_members
from .protocol import Ctx, json_response, lock_integration, run_engine, scim_view


@scim_view({"GET", "POST"})
def groups(ctx: Ctx) -> HttpResponse:
    if ctx.request.method == "GET":
        start, count = paging(ctx.request.GET)
        return json_response(group_page(ctx, ctx.request.GET.get("filter"), start, count, ctx.params()))
    return _create_group(ctx)


@scim_view({"POST"})
def groups_search(ctx: Ctx) -> HttpResponse:
    text, start, count, params = search_body(ctx)
    return json_response(group_page(ctx, text, start, count, params))


def _group(ctx: Ctx, scim_id: str, *, lock: bool = False) -> ScimGroup:
    rows = ScimGroup.objects.filter(integration=ctx.integration, scim_id=scim_id.strip().lower())
    row = (rows.select_for_update() if lock else rows).first()
    if row is None:
        raise ScimError(404, f"no group {scim_id}")
    return row


def _group_response(ctx: Ctx, row: ScimGroup, status: int = 200, headers: dict | None = None) -> HttpResponse:
    params = ctx.params()
    members = members_of([row])[row.pk] if wants_members(params) else None
    return json_response(resources.group_resource(row, ctx.base, members, params), status, headers)


def _set_members(ctx: Ctx, row: ScimGroup, wanted: dict[str, str]) -> set[str]:
    """Make the group's members exactly `wanted` (user id -> display); returns the user ids that changed."""
    current = {scim_id: (pk, display) for pk, scim_id, display in
               row.memberships.values_list("pk", "user__scim_id", "display")}
    added = [i for i in wanted if i not in current]
    users = dict(ScimUser.objects.filter(integration=ctx.integration, scim_id__in=added, deleted_at__isnull=True)
                 .values_list("scim_id", "pk")) if added else {}
    unknown = [i for i in added if i not in users]
    if unknown:
        raise ScimError(400, f"members: no user {unknown[0]} in this integration (members are users pushed "
                             "here first)", "invalidValue")
    removed = [i for i in current if i not in wanted]
    if removed:
        ScimMembership.objects.filter(pk__in=[current[i][0] for i in removed]).delete()
    ScimMembership.objects.bulk_create(
        [ScimMembership(group=row, user_id=users[i], display=(wanted[i] or "")[:256]) for i in added],
        batch_size=2000)
    for scim_id, (pk, display) in current.items():
        if scim_id in wanted and wanted[scim_id] != display:
            ScimMembership.objects.filter(pk=pk).update(display=(wanted[scim_id] or "")[:256])
    return {*added, *removed}


def _create_group(ctx: Ctx) -> HttpResponse:
    parsed = resources.parse_group(ctx.body())
    with transaction.atomic():
        lock_integration(ctx.integration)
        row = ScimGroup.objects.create(integration=ctx.integration, scim_id=str(uuid.uuid4()),
                                       display_name=resources.group_name(parsed),
                                       external_id=parsed.external_id or "")
        changed = _set_members(ctx, row, resources.group_members(parsed))
        ensure_folders(ctx.integration)
        ctx.resource_id = row.scim_id
        ctx.summary = f"created group {row.display_name} with {len(changed)} members"
        run_engine(ctx, changed)
    return _group_response(ctx, row, 201, {"Location": f"{ctx.base}/Groups/{row.scim_id}"})


@scim_view({"GET", "PUT", "PATCH", "DELETE"})
def group(ctx: Ctx, scim_id: str) -> HttpResponse:
    method = ctx.request.method
    if method == "GET":
        return _group_response(ctx, _group(ctx, scim_id))
    with transaction.atomic():
        lock_integration(ctx.integration)
        row = _group(ctx, scim_id, lock=True)
        ctx.resource_id = row.scim_id
        if method == "DELETE":
            # The folder is marked gone (R19): its mapping stays, its members fall out of scope (R9).
            members = list(row.memberships.values_list("user__scim_id", flat=True))
            name = row.display_name
            row.delete()
            ensure_folders(ctx.integration)
            ctx.summary = f"deleted group {name} ({len(members)} members)"
            run_engine(ctx, members)
            return HttpResponse(status=204)
        body = ctx.body()
        members_now = [(s, d) for s, d in members_of([row])[row.pk]]
        if method == "PUT":
            parsed = resources.parse_group(body, replacing=True)
            keep_members = not (isinstance(body, dict) and any(k.lower() == "members" for k in body))
            wanted = dict(members_now) if keep_members else resources.group_members(parsed)
        else:
            parsed = resources.patched_group(row, members_now, body, ctx.base)
            wanted = resources.group_members(parsed)
        renamed = (resources.group_name(parsed), parsed.external_id or "") != (row.display_name, row.external_id)
        row.display_name, row.external_id = resources.group_name(parsed), parsed.external_id or ""
        row.version += 1
        row.save()
        changed = _set_members(ctx, row, wanted)
        if renamed:
            ensure_folders(ctx.integration)
        ctx.summary = f"group {row.display_name}: {len(changed)} members changed" + (", renamed" if renamed else "")
        run_engine(ctx, changed)
    if method == "PATCH" and not ctx.params():
        return HttpResponse(status=204)
    return _group_response(ctx, row)
