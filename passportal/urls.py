from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from passportal import views as passportal_views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/provisioning/flow/", include("provisioning.urls")),
    path("admin/", admin.site.urls),
    path("api/agent/", include("directory.api.urls")),
    path("api/", include("provisioning.api.urls")),
    # Activation (R18): the token leaves the URL at once, see passportal/views.py.
    path("activate/set-password/", passportal_views.set_password, name="activation-set-password"),
    path("activate/ready/", passportal_views.account_ready, name="activation-ready"),
    path("activate/<str:token>/", passportal_views.activation_link, name="activation-link"),
]
