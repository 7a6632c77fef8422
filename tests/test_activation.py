"""Account activation over real SMTP and Django's test client (R18, R25, R26)."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client as BrowserClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from notifications.activation import queue_activation_emails, void_tokens_for
from notifications.models import OutboxEmail, OutboxStatus
from notifications.outbox import send_queued
from passportal.models import ActivationToken, DisabledReason, PortalUser

NEW_PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def _fresh_rate_limits_and_a_fast_hasher(db, settings):
    cache.clear()
    # The real hashing API with a cheap algorithm: the suite stays fast (PBKDF2 costs ~0.3 s per call).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(client, email: str, first_name: str = "Ann", last_name: str = "Archer", **fields) -> PortalUser:
    return PortalUser.objects.create(client=client, email=email, first_name=first_name, last_name=last_name, **fields)


def send_activation(smtp, user: PortalUser) -> str:
    """Queue and send the user's activation email; returns the link's path from the delivered email."""
    assert queue_activation_emails([user.pk]) == 1
    before = len(smtp.to(user.email))
    send_queued()
    delivered = smtp.to(user.email)
    assert len(delivered) == before + 1
    return link_path(delivered[-1].text)


def link_path(text: str) -> str:
    match = re.search(r"http://testserver(/activate/[A-Za-z0-9_-]{43}/)", text)
    assert match, text
    return match.group(1)


def activate_through_pages(browser, path: str, password: str = NEW_PASSWORD):
    """Follow the link like a browser, choose a password; returns the last response."""
    first = browser.get(path)
    if first.status_code != 302:  # a refused link answers at once, with no session
        return first
    form_url = first["Location"]
    form_page = browser.get(form_url)
    if b'name="password1"' not in form_page.content:
        return form_page
    return browser.post(form_url, {"password1": password, "password2": password}, follow=True)


def neutral_page(browser, path: str):
    return browser.get(path, follow=True)


# --- the email -------------------------------------------------------------------------------


def test_r18_activation_email_names_the_client_the_user_the_link_and_the_expiry(smtp, vault, client_org, settings):
    settings.ACTIVATION_TOKEN_DAYS = 3
    user = make_user(client_org, "ann@contoso.test", first_name="Ann")
    queue_activation_emails([user.pk])
    report = send_queued()
    assert report.sent == 1

    [mail] = smtp.to("ann@contoso.test")
    assert mail.rcpt_tos == ("ann@contoso.test",)
    assert "Contoso Ltd" in mail.subject
    expires = ActivationToken.objects.get(user=user).expires_at
    assert timedelta(days=3) - timedelta(minutes=1) < expires - timezone.now() <= timedelta(days=3)
    expiry_text = expires.strftime("%-d %B %Y")
    for body in (mail.text, mail.html):
        assert "Hello Ann" in body
        assert "Contoso Ltd" in body and "Acme MSP" in body
        assert expiry_text in body
        assert re.search(r"http://testserver/activate/[A-Za-z0-9_-]{43}/", body)
    assert link_path(mail.text) == link_path(mail.html)


def test_r18_a_pro_user_email_names_the_msp(smtp, vault):
    user = make_user(vault, "tom@msp.test", first_name="Tom")
    queue_activation_emails([user.pk])
    send_queued()
    [mail] = smtp.to("tom@msp.test")
    assert "Acme MSP" in mail.subject
    assert "Hello Tom" in mail.text and "Acme MSP has created an account for you" in mail.text


# --- the whole activation -------------------------------------------------------------------------


def test_r18_whole_activation_through_the_pages_and_the_link_works_once(smtp, client_org, client):
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)

    first = client.get(path)
    assert first.status_code == 302
    assert first["Location"] == reverse("activation-set-password")
    assert "/activate/" + path.split("/")[2] not in first["Location"], "the token must leave the URL"
    # Our own pages get the referrer (CSRF's origin check needs it), other sites never do.
    assert first["Referrer-Policy"] == "same-origin"

    form_page = client.get(first["Location"])
    assert form_page.status_code == 200
    assert b"ann@contoso.test" in form_page.content and b'name="password1"' in form_page.content

    done = client.post(first["Location"], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True)
    assert done.status_code == 200
    assert b"Your account is ready" in done.content

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user.activated_at is not None and user.status == "active"
    assert ActivationToken.objects.get(user=user).used_at is not None

    again = activate_through_pages(client, path, password="another-long-password-77")
    assert b"This link cannot be used" in again.content
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_r18_the_password_must_pass_django_validators_and_the_link_stays_usable(smtp, client_org, client):
    user = make_user(client_org, "ann.archer@contoso.test", first_name="Ann", last_name="Archer")
    path = send_activation(smtp, user)
    response = activate_through_pages(client, path, password="short")
    assert response.status_code == 200
    assert b"too short" in response.content
    response = activate_through_pages(client, path, password="ann.archer@contoso")
    assert b"too similar" in response.content
    user.refresh_from_db()
    assert user.activated_at is None and not user.password

    final = activate_through_pages(client, path)
    assert b"Your account is ready" in final.content


def test_r18_expired_link_gets_the_neutral_page(smtp, client_org, client):
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    ActivationToken.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))

    page = neutral_page(client, path)
    assert page.status_code == 200
    assert b"This link cannot be used" in page.content
    user.refresh_from_db()
    assert user.activated_at is None


def test_r18_a_resend_voids_the_old_link(smtp, client_org, client):
    user = make_user(client_org, "ann@contoso.test")
    old_path = send_activation(smtp, user)
    new_path = send_activation(smtp, user)
    assert old_path != new_path

    assert b"This link cannot be used" in neutral_page(client, old_path).content
    assert b"Your account is ready" in activate_through_pages(client, new_path).content


def test_r18_a_resend_before_sending_cancels_the_queued_email(smtp, client_org):
    user = make_user(client_org, "ann@contoso.test")
    queue_activation_emails([user.pk])
    queue_activation_emails([user.pk])
    send_queued()
    assert len(smtp.to("ann@contoso.test")) == 1
    assert OutboxEmail.objects.get(status=OutboxStatus.CANCELLED).context == {}


def test_r18_an_email_change_voids_the_link(smtp, client_org, client):
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    PortalUser.objects.filter(pk=user.pk).update(email="ann.new@contoso.test")
    assert void_tokens_for([user.pk]) == 1

    assert b"This link cannot be used" in neutral_page(client, path).content


def test_r18_a_link_sent_to_an_old_address_fails_even_if_nobody_voided_it(smtp, client_org, client):
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    PortalUser.objects.filter(pk=user.pk).update(email="ann.new@contoso.test")

    assert b"This link cannot be used" in neutral_page(client, path).content


def test_r18_unknown_and_used_links_get_the_same_response(smtp, client_org, client):
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    activate_through_pages(client, path)

    client.cookies.clear()
    used = neutral_page(client, path)
    client.cookies.clear()
    unknown = neutral_page(client, "/activate/" + "x" * 43 + "/")
    assert used.status_code == unknown.status_code == 200
    assert used.redirect_chain == unknown.redirect_chain
    assert used.content == unknown.content


@pytest.mark.parametrize(
    "disable", [{"disabled_by_staff": True}, {"disabled_reason": DisabledReason.DIRECTORY}], ids=["staff", "directory"]
)
def test_r18_a_disabled_user_cannot_activate(smtp, client_org, client, disable):
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    PortalUser.objects.filter(pk=user.pk).update(status="disabled", **disable)

    unknown = neutral_page(client, "/activate/" + "y" * 43 + "/")
    page = neutral_page(client, path)
    assert page.content == unknown.content
    user.refresh_from_db()
    assert user.activated_at is None and not user.password


def test_r18_a_user_disabled_while_on_the_form_cannot_finish(smtp, client_org, client):
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    form_url = client.get(path)["Location"]
    assert client.get(form_url).status_code == 200
    PortalUser.objects.filter(pk=user.pk).update(status="disabled", disabled_by_staff=True)

    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True)
    assert b"This link cannot be used" in response.content
    user.refresh_from_db()
    assert user.activated_at is None and not user.password


def test_r18_disabled_and_activated_users_get_no_email(smtp, client_org):
    disabled = make_user(client_org, "off@contoso.test", status="disabled", disabled_by_staff=True)
    active = make_user(client_org, "on@contoso.test", activated_at=timezone.now(), status="active")
    pending = make_user(client_org, "new@contoso.test")
    assert queue_activation_emails([disabled.pk, active.pk, pending.pk]) == 1
    send_queued()
    assert [mail.rcpt_tos for mail in smtp.delivered] == [("new@contoso.test",)]


def test_the_ready_page_needs_a_finished_activation(client, db):
    response = client.get(reverse("activation-ready"))
    assert b"This link cannot be used" in response.content


# --- rules R25, R26 ---------------------------------------------------------------------------------


def test_r25_the_token_is_stored_only_as_a_hash_and_never_logged(smtp, client_org, caplog):
    caplog.set_level("DEBUG")
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    raw = path.split("/")[2]

    token = ActivationToken.objects.get(user=user)
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ActivationToken.objects.filter(user=user).values().get())
    # Once sent, the plain token lives only in the recipient's mailbox.
    sent = OutboxEmail.objects.get(portal_user=user)
    assert sent.status == OutboxStatus.SENT and raw not in str(sent.context)
    assert raw not in caplog.text


def test_r26_a_link_reaches_only_its_own_users_account(smtp, client_org, vault, client):
    ann = make_user(client_org, "ann@contoso.test", first_name="Ann")
    bob = make_user(client_org, "bob@contoso.test", first_name="Bob")
    tom = make_user(vault, "tom@msp.test", first_name="Tom")
    queue_activation_emails([ann.pk, bob.pk, tom.pk])
    send_queued()
    ann_path = link_path(smtp.to("ann@contoso.test")[0].text)
    bob_path = link_path(smtp.to("bob@contoso.test")[0].text)

    # Ann's link, then Bob's in the same browser: the session follows the last link only.
    client.get(ann_path)
    form_page = client.get(client.get(bob_path)["Location"])
    assert b"bob@contoso.test" in form_page.content and b"ann@contoso.test" not in form_page.content

    assert b"Your account is ready" in activate_through_pages(client, ann_path).content
    ann.refresh_from_db()
    bob.refresh_from_db()
    tom.refresh_from_db()
    assert ann.check_password(NEW_PASSWORD) and ann.status == "active"
    assert bob.activated_at is None and not bob.password
    assert tom.activated_at is None and not tom.password
    # Bob's link still works for Bob only.
    assert b"Your account is ready" in activate_through_pages(client, bob_path, "bobs-own-long-password-9").content
    bob.refresh_from_db()
    assert bob.check_password("bobs-own-long-password-9") and not ann.check_password("bobs-own-long-password-9")


# --- limits, bulk, staff ----------------------------------------------------------------------------


def test_r26_refused_links_are_rate_limited_per_address(client, db, settings):
    settings.ACTIVATION_RATE_LIMIT = 3
    for n in range(3):
        assert b"This link cannot be used" in neutral_page(client, f"/activate/{n}{'z' * 42}/").content
    limited = client.get("/activate/" + "q" * 43 + "/")
    assert limited.status_code == 429 and b"Too many attempts" in limited.content
    assert limited["Retry-After"] == "600"
    assert client.get(reverse("activation-set-password")).status_code == 429
    other = client.get("/activate/" + "w" * 43 + "/", REMOTE_ADDR="10.9.8.7")
    assert other.status_code == 200 and b"This link cannot be used" in other.content, "another address is not held up"


def test_r26_one_link_tried_from_many_addresses_is_rate_limited(client, db, settings):
    settings.ACTIVATION_RATE_LIMIT = 3
    guess = "/activate/" + "z" * 43 + "/"
    for n in range(3):
        assert client.get(guess, REMOTE_ADDR=f"10.0.0.{n}").status_code == 200
    assert client.get(guess, REMOTE_ADDR="10.0.0.99").status_code == 429


def test_r26_a_valid_link_is_never_refused_because_others_guessed(smtp, client_org, client, settings):
    settings.ACTIVATION_RATE_LIMIT = 3
    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    token = path.split("/")[2]
    # A neighbour on the same address mistypes the link, keeping its first characters.
    for n in range(5):
        client.get(f"/activate/{token[:8]}{n}{'x' * 34}/")
    assert client.get(f"/activate/{token[:8]}{'y' * 35}/").status_code == 429
    assert b"Your account is ready" in activate_through_pages(BrowserClient(), path).content


def test_r26_refused_links_are_counted_atomically_under_concurrency(transactional_db, settings):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from passportal import ratelimit
    from passportal.tokens import record_refused_link

    settings.ACTIVATION_RATE_LIMIT = 1000

    def refuse(n: int) -> None:
        try:
            record_refused_link("198.51.100.9", f"{n:08d}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(refuse, range(80)))
    assert ratelimit.count("activation-address", "198.51.100.9", window_seconds=600) == 80


@pytest.mark.parametrize("trusted", [True, False], ids=["behind-trusted-proxy", "header-from-anyone"])
def test_r26_the_client_address_behind_a_trusted_proxy(client, db, settings, trusted):
    settings.ACTIVATION_RATE_LIMIT = 2
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"] if trusted else []
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    for n in range(2):
        client.get(f"/activate/{n}{'a' * 42}/", HTTP_X_FORWARDED_FOR="198.51.100.1", **proxy)
    # Another person behind the same proxy: only a trusted proxy's header tells them apart.
    other = client.get("/activate/" + "b" * 43 + "/", HTTP_X_FORWARDED_FOR="198.51.100.2", **proxy)
    assert other.status_code == (200 if trusted else 429)
    # A client cannot choose its address by writing the header itself: the proxy appends the real one.
    spoofed = client.get("/activate/" + "c" * 43 + "/", HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.1", **proxy)
    assert spoofed.status_code == 429


def test_r26_a_refused_link_creates_no_session(client, db):
    from django.contrib.sessions.models import Session

    for n in range(20):
        assert client.get(f"/activate/{n:02d}{'r' * 41}/").status_code == 200
    assert Session.objects.count() == 0
    assert "sessionid" not in client.cookies


def test_r25_the_session_holds_only_the_tokens_digest(smtp, client_org, client):
    from django.contrib.sessions.models import Session

    user = make_user(client_org, "ann@contoso.test")
    path = send_activation(smtp, user)
    raw = path.split("/")[2]
    client.get(path)
    [session] = Session.objects.all()
    decoded = session.get_decoded()
    assert raw not in str(decoded) and raw not in session.session_data
    assert hashlib.sha256(raw.encode()).hexdigest() in decoded.values()
    # A dump of the session table holds no working link.
    client.cookies.clear()
    other = BrowserClient()
    assert b"This link cannot be used" in other.get(reverse("activation-set-password")).content


def test_an_office_behind_one_address_can_activate_many_accounts(smtp, client_org, settings):
    settings.ACTIVATION_RATE_LIMIT = 3
    users = [make_user(client_org, f"staff{i}@contoso.test") for i in range(5)]
    queue_activation_emails([user.pk for user in users])
    send_queued()
    for user in users:
        browser = BrowserClient(REMOTE_ADDR="203.0.113.7")
        page = activate_through_pages(browser, link_path(smtp.to(user.email)[0].text))
        assert b"Your account is ready" in page.content, user.email


def non_inserts(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"].split()[0] for query in captured.captured_queries if not query["sql"].startswith("INSERT")]


def inserts(captured: CaptureQueriesContext) -> int:
    return sum(query["sql"].startswith("INSERT") for query in captured.captured_queries)


def insert_batches(model, count: int) -> int:
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    batch = min(1000, connection.ops.bulk_batch_size(fields, [None] * count))
    return math.ceil(count / batch)


def test_queueing_takes_the_same_number_of_queries_for_5_or_300_users(client_org):
    few = [make_user(client_org, f"few{i}@contoso.test").pk for i in range(5)]
    many = PortalUser.objects.bulk_create(
        [PortalUser(client=client_org, email=f"many{i}@contoso.test", first_name="M") for i in range(300)]
    )
    with CaptureQueriesContext(connection) as small:
        assert queue_activation_emails(few) == 5
    with CaptureQueriesContext(connection) as large:
        assert queue_activation_emails([user.pk for user in many]) == 300
    # Per user, nothing; only the database's own limit on parameters per statement splits an INSERT.
    assert non_inserts(large) == non_inserts(small)
    assert inserts(small) == 2
    assert inserts(large) == insert_batches(ActivationToken, 300) + insert_batches(OutboxEmail, 300)
    assert OutboxEmail.objects.filter(status=OutboxStatus.QUEUED).count() == 305


def test_queueing_enqueues_the_sender_task_once_after_commit(client_org, django_capture_on_commit_callbacks):
    users = [make_user(client_org, f"u{i}@contoso.test").pk for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        queue_activation_emails(users)
    [queued] = OrmQ.objects.all()
    assert SignedPackage.loads(queued.payload)["func"] == "notifications.tasks.send_outbox"


def test_r18_staff_resend_activation_for_a_selection(smtp, client_org, client):
    admin_user = get_user_model().objects.create_superuser("root", "root@msp.test", "a-long-test-password")
    client.force_login(admin_user)
    ann = make_user(client_org, "ann@contoso.test")
    bob = make_user(client_org, "bob@contoso.test")
    off = make_user(client_org, "off@contoso.test", status="disabled", disabled_by_staff=True)
    old_path = send_activation(smtp, ann)

    response = client.post(
        reverse("admin:passportal_portaluser_changelist"),
        {"action": "resend_activation", "_selected_action": [ann.pk, bob.pk, off.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Activation email queued for 2 user(s)." in page
    assert "1 user(s) skipped" in page
    send_queued()
    assert len(smtp.to("ann@contoso.test")) == 2 and len(smtp.to("bob@contoso.test")) == 1
    assert not smtp.to("off@contoso.test")
    client.logout()
    assert b"This link cannot be used" in neutral_page(client, old_path).content
    new_path = link_path(smtp.to("ann@contoso.test")[-1].text)
    assert b"Your account is ready" in activate_through_pages(client, new_path).content
