"""Staff API tokens, stored hashed (R25): `Authorization: Token <secret>` is looked up by its digest.

DRF's own authtoken keeps the key in clear text in the database and shows it in the admin. Here the
row's key is a digest of the secret; the secret is shown once, by `manage.py create_api_token`.

`Authorization: Bearer <secret>` is accepted too, as most HTTP and OpenAPI clients send it. Agent tokens are
Bearer tokens as well, on /api/agent/ only; the two never cross: each is looked up in its own table (a staff
token's digest among staff tokens, an agent token's hash among integrations), the agent API takes no staff
authentication at all, and an agent token sent here is refused by name.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from passportal.crypto import hash_token

KEY_LENGTH = 40  # DRF's Token.key column


def token_digest(secret: str) -> str:
    """The stored form of a token: sha256, cut to the key column (160 bits are plenty for a lookup)."""
    return hash_token(secret)[:KEY_LENGTH]


def issue_api_token(user: User) -> str:
    """Replace the user's API token with a new one and return its secret (stored only as a digest)."""
    secret = "pst_" + secrets.token_urlsafe(32)
    Token.objects.filter(user=user).delete()
    Token.objects.create(user=user, key=token_digest(secret))
    return secret


AGENT_TOKEN_PREFIX = "pat_"  # Integration.issue_agent_token


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's token header and answers (`Token <key>`, or `Bearer <key>`), with the key looked up by its digest."""

    keywords = ("Token", "Bearer")

    def authenticate(self, request: Request) -> tuple[Any, Token] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in {k.lower().encode() for k in self.keywords}:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Token <key>' (or 'Bearer <key>').")
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        if key.startswith(AGENT_TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(
                "This is an on-prem agent's token: it works only on the agent push API (/api/agent/).")
        return super().authenticate_credentials(token_digest(key))


class StaffTokenScheme(OpenApiAuthenticationExtension):
    """Publishes the staff token in the OpenAPI schema both ways it is accepted: `Token <key>` or `Bearer <key>`."""

    target_class = "provisioning.api.authentication.HashedTokenAuthentication"
    name = ["staffToken", "staffBearer"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[str]]]:
        return [{"staffToken": []}, {"staffBearer": []}]  # either one

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {"type": "apiKey", "in": "header", "name": "Authorization",
             "description": "A staff API token (manage.py create_api_token), sent as `Token <key>`."},
            {"type": "http", "scheme": "bearer", "description": "The same staff API token, sent as `Bearer <key>`."},
        ]
