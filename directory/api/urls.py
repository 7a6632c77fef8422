from django.urls import path

from . import views

app_name = "agent-api"

urlpatterns = [
    path("uploads/", views.StartUploadView.as_view(), name="upload-start"),
    path("uploads/<int:upload_id>/folders/", views.FolderChunkView.as_view(), name="upload-folders"),
    path("uploads/<int:upload_id>/users/", views.UserChunkView.as_view(), name="upload-users"),
    path("uploads/<int:upload_id>/missing/", views.MissingView.as_view(), name="upload-missing"),
    path("uploads/<int:upload_id>/gone/", views.GoneView.as_view(), name="upload-gone"),
    path("uploads/<int:upload_id>/commit/", views.CommitView.as_view(), name="upload-commit"),
    path("poll/", views.PollView.as_view(), name="poll"),
    path("linked/", views.LinkedView.as_view(), name="linked"),
    path("failures/", views.FailureView.as_view(), name="failures"),
]
