"""Discovery (RFC 7644 4): what this server supports, its schemas and resource types; anything else is 404."""

from __future__ import annotations

from django.http import HttpResponse

from .. import discovery
from ..resources import ScimError
from .listing import list_body
from .protocol import Ctx, json_response, scim_view


@scim_view({"GET"})
def service_provider_config(ctx: Ctx) -> HttpResponse:
    return json_response(discovery.service_provider_config(ctx.base))


@scim_view({"GET"})
def schemas(ctx: Ctx) -> HttpResponse:
    found = discovery.schemas(ctx.base)
    return json_response(list_body(found, len(found), 1))


@scim_view({"GET"})
def schema(ctx: Ctx, schema_id: str) -> HttpResponse:
    for item in discovery.schemas(ctx.base):
        if item["id"] == schema_id:
            return json_response(item)
    raise ScimError(404, f"no schema {schema_id}")


@scim_view({"GET"})
def resource_types(ctx: Ctx) -> HttpResponse:
    found = discovery.resource_types(ctx.base)
    return json_response(list_body(found, len(found), 1))


@scim_view({"GET"})
def resource_type(ctx: Ctx, type_id: str) -> HttpResponse:
    for item in discovery.resource_types(ctx.base):
        if item["id"] == type_id:
            return json_response(item)
    raise ScimError(404, f"no resource type {type_id}")


@scim_view({"GET", "POST", "PUT", "PATCH", "DELETE"})
def not_found(ctx: Ctx, rest: str = "") -> HttpResponse:
    raise ScimError(404, "no such endpoint")
