"""/api/: the staff API, its OpenAPI schema (/api/schema/) and browsable docs (/api/docs/)."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAdminUser
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("clients", views.ClientViewSet, basename="client")
router.register("integrations", views.IntegrationViewSet, basename="integration")
router.register("folders", views.FolderViewSet, basename="folder")
router.register("mappings", views.MappingViewSet, basename="mapping")
router.register("runs", views.SyncRunViewSet, basename="syncrun")
router.register("users", views.PortalUserViewSet, basename="portaluser")
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register("permission-levels", views.PermissionLevelViewSet, basename="permissionlevel")
router.register("security-groups", views.SecurityGroupViewSet, basename="securitygroup")
router.register("creation-issues", views.CreationIssueViewSet, basename="creationissue")

app_name = "api"

urlpatterns = [
    # Staff only, like the API it describes.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAdminUser]), name="schema"),
    # Swagger UI from our own static files (SWAGGER_UI_DIST "SIDECAR"); the split view serves its script as
    # a file, not inline, so the Content-Security-Policy needs no exception for it.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", permission_classes=[IsAdminUser],
                                                      template_name="api_docs/swagger_ui.html"), name="docs"),
    path("", include(router.urls)),
]
