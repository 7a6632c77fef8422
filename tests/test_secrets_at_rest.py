from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from directory.models import Integration
from passportal.crypto import Secret

NEW_KEY = "Hq0yJ0S4b6mK3kZrVn1pX5wq9cT2uE8oLd7fA3sG1hI="


def stored_value(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT bind_password FROM directory_integration WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_r25_a_bind_password_is_stored_encrypted_and_reads_back(client_org):
    integration = Integration.objects.create(client=client_org, name="AD", kind="ad", bind_password="S3cret-Pa55")
    raw = stored_value(integration.pk)
    assert raw.startswith("fernet:") and "S3cret" not in raw
    assert Integration.objects.get(pk=integration.pk).bind_password == "S3cret-Pa55"


def test_r25_a_secret_never_shows_in_its_repr(client_org):
    integration = Integration.objects.create(client=client_org, name="AD", kind="ad", bind_password="S3cret-Pa55")
    value = Integration.objects.get(pk=integration.pk).bind_password
    assert isinstance(value, Secret) and "S3cret" not in repr(value)


def test_r25_rotating_keys_re_encrypts_under_the_first_key(client_org, settings):
    integration = Integration.objects.create(client=client_org, name="AD", kind="ad", bind_password="S3cret-Pa55")
    old_token = stored_value(integration.pk)
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, *old_keys]):
        call_command("rotate_encryption_keys")
        assert stored_value(integration.pk) != old_token
    # Only the new key is needed from now on.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        assert Integration.objects.get(pk=integration.pk).bind_password == "S3cret-Pa55"
