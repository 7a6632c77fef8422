"""/admin/login/ locks out a username from an address after too many wrong passwords (django-axes).

Real requests through the login form, as an attacker guessing passwords would send them. The limit is
ADMIN_LOGIN_FAILURE_LIMIT (setting AXES_FAILURE_LIMIT, 5 by default) and the lock-out lasts
ADMIN_LOGIN_LOCKOUT_MINUTES (AXES_COOLOFF_TIME, 15 minutes by default).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.test import Client as HttpClient
from django.utils import timezone
from rest_framework.test import APIClient

from provisioning.api.authentication import issue_api_token
from tests.fixtures_browser import STAFF_PASSWORD, staff_user

pytestmark = pytest.mark.django_db

ATTACKER = "127.0.0.66"
STAFF_DESK = "127.0.0.77"


def sign_in(browser: HttpClient, password: str, *, username: str = "boss", address: str = ATTACKER, **meta):
    return browser.post("/admin/login/?next=/admin/", {"username": username, "password": password},
                        REMOTE_ADDR=address, **meta)


def signed_in(browser: HttpClient, address: str = ATTACKER) -> bool:
    return browser.get("/admin/", REMOTE_ADDR=address).status_code == 200


@pytest.fixture
def boss():
    return staff_user("boss", superuser=True)


def test_forty_wrong_passwords_then_the_right_one_is_refused_during_the_lock_out(boss):
    browser = HttpClient()
    answers = [sign_in(browser, f"guess-{n}").status_code for n in range(40)]

    limit = django_settings.AXES_FAILURE_LIMIT
    assert answers[: limit - 1] == [200] * (limit - 1), "the login page again, with its error"
    assert set(answers[limit - 1:]) == {429}, "locked out from the limit on"

    response = sign_in(browser, STAFF_PASSWORD)
    assert response.status_code == 429
    assert "Sign-in paused" in response.content.decode()
    assert 'name="password"' not in response.content.decode(), "no form to try again on"
    assert not signed_in(browser)


def test_the_lock_out_ends_after_the_cool_off_time(boss):
    browser = HttpClient()
    for n in range(django_settings.AXES_FAILURE_LIMIT):
        sign_in(browser, f"guess-{n}")
    assert sign_in(browser, STAFF_PASSWORD).status_code == 429

    # The controlled clock: the last failure was longer ago than the cool-off time.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - django_settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert sign_in(browser, STAFF_PASSWORD).status_code == 302
    assert signed_in(browser)


def test_an_attempt_during_the_lock_out_starts_the_wait_again(boss):
    browser = HttpClient()
    for n in range(django_settings.AXES_FAILURE_LIMIT):
        sign_in(browser, f"guess-{n}")
    almost_over = timezone.now() - django_settings.AXES_COOLOFF_TIME + timedelta(seconds=30)
    AccessAttempt.objects.update(attempt_time=almost_over)

    assert sign_in(browser, "one-more-guess").status_code == 429
    # Were the wait not restarted, it would be over in 30 s: move the clock on by a minute.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=1))
    assert AccessAttempt.objects.get().attempt_time > almost_over
    assert sign_in(browser, STAFF_PASSWORD).status_code == 429


def test_the_lock_out_is_per_username_and_address(boss):
    staff_user("tech", superuser=True)
    attacker = HttpClient()
    for n in range(django_settings.AXES_FAILURE_LIMIT):
        sign_in(attacker, f"guess-{n}")
    assert sign_in(attacker, STAFF_PASSWORD).status_code == 429

    # The same username from staff's own desk, and another username from the attacker's address, still work.
    desk = HttpClient()
    assert sign_in(desk, STAFF_PASSWORD, address=STAFF_DESK).status_code == 302
    assert signed_in(desk, STAFF_DESK)
    other = HttpClient()
    assert sign_in(other, STAFF_PASSWORD, username="tech").status_code == 302
    assert signed_in(other)


def test_fewer_failures_than_the_limit_are_forgotten_by_a_right_password(boss):
    browser = HttpClient()
    for round_ in range(3):
        for n in range(django_settings.AXES_FAILURE_LIMIT - 1):
            assert sign_in(browser, f"guess-{round_}-{n}").status_code == 200
        assert sign_in(browser, STAFF_PASSWORD).status_code == 302, "the right password clears the count"
        browser.post("/admin/logout/", REMOTE_ADDR=ATTACKER)


def test_the_failure_limit_is_a_setting(boss, settings):
    settings.AXES_FAILURE_LIMIT = 2
    browser = HttpClient()
    assert sign_in(browser, "guess-1").status_code == 200
    assert sign_in(browser, "guess-2").status_code == 429
    assert sign_in(browser, STAFF_PASSWORD).status_code == 429


def test_behind_a_trusted_proxy_each_client_address_is_counted_on_its_own(boss, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    proxy = {"address": "127.0.0.1"}
    attacker = HttpClient()
    for n in range(django_settings.AXES_FAILURE_LIMIT):
        sign_in(attacker, f"guess-{n}", HTTP_X_FORWARDED_FOR=ATTACKER, **proxy)
    assert sign_in(attacker, STAFF_PASSWORD, HTTP_X_FORWARDED_FOR=ATTACKER, **proxy).status_code == 429

    # Staff reaching the portal through the same proxy are not locked out by the attacker's guesses.
    desk = HttpClient()
    assert sign_in(desk, STAFF_PASSWORD, HTTP_X_FORWARDED_FOR=STAFF_DESK, **proxy).status_code == 302


def test_the_api_still_takes_tokens_and_the_admin_session(boss):
    token_api = APIClient()
    token_api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(boss)}")
    assert token_api.get("/api/clients/").status_code == 200

    browser = HttpClient()
    assert sign_in(browser, STAFF_PASSWORD).status_code == 302
    assert browser.get("/api/clients/", REMOTE_ADDR=ATTACKER).status_code == 200
