"""/scim/v2/<integration id>/...: a trailing slash is accepted, as some clients send one."""

from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^ServiceProviderConfig/?$", views.service_provider_config),
    re_path(r"^Schemas/?$", views.schemas),
    re_path(r"^Schemas/(?P<schema_id>[^/]+)/?$", views.schema),
    re_path(r"^ResourceTypes/?$", views.resource_types),
    re_path(r"^ResourceTypes/(?P<type_id>[^/]+)/?$", views.resource_type),
    re_path(r"^\.search/?$", views.root_search),
    re_path(r"^Users/?$", views.users),
    re_path(r"^Users/\.search/?$", views.users_search),
    re_path(r"^Users/(?P<scim_id>[^/]+)/?$", views.user),
    re_path(r"^Groups/?$", views.groups),
    re_path(r"^Groups/\.search/?$", views.groups_search),
    re_path(r"^Groups/(?P<scim_id>[^/]+)/?$", views.group),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
