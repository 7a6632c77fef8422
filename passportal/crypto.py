"""Secrets at rest: a text field encrypted with MultiFernet (the first key encrypts, all decrypt)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

_PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: at least one Fernet key is needed.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a key that is not a Fernet key (32 url-safe base64 bytes)."
        ) from exc


def hash_token(token: str) -> str:
    """The stored form of a bearer token (agent tokens, activation links): its sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _PREFIX + fernet().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(_PREFIX):
        raise ValueError("stored secret is not encrypted")
    try:
        return fernet().decrypt(stored[len(_PREFIX):].encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS."
        ) from exc


class Secret(str):
    """A decrypted secret whose repr never shows the value (tracebacks, debug pages, logs)."""

    def __repr__(self) -> str:
        return "Secret('********')"


class EncryptedTextField(models.TextField):
    """Stores `fernet:<token>`; Python sees the plaintext as a `Secret`. Empty stays empty."""

    def from_db_value(self, value: str | None, expression: object,
                      connection: BaseDatabaseWrapper) -> Secret | str | None:
        if value is None or value == "":
            return value
        return Secret(decrypt(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        return encrypt(str(value))
