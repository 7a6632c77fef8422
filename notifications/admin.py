from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from .models import Notification, OutboxEmail
from .services import mark_read


class ReadFilter(admin.SimpleListFilter):
    title = "read"
    parameter_name = "read"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("unread", "Unread"), ("read", "Read")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Notification]) -> QuerySet[Notification]:
        if self.value() == "unread":
            return queryset.filter(read_at__isnull=True)
        if self.value() == "read":
            return queryset.filter(read_at__isnull=False)
        return queryset


class SettledFilter(admin.SimpleListFilter):
    """Whether what a notification reported still needs someone, or settled by itself (issue closed, run decided)."""

    title = "settled"
    parameter_name = "settled"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("no", "Still open"), ("yes", "Settled by itself")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Notification]) -> QuerySet[Notification]:
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The bell's list page (R20): filter by client, kind, read and settled state; open (marks read); mark all read."""

    list_display = ["created_at", "kind", "title_link", "client", "integration", "read_state", "settled_state"]
    list_filter = [ReadFilter, SettledFilter, "kind", "client"]
    list_select_related = ["client", "integration"]
    search_fields = ["title", "message"]
    date_hierarchy = "created_at"
    actions = ["mark_read", "mark_unread"]
    readonly_fields = ["kind", "title", "message", "client", "integration", "url", "created_at", "read_at",
                       "resolved_at"]
    exclude = ["topic"]
    change_list_template = "notifications/notification_change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "mark-all-read/",
                self.admin_site.admin_view(require_POST(self.mark_all_read_view)),
                name="notifications_notification_mark_all_read",
            ),
            path("<int:pk>/open/", self.admin_site.admin_view(self.open_view), name="notifications_notification_open"),
        ]
        return extra + super().get_urls()

    @admin.display(description="Notification", ordering="title")
    def title_link(self, obj: Notification) -> str:
        # Through the open view, so following it marks it read.
        return format_html('<a href="{}">{}</a>', reverse("admin:notifications_notification_open", args=[obj.pk]),
                           obj.title)

    @admin.display(description="Settled", boolean=True, ordering="resolved_at")
    def settled_state(self, obj: Notification) -> bool:
        return obj.resolved_at is not None

    def open_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Opening a notification marks it read, then shows what it is about (or the notification itself)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        note = get_object_or_404(Notification, pk=pk)
        mark_read(note)
        # Only links inside the portal: a notification never sends staff elsewhere.
        if note.url.startswith("/") and not note.url.startswith("//"):
            return HttpResponseRedirect(note.url)
        return HttpResponseRedirect(reverse("admin:notifications_notification_change", args=[note.pk]))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Reading a notification's own page is opening it.
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200 and (note := Notification.objects.filter(pk=object_id).first()):
            mark_read(note)
        return response

    @admin.display(description="Read", boolean=True, ordering="read_at")
    def read_state(self, obj: Notification) -> bool:
        return obj.read_at is not None

    @admin.action(description="Mark selected notifications as read")
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = queryset.filter(read_at__isnull=True).update(read_at=timezone.now())
        self.message_user(request, f"{count} notification(s) marked as read.", messages.SUCCESS)

    @admin.action(description="Mark selected notifications as unread")
    def mark_unread(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = queryset.filter(read_at__isnull=False).update(read_at=None)
        self.message_user(request, f"{count} notification(s) marked as unread.", messages.SUCCESS)

    def mark_all_read_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        count = Notification.objects.filter(read_at__isnull=True).update(read_at=timezone.now())
        self.message_user(request, f"{count} notification(s) marked as read.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:notifications_notification_changelist"))


# Shown, all read-only (one tuple of plain names, as both admin options take it).
OUTBOX_FIELDS = ("kind", "recipient", "portal_user", "status", "attempts", "last_error", "next_attempt_at",
                 "claimed_at", "sent_at", "created_at")


@admin.register(OutboxEmail)
class OutboxEmailAdmin(admin.ModelAdmin):
    """The outbox, read-only. Its context (an activation's token and link) is never shown."""

    list_display = ["created_at", "kind", "recipient", "portal_user", "status", "attempts", "next_attempt_at",
                    "sent_at", "short_error"]
    list_filter = ["status", "kind"]
    search_fields = ["recipient"]
    list_select_related = ["portal_user"]
    date_hierarchy = "created_at"
    fields = OUTBOX_FIELDS
    readonly_fields = OUTBOX_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxEmail | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxEmail | None = None) -> bool:
        return False

    @admin.display(description="Last error")
    def short_error(self, obj: OutboxEmail) -> str:
        return obj.last_error[:120]
