"""Agent tokens: `Authorization: Bearer <token>`, looked up by its hash; the token acts for one integration (R26)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from directory.models import Integration, hash_token


class AgentPrincipal:
    """The caller of the push API: an agent, never a staff user. Carries its one integration."""

    is_authenticated = True
    is_staff = False

    def __init__(self, integration: Integration) -> None:
        self.integration = integration

    def __str__(self) -> str:
        return f"agent of {self.integration}"


class AgentTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AgentPrincipal, Integration] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <agent token>'.")
        try:
            token = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The agent token is not valid.") from None
        digest = hash_token(token)
        # The current token, or the one a rotation replaced while its grace lasts (AGENT_TOKEN_GRACE_MINUTES).
        integration = (Integration.objects.select_related("client")
                       .filter(Q(agent_token_hash=digest)
                               | Q(agent_previous_token_hash=digest, agent_previous_token_until__gt=timezone.now()))
                       .exclude(agent_token_hash="").first())
        if integration is None:
            # Neutral: never say whether a token ever existed.
            raise exceptions.AuthenticationFailed("The agent token is not valid.")
        return AgentPrincipal(integration), integration

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class IsAgent(permissions.BasePermission):
    message = "This endpoint takes an on-prem agent's token."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, AgentPrincipal)


class AgentTokenScheme(OpenApiAuthenticationExtension):
    """Publishes the agent token in the OpenAPI schema as an HTTP bearer scheme."""

    target_class = "directory.api.authentication.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description":
                "The integration's agent token: it acts for that one integration only."}
