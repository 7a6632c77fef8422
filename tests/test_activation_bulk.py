"""Activation links issued by the thousand (a sync's new users): the same links, the same emails, made faster."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from notifications.activation import queue_activation_emails
from notifications.models import OutboxEmail
from passportal.bulk import COPY_FROM, pk_among
from passportal.models import ActivationToken, PortalUser
from passportal.tokens import LINK_KEY_SALT, nonces, token_from_nonce, user_for_digest

pytestmark = pytest.mark.django_db


def test_r25_a_links_token_is_the_hmac_of_its_nonce_so_links_in_flight_keep_working():
    # The token as the first links were made: hmac.new under the key derived from SECRET_KEY.
    key = salted_hmac(LINK_KEY_SALT, b"key", secret=settings.SECRET_KEY, algorithm="sha256").digest()
    expected = base64.urlsafe_b64encode(hmac.new(key, b"nonce-1", hashlib.sha256).digest()).rstrip(b"=").decode()
    assert token_from_nonce("nonce-1") == expected


def test_r25_nonces_are_128_random_bits_each_as_token_urlsafe_writes_them():
    drawn = nonces(1000)
    assert len(drawn) == 1000 == len(set(drawn))
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", nonce) for nonce in drawn)
    assert all(len(base64.urlsafe_b64decode(nonce + "==")) == 16 for nonce in drawn)
    assert nonces(0) == []


def test_r18_a_syncs_thousand_new_users_each_get_one_working_link_and_one_email(client_org):
    users = PortalUser.objects.bulk_create([
        PortalUser(client=client_org, email=f"u{n}@example.test", first_name=f"F{n}", last_name=f"L{n}")
        for n in range(COPY_FROM + 100)])  # above the COPY threshold: the bulk path on PostgreSQL
    ids = [user.pk for user in users]

    assert queue_activation_emails(ids, just_created=True) == len(ids)

    emails = {row.portal_user_id: row for row in OutboxEmail.objects.filter(portal_user_id__in=ids)}
    assert set(emails) == set(ids)
    tokens = {token.user_id: token for token in ActivationToken.objects.filter(user_id__in=ids)}
    assert set(tokens) == set(ids)
    expiry = next(iter(tokens.values())).expires_at
    for user in users[:50]:
        context = emails[user.pk].context
        assert context["first_name"] == user.first_name and context["last_name"] == user.last_name
        assert context["expires_at"] == tokens[user.pk].expires_at.isoformat() == expiry.isoformat()
        assert emails[user.pk].recipient == tokens[user.pk].email == user.email
        digest = hashlib.sha256(token_from_nonce(context["nonce"]).encode()).hexdigest()
        assert tokens[user.pk].token_hash == digest  # only the hash is stored (R25)
        assert user_for_digest(digest) == user
    assert expiry > timezone.now()


@pytest.mark.parametrize("count", [3, COPY_FROM + 10])
def test_pk_among_selects_exactly_the_rows_named(client_org, count):
    users = PortalUser.objects.bulk_create([
        PortalUser(client=client_org, email=f"p{n}@example.test", first_name="P", last_name=str(n))
        for n in range(count + 5)])
    wanted = [user.pk for user in users[:count]]

    chosen = PortalUser.objects.filter(pk_among(PortalUser, wanted), client=client_org)

    assert sorted(chosen.values_list("pk", flat=True)) == sorted(wanted)
