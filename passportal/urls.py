from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from passportal import views as passportal_views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Browsers ask for /favicon.ico on pages that name no icon (the API's JSON, the end users' pages).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.ico"), permanent=False)),
    path("admin/provisioning/flow/", include("provisioning.urls")),
    path("admin/", admin.site.urls),
    path("api/agent/", include("provisioning.agent_api_urls")),
    path("api/", include("provisioning.api.urls")),
    # SCIM 2.0 (Entra ID's and Okta's provisioning push into one integration, bearer token): scim/urls.py.
    path("scim/v2/<int:integration_id>/", include("scim.urls")),
    # Activation (R18): the token leaves the URL at once, see passportal/views.py.
    path("activate/set-password/", passportal_views.set_password, name="activation-set-password"),
    path("activate/ready/", passportal_views.account_ready, name="activation-ready"),
    path("activate/<str:token>/", passportal_views.activation_link, name="activation-link"),
    # The end user's own pages, after activation.
    path("account/", passportal_views.account, name="account"),
    path("account/sign-in/", passportal_views.sign_in, name="account-sign-in"),
    path("account/sign-out/", passportal_views.sign_out, name="account-sign-out"),
]
