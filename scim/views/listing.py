"""Lists and searches: GET with a filter and paging, POST .search on Users, Groups and the root (RFC 7644 3.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse

from .. import discovery, filters, resources
from ..models import ScimGroup, ScimMembership, ScimUser
from ..resources import ScimError
from .protocol import Ctx, json_response, response_params, scim_view

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
DEFAULT_COUNT = 100


def list_body(resources_: list[dict], total: int, start: int) -> dict:
    return {"schemas": [LIST_SCHEMA], "totalResults": total, "itemsPerPage": len(resources_), "startIndex": start,
            "Resources": resources_}


def paging(source: Mapping[str, Any]) -> tuple[int, int]:
    def number(key: str, default: int) -> int:
        value: Any = source.get(key)  # a query string's text, or a search body's JSON value
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ScimError(400, f"{key} must be a whole number", "invalidValue") from None

    start = max(1, number("startIndex", 1))
    count = min(max(0, number("count", DEFAULT_COUNT)), discovery.MAX_RESULTS)
    return start, count


def user_query(ctx: Ctx, text: str | None) -> QuerySet[ScimUser]:
    rows = ScimUser.objects.filter(integration=ctx.integration, deleted_at__isnull=True)
    if text:
        rows = rows.filter(filters.to_q(text, filters.USER_COLUMNS))
    return rows.order_by("pk")


def group_query(ctx: Ctx, text: str | None) -> QuerySet[ScimGroup]:
    rows = ScimGroup.objects.filter(integration=ctx.integration)
    if text:
        rows = rows.filter(filters.to_q(text, filters.GROUP_COLUMNS)).distinct()
    return rows.order_by("pk")


def wants_members(params: dict | None) -> bool:
    if not params:
        return True
    excluded = str(params.get("excludedAttributes", "")).lower()
    attributes = str(params.get("attributes", "")).lower()
    if "members" in [a.strip().split(".")[-1] for a in excluded.split(",")]:
        return False
    return not attributes or "members" in attributes


def members_of(groups: list[ScimGroup]) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {g.pk: [] for g in groups}
    rows = (ScimMembership.objects.filter(group_id__in=list(out)).order_by("pk")
            .values_list("group_id", "user__scim_id", "display"))
    for group_id, scim_id, display in rows:
        out[group_id].append((scim_id, display))
    return out


def user_page(ctx: Ctx, text: str | None, start: int, count: int, params: dict | None) -> dict:
    rows = user_query(ctx, text)
    total = rows.count()
    page = list(rows[start - 1:start - 1 + count]) if count else []
    return list_body([resources.user_resource(r, ctx.base, params) for r in page], total, start)


def group_page(ctx: Ctx, text: str | None, start: int, count: int, params: dict | None) -> dict:
    rows = group_query(ctx, text)
    total = rows.count()
    page = list(rows[start - 1:start - 1 + count]) if count else []
    members = members_of(page) if wants_members(params) else {}
    return list_body([resources.group_resource(g, ctx.base, members.get(g.pk), params) for g in page], total, start)


def search_body(ctx: Ctx) -> tuple[str | None, int, int, dict | None]:
    body = ctx.body()
    if not isinstance(body, dict):
        raise ScimError(400, "a search body is a JSON object", "invalidSyntax")
    start, count = paging(body)
    params = response_params({k: ",".join(v) if isinstance(v, list) else v for k, v in body.items()
                               if k in ("attributes", "excludedAttributes")})
    return body.get("filter"), start, count, params


@scim_view({"POST"})
def root_search(ctx: Ctx) -> HttpResponse:
    """/.search over Users then Groups; a filter naming an attribute one type lacks matches none of it."""
    text, start, count, params = search_body(ctx)
    parts: list[QuerySet[ScimUser] | QuerySet[ScimGroup]] = []
    refused = 0
    for make_query in (user_query, group_query):
        try:
            parts.append(make_query(ctx, text))
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
        rows: list[ScimUser | ScimGroup] = list(query[skip:skip + room]) if room else []
        skip = 0
        room -= len(rows)
        for row in rows:
            if isinstance(row, ScimUser):
                found.append(resources.user_resource(row, ctx.base, params))
            else:
                found.append(resources.group_resource(row, ctx.base, members_of([row])[row.pk], params))
    return json_response(list_body(found, sum(totals), start))
