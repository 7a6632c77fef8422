"""Admin for integrations (secrets write-only, Test connection, agent token), folders and agent uploads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from .connectors import DirectoryError
from .forms import IntegrationForm
from .models import AdMode, AgentUpload, Folder, Integration, IntegrationKind
from .sources import connector_for

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

TLS_OFF_WARNING = ("Certificate verification is off: anyone on the network path can pretend to be the domain "
                   "controller and read the bind password. Turn it on and paste the CA certificate.")
TLS_OFF_WARNING_ENTRA = ("Certificate verification is off: anyone on the network path can pretend to be Microsoft's "
                         "login and Graph hosts and receive the client secret. Turn it on (paste the CA certificate "
                         "of a proxy that inspects TLS).")


def tls_off_warning(integration: Integration) -> str:
    return TLS_OFF_WARNING_ENTRA if integration.kind == IntegrationKind.ENTRA else TLS_OFF_WARNING


def test_connection_report(integration: Integration) -> tuple[bool, str]:
    """(worked, what to show): the connector's own report, or its error message."""
    try:
        return True, connector_for(integration).test()
    except DirectoryError as exc:
        return False, str(exc)
    except (ValueError, ImportError) as exc:  # settings the connector cannot use (an empty URL list, say)
        return False, f"The settings cannot be used: {exc}"


class FolderInline(admin.TabularInline):
    model = Folder
    fields = readonly_fields = ("path", "kind", "external_id", "gone", "first_seen", "last_seen")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "Folder tree (discovered by the last complete read)"


