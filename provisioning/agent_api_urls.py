"""The on-prem agent's API under /api/agent/: the chunk endpoints only store (directory.api.views), the others need
the engine (agent_api). One namespace, so the URLs and the schema stay the agent's."""

from django.urls import path

from directory.api import views as chunks

from . import agent_api as views

app_name = "agent-api"

urlpatterns = [
    path("uploads/", views.StartUploadView.as_view(), name="upload-start"),
    path("uploads/<int:upload_id>/folders/", chunks.FolderChunkView.as_view(), name="upload-folders"),
    path("uploads/<int:upload_id>/users/", chunks.UserChunkView.as_view(), name="upload-users"),
    path("uploads/<int:upload_id>/missing/", views.MissingView.as_view(), name="upload-missing"),
    path("uploads/<int:upload_id>/gone/", views.GoneView.as_view(), name="upload-gone"),
    path("uploads/<int:upload_id>/commit/", views.CommitView.as_view(), name="upload-commit"),
    path("poll/", views.PollView.as_view(), name="poll"),
    path("linked/", views.LinkedView.as_view(), name="linked"),
    path("failures/", views.FailureView.as_view(), name="failures"),
]
