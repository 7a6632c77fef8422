"""The User Mapping flow's pages, under /admin/provisioning/flow/, each behind the admin's login (admin_view)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.http import HttpResponse
from django.urls import path

from .views import mapping, overview, runs, setup, users

app_name = "provisioning"


def staff(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    return admin.site.admin_view(view)


urlpatterns = [
    path("overview/", staff(overview.overview), name="overview"),
    path("clients/<int:client_id>/user-mapping/", staff(mapping.user_mapping), name="user-mapping"),
    path("clients/<int:client_id>/add-domain/", staff(mapping.add_domain), name="add-domain"),
    path("integrations/<int:pk>/link/", staff(mapping.link), name="link"),
    path("integrations/<int:pk>/force-resync/", staff(mapping.force_resync), name="force-resync"),
    path("integrations/<int:pk>/setup/", staff(setup.setup), name="setup"),
    path("integrations/<int:pk>/setup/confirm/<int:run_id>/", staff(setup.confirm), name="confirm"),
    path("integrations/<int:pk>/folders/<int:folder_id>/remove/", staff(setup.remove_mapping),
         name="remove-mapping"),
    path("runs/<int:pk>/", staff(runs.run_detail), name="run"),
    path("runs/<int:pk>/status.json", staff(runs.run_status), name="run-status"),
    path("runs/<int:pk>/held/", staff(runs.held_decision), name="held-decision"),
    path("users/<int:pk>/resync/", staff(users.resync_user), name="user-resync"),
    path("users/<int:pk>/enabled/", staff(users.set_enabled), name="user-enabled"),
]
