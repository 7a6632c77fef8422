"""Admin for runs, creation issues and mappings. Runs open the run page; mappings are made in the setup flow."""

from __future__ import annotations

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from .models import CreationIssue, Mapping, SyncRun
from .wording import counts_in_words, run_outcome


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["id", "integration", "trigger", "outcome", "dry_run", "requested_at", "finished_at",
                    "figures"]
    list_filter = ["status", "trigger", "dry_run", "integration__client"]
    list_select_related = ["integration__client", "held_decided_by"]
    search_fields = ["integration__name", "integration__client__name"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Status", ordering="status")
    def outcome(self, obj: SyncRun) -> str:
        return run_outcome(obj)

    @admin.display(description="Counts")
    def figures(self, obj: SyncRun) -> str:
        return counts_in_words(obj.counts, preview=obj.dry_run)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The run page is the one view of a run (notifications link here).
        if not request.user.has_perm("provisioning.view_syncrun"):
            return super().change_view(request, object_id, form_url, extra_context)
        return redirect("provisioning:run", pk=int(object_id))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "title": "Sync runs"}
        return super().changelist_view(request, extra_context)


class ClosedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "closed"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("closed", "Closed")]

    def queryset(self, request, queryset):
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

    def has_add_permission(self, request):
        return False


@admin.register(Mapping)
class MappingAdmin(admin.ModelAdmin):
    list_display = ["folder", "integration_link", "permission_level", "group_names", "created_by", "updated_at"]
    list_select_related = ["folder__integration__client", "permission_level", "created_by"]
    list_filter = ["folder__integration__client", "permission_level"]
    search_fields = ["folder__path", "folder__name"]

    @admin.display(description="Integration")
    def integration_link(self, obj: Mapping):
        integration = obj.folder.integration
        return format_html('<a href="{}">{}: {}</a>', reverse("provisioning:setup", args=[integration.pk]),
                           integration.client.name, integration.name)

    @admin.display(description="Security groups")
    def group_names(self, obj: Mapping) -> str:
        return ", ".join(g.name for g in obj.security_groups.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("security_groups")

    # Mappings are made and removed through User Auto-Provisioning Setup, which previews first (R15).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
