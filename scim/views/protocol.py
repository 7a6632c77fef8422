"""What every SCIM endpoint shares: the bearer token, SCIM's JSON and error bodies, one write at a time, and a
write's record and run (R24, R26)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from directory.models import Integration
from provisioning.models import SyncRun

from ..models import ScimEvent
from ..resources import ScimError
from ..sync import push
from ..tokens import authenticate

CONTENT_TYPE = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(data, ensure_ascii=False), status=status, content_type=CONTENT_TYPE)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def error(status: int, detail: str, scim_type: str | None = None, headers: dict | None = None) -> HttpResponse:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return json_response(body, status, headers)


class Ctx:
    """What a view needs: the integration the token acts for, and the base URL of its endpoints."""

    def __init__(self, request: HttpRequest, integration: Integration) -> None:
        self.request, self.integration = request, integration
        self.base = request.build_absolute_uri(f"/scim/v2/{integration.pk}").rstrip("/")
        self.event_run: SyncRun | None = None
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
        return response_params(self.request.GET)


def response_params(source: Mapping[str, Any]) -> dict | None:
    params: dict[str, Any] = {}
    for key in ("attributes", "excludedAttributes"):
        value = source.get(key)
        if value:
            params[key] = value if isinstance(value, str | list) else str(value)
    return params or None


WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _answer(view: Callable[..., HttpResponse], ctx: Ctx, kwargs: dict[str, Any]) -> HttpResponse:
    try:
        return view(ctx, **kwargs)
    except ScimError as exc:
        ctx.summary = exc.detail
        return error(exc.status, exc.detail, exc.scim_type)


def scim_view(methods: set[str]) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Authenticate, dispatch, turn ScimError into SCIM error bodies, record writes (R24)."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def inner(request: HttpRequest, integration_id: int, **kwargs: Any) -> HttpResponse:
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


def lock_integration(integration: Integration) -> None:
    """SCIM writes of one integration run one at a time (their runs and the R22 window count stay exact)."""
    Integration.objects.select_for_update().filter(pk=integration.pk).values_list("pk", flat=True).first()


def run_engine(ctx: Ctx, scim_ids: Collection[str]) -> None:
    pushed = push(ctx.integration, scim_ids)
    ctx.event_run = pushed.run
    if pushed.run is not None:
        counts = {k: v for k, v in pushed.run.counts.items() if v}
        ctx.summary += "; run " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "with no change")
