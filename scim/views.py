"""The SCIM 2.0 endpoints of one integration (/scim/v2/<integration id>/...): thin views over the store.

Every request needs the integration's bearer token (401 with a SCIM error otherwise); a token reaches
its own integration only, and any id of another integration is "not found" (R26). They are
csrf_exempt: nothing here is authenticated by a cookie. A write stores the new state, runs the users it
touches through the engine (scim/sync.py) in the same transaction, and is recorded as a ScimEvent (R24).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from directory.models import Integration
from provisioning.planner import INVALID_EMAIL, NO_EMAIL

from . import discovery, filters, resources
from .models import ScimEvent, ScimGroup, ScimMembership, ScimUser
from .resources import ScimError
from .sync import ensure_folders, open_issue_for, push
from .tokens import authenticate

CONTENT_TYPE = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
DEFAULT_COUNT = 100


def _json(data: Any, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(data, ensure_ascii=False), status=status, content_type=CONTENT_TYPE)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def error(status: int, detail: str, scim_type: str | None = None, headers: dict | None = None) -> HttpResponse:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return _json(body, status, headers)


class Ctx:
    """What a view needs: the integration the token acts for, and the base URL of its endpoints."""

    def __init__(self, request: HttpRequest, integration: Integration) -> None:
        self.request, self.integration = request, integration
        self.base = request.build_absolute_uri(f"/scim/v2/{integration.pk}").rstrip("/")
        self.event_run = None
        self.resource_id = ""
        self.summary = ""

    def body(self) -> Any:
        try:
            raw = self.request.body
        except RequestDataTooBig:
            raise ScimError(413, "the request body is too large", "tooLarge") from None
        try:
            return json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ScimError(400, "the body is not valid JSON", "invalidSyntax") from None

    def params(self) -> dict | None:
        return _response_params(self.request.GET)


def _response_params(source) -> dict | None:
    params = {}
    for key in ("attributes", "excludedAttributes"):
        value = source.get(key)
        if value:
            params[key] = value if isinstance(value, str | list) else str(value)
    return params or None


WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _answer(view, ctx: Ctx, kwargs: dict) -> HttpResponse:
    try:
        return view(ctx, **kwargs)
    except ScimError as exc:
        ctx.summary = exc.detail
        return error(exc.status, exc.detail, exc.scim_type)


def scim_view(methods: set[str]):
    """Authenticate, dispatch, turn ScimError into SCIM error bodies, record writes (R24)."""

    def wrap(view: Callable[..., HttpResponse]):
        @csrf_exempt
        @functools.wraps(view)
        def inner(request: HttpRequest, integration_id: int, **kwargs) -> HttpResponse:
            integration = authenticate(integration_id, request.headers.get("Authorization", ""))
            if integration is None:
                return error(401, "A valid bearer token of this integration is required.",
                             headers={"WWW-Authenticate": 'Bearer realm="scim"'})
            if request.method not in methods:
                allowed = {"Allow": ", ".join(sorted(methods))}
                return error(405, f"{request.method} is not allowed here.", headers=allowed)
            ctx = Ctx(request, integration)
            if request.method not in WRITES or request.path.rstrip("/").endswith(".search"):
                return _answer(view, ctx, kwargs)
            # One transaction, one commit: the new state, its run and its record (a refused write's own
            # changes are rolled back by the view's inner block; its record stays).
            with transaction.atomic():
                response = _answer(view, ctx, kwargs)
                ScimEvent.objects.create(
                    integration=integration, method=request.method, path=request.path[:300],
                    resource_id=ctx.resource_id or kwargs.get("scim_id", "")[:36], status=response.status_code,
                    summary=ctx.summary[:2000], run=ctx.event_run)
            return response

        return inner

    return wrap


# ---------------------------------------------------------------- discovery


@scim_view({"GET"})
def service_provider_config(ctx: Ctx) -> HttpResponse:
    return _json(discovery.service_provider_config(ctx.base))


@scim_view({"GET"})
def schemas(ctx: Ctx) -> HttpResponse:
    found = discovery.schemas(ctx.base)
    return _json(_list(found, len(found), 1))


@scim_view({"GET"})
def schema(ctx: Ctx, schema_id: str) -> HttpResponse:
    for item in discovery.schemas(ctx.base):
        if item["id"] == schema_id:
            return _json(item)
    raise ScimError(404, f"no schema {schema_id}")


@scim_view({"GET"})
def resource_types(ctx: Ctx) -> HttpResponse:
    found = discovery.resource_types(ctx.base)
    return _json(_list(found, len(found), 1))


@scim_view({"GET"})
def resource_type(ctx: Ctx, type_id: str) -> HttpResponse:
    for item in discovery.resource_types(ctx.base):
        if item["id"] == type_id:
            return _json(item)
    raise ScimError(404, f"no resource type {type_id}")


@scim_view({"GET", "POST", "PUT", "PATCH", "DELETE"})
def not_found(ctx: Ctx, rest: str = "") -> HttpResponse:
    raise ScimError(404, "no such endpoint")


# ---------------------------------------------------------------- listing


def _list(resources_: list[dict], total: int, start: int) -> dict:
    return {"schemas": [LIST_SCHEMA], "totalResults": total, "itemsPerPage": len(resources_), "startIndex": start,
            "Resources": resources_}


def _paging(source) -> tuple[int, int]:
    def number(key: str, default: int) -> int:
        value = source.get(key)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ScimError(400, f"{key} must be a whole number", "invalidValue") from None

    start = max(1, number("startIndex", 1))
    count = min(max(0, number("count", DEFAULT_COUNT)), discovery.MAX_RESULTS)
    return start, count


def _user_query(ctx: Ctx, text: str | None):
    rows = ScimUser.objects.filter(integration=ctx.integration, deleted_at__isnull=True)
    if text:
        rows = rows.filter(filters.to_q(text, filters.USER_COLUMNS))
    return rows.order_by("pk")


def _group_query(ctx: Ctx, text: str | None):
    rows = ScimGroup.objects.filter(integration=ctx.integration)
    if text:
        rows = rows.filter(filters.to_q(text, filters.GROUP_COLUMNS)).distinct()
    return rows.order_by("pk")


def _wants_members(params: dict | None) -> bool:
    if not params:
        return True
    excluded = str(params.get("excludedAttributes", "")).lower()
    attributes = str(params.get("attributes", "")).lower()
    if "members" in [a.strip().split(".")[-1] for a in excluded.split(",")]:
        return False
    return not attributes or "members" in attributes


def _members_of(groups: list[ScimGroup]) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {g.pk: [] for g in groups}
    rows = (ScimMembership.objects.filter(group_id__in=list(out)).order_by("pk")
            .values_list("group_id", "user__scim_id", "display"))
    for group_id, scim_id, display in rows:
        out[group_id].append((scim_id, display))
    return out


def _user_page(ctx: Ctx, text, start: int, count: int, params) -> dict:
    rows = _user_query(ctx, text)
    total = rows.count()
    page = list(rows[start - 1:start - 1 + count]) if count else []
    return _list([resources.user_resource(r, ctx.base, params) for r in page], total, start)


def _group_page(ctx: Ctx, text, start: int, count: int, params) -> dict:
    rows = _group_query(ctx, text)
    total = rows.count()
    page = list(rows[start - 1:start - 1 + count]) if count else []
    members = _members_of(page) if _wants_members(params) else {}
    return _list([resources.group_resource(g, ctx.base, members.get(g.pk), params) for g in page], total, start)


def _search_body(ctx: Ctx) -> tuple[str | None, int, int, dict | None]:
    body = ctx.body()
    if not isinstance(body, dict):
        raise ScimError(400, "a search body is a JSON object", "invalidSyntax")
    start, count = _paging(body)
    params = _response_params({k: ",".join(v) if isinstance(v, list) else v for k, v in body.items()
                               if k in ("attributes", "excludedAttributes")})
    return body.get("filter"), start, count, params


# ---------------------------------------------------------------- users


@scim_view({"GET", "POST"})
def users(ctx: Ctx) -> HttpResponse:
    if ctx.request.method == "GET":
        start, count = _paging(ctx.request.GET)
        return _json(_user_page(ctx, ctx.request.GET.get("filter"), start, count, ctx.params()))
    return _create_user(ctx)


@scim_view({"POST"})
def users_search(ctx: Ctx) -> HttpResponse:
    text, start, count, params = _search_body(ctx)
    return _json(_user_page(ctx, text, start, count, params))


@scim_view({"POST"})
def root_search(ctx: Ctx) -> HttpResponse:
    """/.search over Users then Groups; a filter naming an attribute one type lacks matches none of it."""
    text, start, count, params = _search_body(ctx)
    parts, refused = [], 0
    for query in (_user_query, _group_query):
        try:
            parts.append(query(ctx, text))
        except ScimError:
            refused += 1
            if refused == 2:
                raise
    totals = [q.count() for q in parts]
    found: list[dict] = []
    skip, room = start - 1, count
    for query, total in zip(parts, totals, strict=True):
        if skip >= total:
            skip -= total
            continue
        rows = list(query[skip:skip + room]) if room else []
        skip = 0
        room -= len(rows)
        for row in rows:
            if isinstance(row, ScimUser):
                found.append(resources.user_resource(row, ctx.base, params))
            else:
                found.append(resources.group_resource(row, ctx.base, _members_of([row])[row.pk], params))
    return _json(_list(found, sum(totals), start))


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
        return _json(resources.user_resource(_user(ctx, scim_id), ctx.base, ctx.params()))
    if method == "DELETE":
        return _delete_user(ctx, scim_id)
    body = ctx.body()
    with transaction.atomic():
        _lock(ctx.integration)
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
    return _json(resources.user_resource(row, ctx.base, ctx.params()))


def _names_active(body: Any) -> bool:
    return isinstance(body, dict) and any(k.lower() == "active" for k in body)


def _lock(integration: Integration) -> None:
    """SCIM writes of one integration run one at a time (their runs and the R22 window count stay exact)."""
    Integration.objects.select_for_update().filter(pk=integration.pk).values_list("pk", flat=True).first()


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
    _engine(ctx, [row.scim_id])


def _engine(ctx: Ctx, scim_ids) -> None:
    pushed = push(ctx.integration, scim_ids)
    ctx.event_run = pushed.run
    if pushed.run is not None:
        counts = {k: v for k, v in pushed.run.counts.items() if v}
        ctx.summary += "; run " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "with no change")


def _create_user(ctx: Ctx) -> HttpResponse:
    body = ctx.body()
    parsed = resources.parse_user(body)
    columns = resources.user_columns(parsed)
    with transaction.atomic():
        _lock(ctx.integration)
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
        status, scim_type = (400, "invalidValue") if issue.reason in (NO_EMAIL, INVALID_EMAIL) else (409, "uniqueness")
        ctx.summary += f"; refused: {issue.message}"
        return error(status, f"The portal cannot create this user: {issue.message}", scim_type)
    location = f"{ctx.base}/Users/{row.scim_id}"
    return _json(resources.user_resource(row, ctx.base, ctx.params()), 201, {"Location": location})


def _delete_user(ctx: Ctx, scim_id: str) -> HttpResponse:
    with transaction.atomic():
        _lock(ctx.integration)
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
        _engine(ctx, [row.scim_id])
    return HttpResponse(status=204)


# ---------------------------------------------------------------- groups


@scim_view({"GET", "POST"})
def groups(ctx: Ctx) -> HttpResponse:
    if ctx.request.method == "GET":
        start, count = _paging(ctx.request.GET)
        return _json(_group_page(ctx, ctx.request.GET.get("filter"), start, count, ctx.params()))
    return _create_group(ctx)


@scim_view({"POST"})
def groups_search(ctx: Ctx) -> HttpResponse:
    text, start, count, params = _search_body(ctx)
    return _json(_group_page(ctx, text, start, count, params))


def _group(ctx: Ctx, scim_id: str, *, lock: bool = False) -> ScimGroup:
    rows = ScimGroup.objects.filter(integration=ctx.integration, scim_id=scim_id.strip().lower())
    row = (rows.select_for_update() if lock else rows).first()
    if row is None:
        raise ScimError(404, f"no group {scim_id}")
    return row


def _group_response(ctx: Ctx, row: ScimGroup, status: int = 200, headers: dict | None = None) -> HttpResponse:
    params = ctx.params()
    members = _members_of([row])[row.pk] if _wants_members(params) else None
    return _json(resources.group_resource(row, ctx.base, members, params), status, headers)


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
        _lock(ctx.integration)
        row = ScimGroup.objects.create(integration=ctx.integration, scim_id=str(uuid.uuid4()),
                                       display_name=parsed.display_name.strip(),
                                       external_id=parsed.external_id or "")
        changed = _set_members(ctx, row, resources.group_members(parsed))
        ensure_folders(ctx.integration)
        ctx.resource_id = row.scim_id
        ctx.summary = f"created group {row.display_name} with {len(changed)} members"
        _engine(ctx, changed)
    return _group_response(ctx, row, 201, {"Location": f"{ctx.base}/Groups/{row.scim_id}"})


@scim_view({"GET", "PUT", "PATCH", "DELETE"})
def group(ctx: Ctx, scim_id: str) -> HttpResponse:
    method = ctx.request.method
    if method == "GET":
        return _group_response(ctx, _group(ctx, scim_id))
    with transaction.atomic():
        _lock(ctx.integration)
        row = _group(ctx, scim_id, lock=True)
        ctx.resource_id = row.scim_id
        if method == "DELETE":
            # The folder is marked gone (R19): its mapping stays, its members fall out of scope (R9).
            members = list(row.memberships.values_list("user__scim_id", flat=True))
            name = row.display_name
            row.delete()
            ensure_folders(ctx.integration)
            ctx.summary = f"deleted group {name} ({len(members)} members)"
            _engine(ctx, members)
            return HttpResponse(status=204)
        body = ctx.body()
        members_now = [(s, d) for s, d in _members_of([row])[row.pk]]
        if method == "PUT":
            parsed = resources.parse_group(body, replacing=True)
            keep_members = not (isinstance(body, dict) and any(k.lower() == "members" for k in body))
            wanted = dict(members_now) if keep_members else resources.group_members(parsed)
        else:
            parsed = resources.patched_group(row, members_now, body, ctx.base)
            wanted = resources.group_members(parsed)
        renamed = (parsed.display_name.strip(), parsed.external_id or "") != (row.display_name, row.external_id)
        row.display_name, row.external_id = parsed.display_name.strip(), parsed.external_id or ""
        row.version += 1
        row.save()
        changed = _set_members(ctx, row, wanted)
        if renamed:
            ensure_folders(ctx.integration)
        ctx.summary = f"group {row.display_name}: {len(changed)} members changed" + (", renamed" if renamed else "")
        _engine(ctx, changed)
    if method == "PATCH" and not ctx.params():
        return HttpResponse(status=204)
    return _group_response(ctx, row)
