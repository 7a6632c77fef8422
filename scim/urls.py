"""/scim/v2/<integration id>/...: a trailing slash is accepted, as some clients send one."""

from django.urls import re_path

from .views import discovery, groups, listing, users

urlpatterns = [
    re_path(r"^ServiceProviderConfig/?$", discovery.service_provider_config),
    re_path(r"^Schemas/?$", discovery.schemas),
    re_path(r"^Schemas/(?P<schema_id>[^/]+)/?$", discovery.schema),
    re_path(r"^ResourceTypes/?$", discovery.resource_types),
    re_path(r"^ResourceTypes/(?P<type_id>[^/]+)/?$", discovery.resource_type),
    re_path(r"^\.search/?$", listing.root_search),
    re_path(r"^Users/?$", users.users),
    re_path(r"^Users/\.search/?$", users.users_search),
    re_path(r"^Users/(?P<scim_id>[^/]+)/?$", users.user),
    re_path(r"^Groups/?$", groups.groups),
    re_path(r"^Groups/\.search/?$", groups.groups_search),
    re_path(r"^Groups/(?P<scim_id>[^/]+)/?$", groups.group),
    re_path(r"^(?P<rest>.*)$", discovery.not_found),
]
