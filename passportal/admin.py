"""The vault's admin pages: clients, permission levels, security groups, portal users. What a directory and the
activation emails add to the Client and PortalUser pages (User Mapping, where a user came from, why disabled, resend
activation) is added by provisioning/admin.py, which registers subclasses of these over them: the vault imports
nothing of the layers above it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from .actors import actor_of
from .forms import PortalUserAdminForm
from .models import Client, GroupMembership, PermissionLevel, PortalUser, SecurityGroup, UserKind
from .text import validate_one_line

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _UserCount(TypedDict):
    _users: int  # ClientAdmin.get_queryset's annotation

admin.site.site_header = "Auto-provisioning portal"
admin.site.site_title = "Auto-provisioning portal"
admin.site.index_title = "MSP administration"
# Every change list pages by the one page size the portal's own lists use (a client's users run to thousands).
admin.ModelAdmin.list_per_page = settings.LIST_PAGE_SIZE


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = ["name", "site_enabled"]

    def clean_name(self) -> str:
        # The name goes into email subjects and one-line places: a line break there is refused, not kept.
        name = self.cleaned_data["name"]
        validate_one_line(name)
        return name


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    form = ClientForm
    list_display = ["display_name", "site_enabled", "user_count", "created_at"]
    list_filter = ["is_company_vault", "site_enabled"]
    search_fields = ["name"]
    readonly_fields = ["is_company_vault", "created_at", "updated_at"]
    fields = ["name", "is_company_vault", "site_enabled", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        return super().get_queryset(request).annotate(_users=Count("users"))

    @admin.display(description="Client", ordering="name")
    def display_name(self, obj: Client) -> str:
        if obj.is_company_vault:
            return format_html('<strong>{}</strong> <span class="vault-badge">Company Vault</span>', obj.name)
        return obj.name

    @admin.display(description="Users", ordering="_users")
    def user_count(self, obj: WithAnnotations[Client, _UserCount]) -> int:
        return obj._users


@admin.register(PermissionLevel)
class PermissionLevelAdmin(admin.ModelAdmin):
    list_display = ["name", "user_kind", "rank", "is_site_admin"]
    list_filter = ["user_kind", "is_site_admin"]
    search_fields = ["name"]


@admin.register(SecurityGroup)
class SecurityGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "client"]
    list_filter = ["client"]
    search_fields = ["name", "client__name"]


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return UserKind.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[PortalUser]) -> QuerySet[PortalUser]:
        if self.value() == UserKind.PRO:
            return queryset.filter(client__is_company_vault=True)
        if self.value() == UserKind.SITE:
            return queryset.filter(client__is_company_vault=False)
        return queryset


class GroupMembershipInline(admin.TabularInline):
    model = GroupMembership
    extra = 0
    fields = ["group", "source", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(PortalUser)
class PortalUserAdmin(admin.ModelAdmin):
    list_display = ["email", "first_name", "last_name", "kind_badge", "client", "status", "permission_level"]
    list_filter = [KindFilter, "client", "status", "permission_level"]
    search_fields = ["email", "first_name", "last_name"]
    list_select_related = ["client", "permission_level"]
    readonly_fields = ["status", "disabled_reason", "activated_at", "created_at", "updated_at"]
    # Who and when of a disable are written by syncs and the staff disable, never typed.
    exclude = ["password", "disabled_at", "disabled_by_run", "staff_disabled_at", "staff_disabled_by"]
    inlines = [GroupMembershipInline]
    form = PortalUserAdminForm  # refuses a save over a row a sync changed since the page was opened

    @admin.display(description="Kind", ordering="client__is_company_vault")
    def kind_badge(self, obj: PortalUser) -> str:
        label = "Pro-User" if obj.client.is_company_vault else "Site-User"
        css = "pro" if obj.client.is_company_vault else "site"
        return format_html('<span class="kind-badge kind-{}">{}</span>', css, label)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[PortalUser],
                           search_term: str) -> tuple[QuerySet[PortalUser], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term and "@" in search_term:
            queryset |= self.model.objects.filter(Q(email__iexact=search_term))
        return queryset, may_have_duplicates

    def save_model(self, request: HttpRequest, obj: PortalUser, form: forms.ModelForm, change: bool) -> None:
        # R11: a level staff change after provisioning is locked against mappings.
        if change and "permission_level" in form.changed_data:
            obj.permission_level_set_by_hand = True
        if not change and obj.permission_level_id:
            obj.permission_level_set_by_hand = True  # staff chose it: a mapping must not overwrite it (R11)
        if "disabled_by_staff" in form.changed_data:
            obj.set_disabled_by_staff(obj.disabled_by_staff, by=actor_of(request.user))  # keeps who and when (R8)
        obj.refresh_status()
        super().save_model(request, obj, form, change)
