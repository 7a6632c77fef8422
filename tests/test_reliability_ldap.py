"""Faults of a real Active Directory (the Samba AD DC): a DC that dies in the middle of a paged search, a bind
account that can read nothing, and directory values a run must survive (R7, R21, R22)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
from ldap3.protocol.formatters.formatters import format_sid

from directory.connectors.ldap import LdapConnector
from directory.forms import IntegrationForm
from directory.models import Integration
from directory.sources import ldap_settings
from notifications.models import Notification
from passportal.models import PortalUser
from provisioning import sync
from provisioning.models import CreationIssue
from testing.samba import SambaDC
from tests.engine_helpers import site_level
from tests.test_engine_samba import ad_integration, map_ou


def enabled_states(client) -> dict[str, str]:
    return dict(PortalUser.objects.filter(client=client).values_list("email", "status"))


# ---------------------------------------------------------------- a DC that dies in the middle of a read


class StallingProxy:
    """A TCP relay between the connector and the DC: once `stall_after` bytes came back from the DC it stops
    relaying, drops its side of the DC connection and sets `stalled`; the client, waiting for its next page,
    sees its connection end only once `dc_down` is set (the test stopped the DC meanwhile)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.relayed = 0  # bytes from the DC to the client, over every connection
        self.stall_after: int | None = None
        self.stalled = threading.Event()
        self.dc_down = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()  # the DC is down: the client sees a refused/closed connection
                continue
            server.settimeout(None)
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_dc: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(4096):
                if from_dc and self.stall_after is not None and self.relayed + len(data) > self.stall_after:
                    # The rest of the read never reaches the client. The DC's side is closed cleanly (a DC
                    # worker left with a half-read connection keeps the DC from stopping).
                    source.close()
                    self.stalled.set()
                    self.dc_down.wait(60)
                    break
                if from_dc:
                    self.relayed += len(data)
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