class _FolderCount(TypedDict):
    _folders: int  # IntegrationAdmin.get_queryset's annotation


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationForm
    change_form_template = "admin/directory/integration/change_form.html"
    list_display = ["name", "client", "kind", "link_enabled", "mode", "folder_count", "agent_last_contact"]
    list_filter = ["kind", "link_enabled", "ad_mode", "client"]
    search_fields = ["name", "client__name", "base_dn", "tenant"]
    list_select_related = ["client"]
    actions = ["test_connection"]
    inlines = [FolderInline]
    readonly_fields = ["tls_warning", "bind_password_state", "client_secret_state", "agent_token_state",
                       "last_heard_from_agent", "agent_version", "agent_host", "agent_last_read",
                       "tenant_guid", "tenant_domains", "created_at", "updated_at"]
    fieldsets = [
        ("General", {"fields": ["client", "name", "kind", "link_enabled", "disable_threshold_percent",
                                "disable_threshold_minimum", "created_at", "updated_at"]}),
        ("Active Directory", {
            "fields": ["ad_mode", "ldap_urls", "base_dn", "bind_dn", "bind_password_state", "new_bind_password",
                       "tls_mode", "page_size", "agent_token_state", "last_heard_from_agent", "agent_version",
                       "agent_host", "agent_last_read"],
            "description": "Agent mode: the on-prem agent reads AD and pushes it (it needs an agent token). "
                           "Direct mode: the portal reads the DCs itself with the settings below.",
        }),
        ("Entra ID", {
            "fields": ["entra_role", "tenant", "app_client_id", "client_secret_state", "new_client_secret",
                       "entra_cloud", "login_host", "graph_base_url", "graph_scope", "tenant_guid", "tenant_domains"],
            "description": "The cloud sets the login host, Graph base URL and token scope together, from Microsoft's "
                           "published values. Choose Custom only for a proxy or private endpoint, and type all three.",
        }),
        # One section for both kinds: LDAPS/StartTLS and the Entra login and Graph hosts use the same two fields.
        ("Connection security", {
            "fields": ["tls_warning", "tls_verify", "tls_ca_pem"],
            "description": "How the portal checks the certificate of the domain controllers (Active Directory) or "
                           "of the login and Graph hosts (Entra ID). Leave the CA certificate blank to trust the "
                           "system's certificate authorities.",
        }),
    ]

    def formfield_for_dbfield(self, db_field: models.Field[Any, Any], request: HttpRequest,
                              **kwargs: Any) -> forms.Field | None:
        if isinstance(db_field, models.URLField):
            kwargs.setdefault("assume_scheme", "https")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Integration]:

        return super().get_queryset(request).annotate(_folders=Count("folders", filter=Q(folders__gone=False)))

    @admin.display(description="Folders", ordering="_folders")
    def folder_count(self, obj: WithAnnotations[Integration, _FolderCount]) -> int:
        return obj._folders

    @admin.display(description="Mode")
    def mode(self, obj: Integration) -> str:
        if obj.kind == IntegrationKind.ACTIVE_DIRECTORY:
            return obj.get_ad_mode_display() or "-"
        if obj.kind == IntegrationKind.ENTRA:
            return obj.get_entra_role_display() or "-"
        return "Sample data"

    @admin.display(description="TLS verification")
    def tls_warning(self, obj: Integration | None) -> str:
        if obj is None or obj.pk is None or obj.tls_verify:
            return "On"
        return format_html('<strong class="errornote">{}</strong>', tls_off_warning(obj))

    @staticmethod
    def _secret_state(value: str) -> str:
        return "Stored (hidden)" if value else "Not set"

    @admin.display(description="Stored bind password")
    def bind_password_state(self, obj: Integration | None) -> str:
        return self._secret_state(obj.bind_password if obj else "")

    @admin.display(description="Stored client secret")
    def client_secret_state(self, obj: Integration | None) -> str:
        return self._secret_state(obj.client_secret if obj else "")

    @admin.display(description="Agent token")
    def agent_token_state(self, obj: Integration | None) -> str:
        if obj is None or not obj.agent_token_hash:
            return "None yet: use “Create agent token” above (agent mode)."
        state = f"{obj.agent_token_hint}… (only its hash is stored; rotate to get a new one)"
        until = obj.previous_agent_token_works_until()
        if until is not None:
            state += f"; the token it replaced keeps working until {_when(until)}, then stops"
        return state

    @admin.display(description="Last heard from the agent")
    def last_heard_from_agent(self, obj: Integration | None) -> str:
        """When the agent last pushed, polled or reported a failure, as "5 minutes ago (when)"."""
        if obj is None or obj.agent_last_contact is None:
            return "Never"
        return f"{timesince(obj.agent_last_contact)} ago ({_when(obj.agent_last_contact)})"

    @admin.display(description="Agent's last read")
    def agent_last_read(self, obj: Integration | None) -> str:
        if obj is None or obj.agent_last_read_seconds is None:
            return "Not known yet"
        return f"{obj.agent_last_read_seconds:.1f} s to read AD"

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any,
                           **kwargs: Any) -> HttpResponse:
        context["agent_token_grace"] = grace_text()
        return super().render_change_form(request, context, *args, **kwargs)

    # ---- saving, warnings -------------------------------------------------------------------------
    def save_model(self, request: HttpRequest, obj: Integration, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.kind in (IntegrationKind.ACTIVE_DIRECTORY, IntegrationKind.ENTRA) and not obj.tls_verify:
            messages.warning(request, tls_off_warning(obj))

    # ---- Test connection ----------------------------------------------------------------------------
    # Testing binds with the stored secret: as for the button, only staff who may change integrations.
    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            worked, report = test_connection_report(integration)
            level = messages.SUCCESS if worked else messages.ERROR
            self.message_user(request, f"{integration.name}: {report}", level)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("<int:pk>/test-connection/", self.admin_site.admin_view(self.test_connection_view),
                 name="directory_integration_test_connection"),
            path("<int:pk>/agent-token/", self.admin_site.admin_view(self.agent_token_view),
                 name="directory_integration_agent_token"),
        ]
        return own + super().get_urls()

    def _change_url(self, integration: Integration) -> str:
        return reverse("admin:directory_integration_change", args=[integration.pk])

    def test_connection_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST (CSRF-checked by admin_view): it sends the stored secret, so a link or an image must not."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = get_object_or_404(Integration, pk=pk)
        if not self.has_change_permission(request, integration):
            return HttpResponseRedirect(reverse("admin:index"))
        worked, report = test_connection_report(integration)
        self.message_user(request, report, messages.SUCCESS if worked else messages.ERROR)
        return HttpResponseRedirect(self._change_url(integration))

    def agent_token_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST: issue (or rotate) the agent token and show it on this one page; only its hash is kept (R25)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = get_object_or_404(Integration, pk=pk)
        if not self.has_change_permission(request, integration):
            return HttpResponseRedirect(reverse("admin:index"))
        if integration.kind != IntegrationKind.ACTIVE_DIRECTORY or integration.ad_mode != AdMode.AGENT:
            self.message_user(request, "Agent tokens are for Active Directory integrations in agent mode.",
                              messages.ERROR)
            return HttpResponseRedirect(self._change_url(integration))
        if request.POST.get("end_previous"):
            integration.end_previous_agent_token()
            self.message_user(request, "The previous agent token no longer works; only the new one does.",
                              messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(integration))
        rotated = bool(integration.agent_token_hash)
        token = integration.issue_agent_token()
        until = integration.previous_agent_token_works_until()
        context = {
            **self.admin_site.each_context(request),
            "title": "Agent token rotated" if rotated else "Agent token created",
            "integration": integration,
            "token": token,
            "rotated": rotated,
            "previous_until": _when(until) if until else "",
            "grace": grace_text(),
            "portal_url": request.build_absolute_uri("/").rstrip("/"),
            "opts": self.model._meta,
            "change_url": self._change_url(integration),
        }
        response = TemplateResponse(request, "admin/directory/integration/agent_token.html", context)
        response["Cache-Control"] = "no-store"
        return response


def grace_text() -> str:
    """How long a rotated agent token keeps working, in words: "10 minutes"."""
    minutes = settings.AGENT_TOKEN_GRACE_MINUTES
    return f"{minutes:g} minute{'' if minutes == 1 else 's'}"


def _when(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


@admin.register(Folder)
class FolderAdmin(admin.ModelAdmin):
    list_display = ["path", "integration", "kind", "gone", "last_seen"]
    list_filter = ["gone", "kind", "integration__client", "integration"]
    search_fields = ["path", "name", "external_id"]
    list_select_related = ["integration", "integration__client"]
    readonly_fields = ["integration", "kind", "external_id", "name", "parent", "path", "first_seen", "last_seen",
                       "gone", "children_list"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # folders come from a directory read, never by hand (R19)

    @admin.display(description="Child folders")
    def children_list(self, obj: Folder) -> str:
        children = obj.children.order_by("path")
        if not children:
            return "-"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}{}</li>",
                           ((c.path, " (gone)" if c.gone else "") for c in children)))


UPLOAD_COLUMNS = ("pk", "integration", "status", "directory_id", "folder_count", "user_count", "chunk_count",
                  "created_at", "committed_at", "agent_version")


@admin.register(AgentUpload)
class AgentUploadAdmin(admin.ModelAdmin):
    list_display = UPLOAD_COLUMNS
    list_filter = ["status", "integration"]
    readonly_fields = UPLOAD_COLUMNS[1:]
    exclude = []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AgentUpload | None = None) -> bool:
        return False
