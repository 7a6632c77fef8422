"""/ServiceProviderConfig, /Schemas and /ResourceTypes, built by scim2-models from the models the portal serves."""

from __future__ import annotations

import functools

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Patch,
    Required,
    ResourceType,
    ScimObject,
    ServiceProviderConfig,
    Sort,
)

from .resources import User, UserModel

MAX_RESULTS = 1000  # per page of a list or filter; a larger `count` is cut to it


def _dump(obj: ScimObject) -> dict:
    return obj.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def service_provider_config(base: str) -> dict:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken, name="Bearer token",
            description="The integration's SCIM token, created on the portal (shown once): "
                        "Authorization: Bearer <token>.", primary=True)],
    )
    data = _dump(config)
    data["meta"] = {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"}
    return data


@functools.cache
def _schemas() -> tuple[dict, ...]:
    user = User.to_schema()
    for attribute in user.attributes or []:
        # R7: the portal needs an email; published as required so clients (and checkers) always send one.
        if attribute.name == "emails":
            attribute.required = Required.true
            for sub in attribute.sub_attributes or []:
                if sub.name == "value":
                    sub.required = Required.true
    return tuple(_dump(s) for s in (user, EnterpriseUser.to_schema(), Group.to_schema()))


def schemas(base: str) -> list[dict]:
    out = []
    for schema in _schemas():
        data = dict(schema)
        data["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema['id']}"}
        out.append(data)
    return out


def resource_types(base: str) -> list[dict]:
    out = []
    for model in (UserModel, Group):
        data = _dump(ResourceType.from_resource(model))
        data["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{data['id']}"}
        out.append(data)
    return out