@contextlib.contextmanager
def dc_stopped_when(samba_dc: SambaDC, event: threading.Event, down: threading.Event) -> Iterator[None]:
    """Stop the DC (samba_dc.stopped()) as soon as `event` is set, then set `down`; it is started again when
    the block ends."""
    done = threading.Event()

    def stopper() -> None:
        if not event.wait(60):
            return
        with samba_dc.stopped():
            down.set()
            done.wait(120)

    thread = threading.Thread(target=stopper, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        event.set()  # a read that never reached the threshold still gets the DC back
        thread.join(120)
        samba_dc.start()  # never leave the DC stopped


@pytest.mark.samba
def test_r21_a_dc_killed_in_the_middle_of_a_paged_search_fails_the_run_and_disables_nobody(samba_dc, samba_ou,
                                                                                            client_org):
    staff = samba_dc.make_ou("Staff", samba_ou)
    for n in range(30):
        samba_dc.add_user(staff, samba_dc.unique_sam(f"u{n}"), f"User{n}", "Paged", f"user{n}@corp.test")
    proxy = StallingProxy(636)
    try:
        integration = ad_integration(client_org, samba_dc, samba_ou)  # page_size=3: 10+ pages
        Integration.objects.filter(pk=integration.pk).update(ldap_urls=f"ldaps://127.0.0.1:{proxy.port}")
        integration.refresh_from_db()
        assert sync.run_sync(integration, "command").status == "succeeded"
        map_ou(integration, staff, samba_dc, site_level())
        first = sync.run_sync(integration, "command")
        assert first.status == "succeeded" and first.counts["created"] == 30, first.error
        before = enabled_states(client_org)

        start = proxy.relayed
        assert sync.run_sync(integration, "command").status == "succeeded"
        one_read = proxy.relayed - start
        proxy.stall_after = proxy.relayed + one_read // 3  # a third of the way through the next read
        with dc_stopped_when(samba_dc, proxy.stalled, proxy.dc_down):
            failed = sync.run_sync(integration, "command")
        assert proxy.stalled.is_set() and proxy.dc_down.is_set(), "the DC was stopped while the run was reading"
        assert failed.status == "failed"
        assert "failed part-way" in failed.error and f"127.0.0.1:{proxy.port}" in failed.error, failed.error
        assert enabled_states(client_org) == before, "nobody's enabled state changed"
        note = Notification.objects.filter(kind="sync_failed", integration=integration).latest("pk")
        assert "directory unreachable" in note.title and "Nobody's enabled state was changed" in note.message

        proxy.stall_after = None
        back = sync.run_sync(integration, "command")
        assert back.status == "succeeded" and not any(back.counts.values()), (back.error, back.counts)
        assert enabled_states(client_org) == before
    finally:
        proxy.close()


@pytest.mark.samba
def test_r21_a_dc_stopped_before_the_run_fails_it_with_the_reason_and_a_notification(samba_dc, samba_ou,
                                                                                     client_org):
    staff = samba_dc.make_ou("Staff", samba_ou)
    samba_dc.add_user(staff, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.test")
    integration = ad_integration(client_org, samba_dc, samba_ou)
    sync.run_sync(integration, "command")
    map_ou(integration, staff, samba_dc, site_level())
    sync.run_sync(integration, "command")
    before = enabled_states(client_org)
    with samba_dc.stopped():
        run = sync.run_sync(integration, "command")
    assert run.status == "failed" and "Could not read" in run.error and "cannot connect" in run.error, run.error
    assert enabled_states(client_org) == before == {"ann@corp.test": "pending"}
    assert Notification.objects.filter(kind="sync_failed", integration=integration).count() == 1
    assert sync.run_sync(integration, "command").status == "succeeded"


# ---------------------------------------------------------------- a bind account that can read nothing


def deny_everything_to(samba_dc: SambaDC, reader_guid: str, *dns: str) -> None:
    """An explicit deny ACE (read, list) for the reader on each object: AD then answers its searches with nothing."""
    samba_dc.conn.search(samba_dc.dn_of(reader_guid), "(objectClass=*)", "BASE", attributes=["objectSid"])
    sid = format_sid(samba_dc.conn.entries[0].objectSid.raw_values[0])
    for dn in dns:
        subprocess.run(
            ["samba-tool", "dsacl", "set", "-s", str(samba_dc.smb_conf), "-H", "ldap://127.0.0.1",
             "-U", "Administrator", "--password", samba_dc.admin_password, "--objectdn", dn,
             "--sddl", f"(D;;RPLCLORC;;;{sid})"],
            check=True, capture_output=True, timeout=60,
        )


@pytest.mark.samba
def test_r21_r22_a_bind_account_that_can_read_nothing_holds_the_disables(samba_dc, samba_ou, client_org):
    staff = samba_dc.make_ou("Staff", samba_ou)
    people = [samba_dc.add_user(staff, samba_dc.unique_sam(n), n.title(), "Lee", f"{n}@corp.test")
              for n in ("ann", "bob", "cat")]
    reader = samba_dc.add_user(f"CN=Users,{samba_dc.base_dn}", samba_dc.unique_sam("reader"), "Read", "Only")
    try:
        integration = ad_integration(client_org, samba_dc, samba_ou)
        sync.run_sync(integration, "command")
        map_ou(integration, staff, samba_dc, site_level())
        assert sync.run_sync(integration, "command").counts["created"] == 3

        # The integration is switched to an account that binds fine but may read nothing under the base DN.
        deny_everything_to(samba_dc, reader, samba_ou, staff, *(samba_dc.dn_of(g) for g in people))
        Integration.objects.filter(pk=integration.pk).update(bind_dn=samba_dc.dn_of(reader),
                                                             bind_password=samba_dc.user_password)
        integration.refresh_from_db()
        snapshot = LdapConnector(ldap_settings(integration)).read_snapshot([])
        assert snapshot.complete and snapshot.users == () and snapshot.folders == ()  # AD said: nothing here

        for _ in range(2):  # the folders it no longer sees are marked gone: the next run holds all the same
            run = sync.run_sync(integration, "command")
            assert run.status == "held", (run.status, run.error, run.counts)
            assert "no users at all" in run.error and len(run.held_disables) == 3
            assert set(enabled_states(client_org).values()) == {"pending"}, "never applied"
        assert Notification.objects.filter(kind="disables_held", integration=integration).count() == 2

        # Staff fix the account: the next run finds everyone where they were and changes nothing.
        Integration.objects.filter(pk=integration.pk).update(bind_dn=samba_dc.admin_bind_dn,
                                                             bind_password=samba_dc.admin_password)
        integration.refresh_from_db()
        back = sync.run_sync(integration, "command")
        assert back.status == "succeeded" and not any(back.counts.values()), back.counts
    finally:
        samba_dc.conn.delete(samba_dc.dn_of(reader))


# ---------------------------------------------------------------- values a directory may hold


HOSTILE_PEOPLE = [
    # (givenName, sn, mail) -> what the portal user is (None: a creation issue)
    ("Zoë", "Ångström", "Zoe.Angstrom+sales@Corp.test"),
    ("محمد", "عبد الله", "mohammed@corp.test"),  # right-to-left
    ("Ada 🚀", "Lovelace ✨", "ada@corp.test"),  # emoji
    ("Иван", "Петров", "ivan@пример.рф"),  # an international domain
    ("  Spacy ", " Name  ", "  spacy@corp.test  "),  # leading and trailing spaces
    ("Bell\x07", "Tab\tName", "bell@corp.test"),  # control characters
    ("*)(objectClass=*", ")(|(uid=*", "inject@corp.test"),  # LDAP filter injection as names
    ("L" * 64, "N" * 64, "long@corp.test"),  # the longest givenName/sn AD allows
    ("Bad", "Mail", "bad\x00mail@corp.test"),
    ("No", "At", "not-an-email"),
]


@pytest.mark.samba
def test_r7_directory_values_are_stored_safely_or_reported_never_a_crashed_run(samba_dc, samba_ou, client_org):
    staff = samba_dc.make_ou("Staff", samba_ou)
    for given, sn, mail in HOSTILE_PEOPLE:
        samba_dc.add_user(staff, samba_dc.unique_sam("odd"), given, sn, mail)
    # A name longer than AD's own limits comes only through displayName (256): never used for names (R6).
    samba_dc.add_user(staff, samba_dc.unique_sam("disp"), "Dee", "Play", "dee@corp.test", display_name="D" * 256)
    integration = ad_integration(client_org, samba_dc, samba_ou)
    sync.run_sync(integration, "command")
    map_ou(integration, staff, samba_dc, site_level())

    run = sync.run_sync(integration, "command")

    assert run.status == "succeeded", run.error
    users = {u.email: u for u in PortalUser.objects.filter(client=client_org)}
    assert set(users) == {"Zoe.Angstrom+sales@Corp.test", "mohammed@corp.test", "ada@corp.test",
                          "ivan@пример.рф", "spacy@corp.test", "bell@corp.test", "inject@corp.test",
                          "long@corp.test", "dee@corp.test"}
    assert (users["mohammed@corp.test"].first_name, users["mohammed@corp.test"].last_name) == ("محمد", "عبد الله")
    assert users["ada@corp.test"].first_name == "Ada 🚀"
    assert (users["spacy@corp.test"].first_name, users["spacy@corp.test"].last_name) == ("Spacy", "Name")
    assert users["bell@corp.test"].first_name == "Bell" and users["bell@corp.test"].last_name == "TabName"
    assert users["inject@corp.test"].first_name == "*)(objectClass=*"
    assert len(users["long@corp.test"].first_name) == 64
    assert sorted(CreationIssue.objects.values_list("reason", "user_name")) == [
        ("invalid_email", "Bad Mail"), ("invalid_email", "No At")]
    again = sync.run_sync(integration, "command")
    assert again.status == "succeeded" and not any(again.counts.values()), again.counts


def test_ldap_filter_injection_is_refused_where_a_value_could_reach_a_filter(samba_dc):
    connector = LdapConnector(ldap_settings(Integration(
        kind="ad", ad_mode="direct", ldap_urls=samba_dc.ldaps_url, base_dn=samba_dc.base_dn,
        bind_dn=samba_dc.admin_bind_dn, bind_password=samba_dc.admin_password, tls_ca_pem=samba_dc.ca_pem)))
    for value in ("*", "*)(objectClass=*", "00000000-0000-0000-0000-000000000001)(|(cn=*"):
        with pytest.raises(ValueError, match="not a GUID"):
            connector.read_user(value)


@pytest.mark.django_db
def test_ldap_urls_and_base_dn_that_smuggle_filters_are_refused_on_their_field(client_org):
    form = IntegrationForm(data={
        "client": client_org.pk, "name": "Corp AD", "kind": "ad", "ad_mode": "direct", "link_enabled": "on",
        "disable_threshold_percent": 10, "disable_threshold_minimum": 25, "page_size": 500, "tls_mode": "ldaps",
        "tls_verify": "on", "bind_dn": "CN=svc,DC=corp,DC=test", "new_bind_password": "pw",
        "ldap_urls": "ldaps://dc1.corp.test:636/??sub?(objectClass=*)\nldap://*)(uid=*",
        "base_dn": "*)(objectClass=*",
    })
    assert not form.is_valid()
    assert "not an LDAP URL" in form.errors["ldap_urls"][0]
    assert "not a DN" in form.errors["base_dn"][0]
