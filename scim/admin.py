"""SCIM integrations in the admin: endpoint URL, token (shown once), users and groups pushed, recent requests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from directory.models import Integration, IntegrationKind
from passportal.actors import actor_of

from .models import ScimEvent, ScimIntegration
from .sync import ensure_folders
from .tokens import grace, issue_token

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

ERRORS_SINCE = timedelta(hours=24)


class _Activity(TypedDict):
    """ScimIntegrationAdmin.get_queryset's annotations."""

    last_request_at: datetime | None
    error_count: int
    user_count: int
    group_count: int


def scim_url(request: HttpRequest, integration: Integration) -> str:
    return request.build_absolute_uri(f"/scim/v2/{integration.pk}/")


@admin.register(ScimIntegration)
class ScimIntegrationAdmin(admin.ModelAdmin):
    list_display = ["name", "client", "link_enabled", "last_request", "errors_24h", "users", "groups"]
    list_filter = ["link_enabled", "client"]
    fields = ["client", "name", "link_enabled", "disable_threshold_percent", "disable_threshold_minimum",
              "endpoint", "token_state", "recent_requests"]
    readonly_fields = ["endpoint", "token_state", "recent_requests"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ScimIntegration]:
        since = timezone.now() - ERRORS_SINCE
        return (super().get_queryset(request).filter(kind=IntegrationKind.SCIM).select_related("client")
                .annotate(last_request_at=Max("scim_events__at"),
                          error_count=Count("scim_events", filter=Q(scim_events__status__gte=400,
                                                                    scim_events__at__gte=since), distinct=True),
                          user_count=Count("scim_users", filter=Q(scim_users__deleted_at__isnull=True),
                                           distinct=True),
                          group_count=Count("scim_groups", distinct=True)))

    def save_model(self, request: HttpRequest, obj: ScimIntegration, form: forms.ModelForm, change: bool) -> None:
        obj.kind = IntegrationKind.SCIM
        super().save_model(request, obj, form, change)
        ensure_folders(obj)  # "All users of this SCIM app" can be mapped before the first push

    @admin.display(description="Last request", ordering="last_request_at")
    def last_request(self, obj: WithAnnotations[ScimIntegration, _Activity]) -> datetime | str:
        return obj.last_request_at or "-"

    @admin.display(description="Errors (24 h)", ordering="error_count")
    def errors_24h(self, obj: WithAnnotations[ScimIntegration, _Activity]) -> int:
        return obj.error_count

    @admin.display(description="Users")
    def users(self, obj: WithAnnotations[ScimIntegration, _Activity]) -> int:
        return obj.user_count

    @admin.display(description="Groups")
    def groups(self, obj: WithAnnotations[ScimIntegration, _Activity]) -> int:
        return obj.group_count

    @admin.display(description="SCIM endpoint")
    def endpoint(self, obj: ScimIntegration | None) -> str:
        if obj is None or obj.pk is None:
            return "Save first: the endpoint is /scim/v2/<this integration>/"
        return f"{self._request.build_absolute_uri(f'/scim/v2/{obj.pk}/')}"

    @admin.display(description="Token")
    def token_state(self, obj: ScimIntegration | None) -> str:
        if obj is None or obj.pk is None:
            return "-"
        now = timezone.now()
        live = obj.scim_tokens.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).order_by("-created_at")
        text = "; ".join(
            f"{t.hint}… " + (f"(old, works until {t.expires_at:%Y-%m-%d %H:%M})" if t.expires_at else "(current)")
            + (f", last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else ", never used")
            for t in live) or "none yet"
        url = reverse("admin:scim_scimintegration_token", args=[obj.pk])
        return format_html('{} <a href="{}" class="button">{}</a>', text, url,
                           "Rotate token" if live else "Create token")

    @admin.display(description="Recent requests")
    def recent_requests(self, obj: ScimIntegration | None) -> str:
        if obj is None or obj.pk is None:
            return "-"
        url = reverse("admin:scim_scimevent_changelist") + f"?integration__id__exact={obj.pk}"
        return format_html('<a href="{}">All SCIM requests of this integration</a>', url)

    def get_form(self, request: HttpRequest, obj: ScimIntegration | None = None, change: bool = False,
                 **kwargs: Any) -> type[forms.ModelForm]:
        self._request = request
        return super().get_form(request, obj, change, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        return [path("<int:pk>/token/", self.admin_site.admin_view(self.token_view),
                     name="scim_scimintegration_token"), *super().get_urls()]

    def token_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: ask; POST: issue (or rotate) the token and show it on this one page; only its hash is kept (R25)."""
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        integration = get_object_or_404(ScimIntegration, pk=pk, kind=IntegrationKind.SCIM)
        if not self.has_change_permission(request, integration):
            return HttpResponseRedirect(reverse("admin:index"))
        rotated = integration.scim_tokens.filter(expires_at__isnull=True).exists()
        change_url = reverse("admin:scim_scimintegration_change", args=[pk])
        if request.method == "GET":
            return TemplateResponse(request, "admin/scim/token_confirm.html", {
                **self.admin_site.each_context(request), "title": "SCIM token", "integration": integration,
                "rotated": rotated, "grace_minutes": int(grace().total_seconds() // 60), "opts": self.model._meta,
                "change_url": change_url})
        token = issue_token(integration, by=actor_of(request.user))
        self.message_user(request, "SCIM token rotated." if rotated else "SCIM token created.", messages.SUCCESS)
        response = TemplateResponse(request, "admin/scim/token.html", {
            **self.admin_site.each_context(request), "title": "SCIM token", "integration": integration,
            "token": token, "rotated": rotated, "grace_until": timezone.now() + grace(),
            "scim_url": scim_url(request, integration), "opts": self.model._meta, "change_url": change_url,
        })
        response["Cache-Control"] = "no-store"
        return response


@admin.register(ScimEvent)
class ScimEventAdmin(admin.ModelAdmin):
    """Each SCIM request that changed something or was refused (R24), newest first."""

    list_display = ["at", "integration", "method", "path", "status", "summary", "run_link"]
    list_filter = ["integration", "method", "status"]
    search_fields = ["resource_id", "summary", "path"]
    list_select_related = ["integration__client", "run"]
    date_hierarchy = "at"

    @admin.display(description="Run")
    def run_link(self, obj: ScimEvent) -> str:
        if obj.run_id is None:
            return "-"
        return format_html('<a href="{}">Run {}</a>', reverse("admin:provisioning_syncrun_change",
                                                              args=[obj.run_id]), obj.run_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScimEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ScimEvent | None = None) -> bool:
        return False
