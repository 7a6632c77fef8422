"""Admin for runs, creation issues and mappings (runs open the run page; mappings are made in the setup flow), and
the vault's Client and PortalUser pages with what provisioning and the activation emails add to them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from notifications.activation import queue_activation_emails
from passportal import admin as vault_admin
from passportal.models import Client, DisabledReason, PortalUser

from .access import mapping_blockers
from .models import CreationIssue, Mapping, SyncRun
from .state import directory_origins
from .views.users import why_disabled as disable_causes
from .wording import STAFF, counts_in_words, disable_reason, run_outcome


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["id", "integration", "trigger", "outcome", "dry_run", "requested_at", "finished_at",
                    "figures"]
    list_filter = ["status", "trigger", "dry_run", "integration__client"]
    list_select_related = ["integration__client", "held_decided_by"]
    search_fields = ["integration__name", "integration__client__name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SyncRun | None = None) -> bool:
        return False

    @admin.display(description="Status", ordering="status")
    def outcome(self, obj: SyncRun) -> str:
        return run_outcome(obj)

    @admin.display(description="Counts")
    def figures(self, obj: SyncRun) -> str:
        return counts_in_words(obj.counts, preview=obj.dry_run)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The run page is the one view of a run (notifications link here).
        if not request.user.has_perm("provisioning.view_syncrun"):
            return super().change_view(request, object_id, form_url, extra_context)
        return redirect("provisioning:run", pk=int(object_id))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "title": "Sync runs"}
        return super().changelist_view(request, extra_context)


class ClosedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "closed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("open", "Open"), ("closed", "Closed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[CreationIssue]) -> QuerySet[CreationIssue]:
        if self.value() == "open":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(CreationIssue)
class CreationIssueAdmin(admin.ModelAdmin):
    list_display = ["user_name", "email", "reason", "client_name", "integration", "folder_path", "opened_at",
                    "closed_at"]
    list_filter = [ClosedFilter, "reason", "integration"]
    list_select_related = ["integration__client"]
    search_fields = ["user_name", "email", "folder_path"]
    readonly_fields = [f.name for f in CreationIssue._meta.fields]

    @admin.display(description="Client", ordering="integration__client__name")
    def client_name(self, obj: CreationIssue) -> str:
        return obj.integration.client.name

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Mapping)
class MappingAdmin(admin.ModelAdmin):
    list_display = ["folder", "integration_link", "permission_level", "group_names", "created_by", "updated_at"]
    list_select_related = ["folder__integration__client", "permission_level", "created_by"]
    list_filter = ["folder__integration__client", "permission_level"]
    search_fields = ["folder__path", "folder__name"]

    @admin.display(description="Integration")
    def integration_link(self, obj: Mapping) -> str:
        integration = obj.folder.integration
        return format_html('<a href="{}">{}: {}</a>', reverse("provisioning:setup", args=[integration.pk]),
                           integration.client.name, integration.name)

    @admin.display(description="Security groups")
    def group_names(self, obj: Mapping) -> str:
        return ", ".join(g.name for g in obj.security_groups.all())

    def get_queryset(self, request: HttpRequest) -> QuerySet[Mapping]:
        return super().get_queryset(request).prefetch_related("security_groups")

    # Mappings are made and removed through User Auto-Provisioning Setup, which previews first (R15).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Mapping | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Mapping | None = None) -> bool:
        return False


# ---------------------------------------------------------------- the vault's pages, with what provisioning adds

# The vault's admin (passportal/admin.py) knows nothing of directories or emails; these subclasses, registered over
# it from the highest layer that needs them, add where a user came from, why it is disabled, the User Mapping button
# and the activation emails (R18).


class DisabledBecauseFilter(admin.SimpleListFilter):
    """Why users are disabled: the directory, deleted in it, out of scope, the link switched off, or staff."""

    title = "why disabled"
    parameter_name = "disabled_because"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [(reason, disable_reason(reason)) for reason in DisabledReason.values if reason] + [
            (STAFF, disable_reason(STAFF))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[PortalUser]) -> QuerySet[PortalUser]:
        if self.value() == STAFF:
            return queryset.filter(disabled_by_staff=True)
        if self.value() in DisabledReason.values and self.value():
            return queryset.filter(disabled_reason=self.value())
        return queryset


class MappedClientAdmin(vault_admin.ClientAdmin):
    change_form_template = "provisioning/admin/client_change_form.html"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The Configure User Mapping button, and what is missing when it cannot work yet (R14).
        client = self.get_object(request, object_id)
        extra = {"mapping_blockers": mapping_blockers(client) if client else []}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


class ProvisionedUserAdmin(vault_admin.PortalUserAdmin):
    list_display = [*vault_admin.PortalUserAdmin.list_display[:-1], "why_disabled", "permission_level"]
    list_filter = [*vault_admin.PortalUserAdmin.list_filter[:-1], DisabledBecauseFilter, "permission_level"]
    list_select_related = [*vault_admin.PortalUserAdmin.list_select_related, "disabled_by_run__integration"]
    actions = ["resend_activation"]
    change_form_template = "provisioning/admin/portaluser_change_form.html"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Where the user came from (integration, folders, last seen), Resync (R28), staff disable/enable (R8).
        user = self.get_object(request, object_id)
        extra = {"directory_origins": directory_origins(user) if user else [],
                 "why_disabled": disable_causes(user) if user else []}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    @admin.display(description="Why disabled")
    def why_disabled(self, obj: PortalUser) -> str:
        reasons = [disable_reason(STAFF)] if obj.disabled_by_staff else []
        if obj.disabled_reason:
            kind = obj.disabled_by_run.integration.kind if obj.disabled_by_run else ""
            reasons.append(disable_reason(obj.disabled_reason, kind))
        return "; ".join(reasons) or "-"

    @admin.action(description="Resend activation email")
    def resend_activation(self, request: HttpRequest, queryset: QuerySet[PortalUser]) -> None:
        # R18: a new link replaces the old one; disabled and already active users get nothing.
        selected = list(queryset.values_list("pk", flat=True))
        queued = queue_activation_emails(selected)
        skipped = len(selected) - queued
        self.message_user(request, f"Activation email queued for {queued} user(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} user(s) skipped: disabled or already activated.", messages.WARNING
            )

    def save_model(self, request: HttpRequest, obj: PortalUser, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            # R18: a user staff create gets an activation email too (the first Site Admin opens R14 this way).
            user_id = obj.pk
            transaction.on_commit(lambda: queue_activation_emails([user_id]))
            self.message_user(request, f"Activation email queued for {obj.email}.", messages.SUCCESS)


admin.site.unregister(Client)
admin.site.register(Client, MappedClientAdmin)
admin.site.unregister(PortalUser)
admin.site.register(PortalUser, ProvisionedUserAdmin)
