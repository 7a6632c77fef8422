"""Staff API tokens, stored hashed (R25): `Authorization: Token <secret>` is looked up by its digest.

DRF's own authtoken keeps the key in clear text in the database and shows it in the admin. Here the
row's key is a digest of the secret; the secret is shown once, by `manage.py create_api_token`.
"""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from passportal.crypto import hash_token

KEY_LENGTH = 40  # DRF's Token.key column


def token_digest(secret: str) -> str:
    """The stored form of a token: sha256, cut to the key column (160 bits are plenty for a lookup)."""
    return hash_token(secret)[:KEY_LENGTH]


def issue_api_token(user: AbstractBaseUser) -> str:
    """Replace the user's API token with a new one and return its secret (stored only as a digest)."""
    secret = "pst_" + secrets.token_urlsafe(32)
    Token.objects.filter(user=user).delete()
    Token.objects.create(user=user, key=token_digest(secret))
    return secret


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's token header and answers, with the key looked up by its digest."""

    def authenticate_credentials(self, key: str):
        return super().authenticate_credentials(token_digest(key))
