"""Plain helpers for SCIM tests: a SCIM integration with a token, and a client that speaks SCIM to it."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client as HttpClient

from directory.models import Folder, Integration
from passportal.models import Client, PermissionLevel, SecurityGroup
from provisioning.models import Mapping
from scim.connector import all_users_folder_id
from scim.tokens import issue_token

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def scim_integration(client: Client, name: str = "Entra provisioning") -> Integration:
    return Integration.objects.create(client=client, name=name, kind="scim")


class Scim:
    """SCIM requests to one integration with one token; every answer is (status, JSON body or None)."""

    def __init__(self, integration: Integration, token: str | None = None, http: HttpClient | None = None) -> None:
        self.integration = integration
        self.token = token if token is not None else issue_token(integration)
        self.http = http or HttpClient()
        self.base = f"/scim/v2/{integration.pk}"

    def request(self, method: str, path: str, body: Any = None, token: str | None = None, **query) -> tuple[int, Any]:
        url = path if path.startswith("/scim/") else f"{self.base}{path}"
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token if token is not None else self.token}"}
        if method == "GET":
            response = self.http.get(url, query, **headers)
        else:
            data = json.dumps(body) if body is not None else ""
            response = self.http.generic(method, url, data, content_type="application/scim+json", **headers)
        content = response.content
        return response.status_code, (json.loads(content) if content else None)

    def get(self, path: str, **query):
        return self.request("GET", path, **query)

    def post(self, path: str, body: Any):
        return self.request("POST", path, body)

    def put(self, path: str, body: Any):
        return self.request("PUT", path, body)

    def patch(self, path: str, *operations: dict):
        return self.request("PATCH", path, {"schemas": [PATCH], "Operations": list(operations)})

    def delete(self, path: str):
        return self.request("DELETE", path)


def entra_user(user_name: str, *, given: str = "Ada", family: str = "Lovelace", email: str | None = None,
               active: bool = True, external_id: str | None = None) -> dict:
    """A POST /Users body as Entra's provisioning service sends it (enterprise extension included)."""
    body: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE], "externalId": external_id or user_name.split("@")[0], "userName": user_name,
        "active": active, "displayName": f"{given} {family}",
        "meta": {"resourceType": "User"},
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
        "roles": [], "title": "Engineer",
        ENTERPRISE: {"department": "R&D", "employeeNumber": "42"},
    }
    if email != "":
        body["emails"] = [{"primary": True, "type": "work", "value": email or user_name}]
    return body


def map_all_users(integration: Integration, level: PermissionLevel, *groups: str) -> Mapping:
    return map_scim_folder(integration, all_users_folder_id(integration.pk), level, *groups)


def map_scim_folder(integration: Integration, folder_id: str, level: PermissionLevel, *groups: str) -> Mapping:
    folder = Folder.objects.get(integration=integration, external_id=folder_id)
    mapping = Mapping.objects.create(folder=folder, permission_level=level)
    for name in groups:
        group, _ = SecurityGroup.objects.get_or_create(client=integration.client, name=name)
        mapping.security_groups.add(group)
    return mapping
