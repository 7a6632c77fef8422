"""The standalone agent end to end: a real Samba DC, the live portal (Django's live server), real HTTPS.

The agent runs as an operator runs it: its own process, in an environment holding only its own requirements
(tests/agent_env.py), so nothing of the portal is importable there. The live server speaks plain HTTP, which
the agent refuses without --insecure (the token would travel in clear): a TLS relay with a throwaway CA
(trustme) stands in front of it, as a reverse proxy would.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import AgentConfig, ConfigError, load_config
from agent.portal import PortalClient, PortalDown, push_snapshot, user_payload
from directory.connectors.base import FolderRecord, Snapshot, UserRecord, full_snapshot
from directory.models import AdMode, AgentUpload, Integration, IntegrationKind, UploadStatus
from directory.uploads import UploadConnector
from testing.net import ServerThread, free_port
from testing.tls import LoopbackCA
from tests import agent_env

agent_python = agent_env.agent_python  # a fixture: the agent's own environment

ROOT = Path(__file__).resolve().parent.parent


def agent_integration(client) -> tuple[Integration, str]:
    integration = Integration.objects.create(client=client, name="Corp AD (agent)",
                                             kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.AGENT)
    return integration, integration.issue_agent_token()


class HttpsPortal:
    """The live server behind TLS: `url` to give the agent, `ca_file` to trust it (--portal-ca-file)."""

    def __init__(self, url: str, ca_file: Path) -> None:
        self.url = url
        self.ca_file = ca_file


@pytest.fixture
def https_portal(live_server, tmp_path) -> Iterator[HttpsPortal]:
    ca = LoopbackCA()
    ca_file = ca.write_ca(tmp_path / "portal-ca.pem")
    host, live_port = live_server.url.split("//")[1].split(":")
    with ServerThread(_TlsForwarder(free_port(), (host, int(live_port)), ca.server_context()), "tls-relay") as relay:
        yield HttpsPortal(f"https://localhost:{relay.port}", ca_file)


def agent_environ(**extra: str) -> dict[str, str]:
    """The agent's environment: the machine's, without anything that would let it find the portal's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DJANGO", "VIRTUAL_ENV"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_agent(agent_python: Path, samba_dc, base_dn: str, portal: HttpsPortal | str, token: str, tmp_path: Path,
              *extra: str):
    """The agent as an operator runs it: its own process and environment, the token in the environment, the bind
    password in a file only its owner reads; over HTTPS (an HttpsPortal), or a plain URL for the cases that need
    one."""
    ca_file = tmp_path / "corp-ca.pem"
    ca_file.write_text(samba_dc.ca_pem)
    password_file = tmp_path / "bind-password"
    password_file.write_text(samba_dc.admin_password + "\n")
    password_file.chmod(0o600)
    env = agent_environ(AGENT_TOKEN=token, LOG_LEVEL="DEBUG")
    if isinstance(portal, HttpsPortal):
        extra = ("--portal-ca-file", str(portal.ca_file), *extra)
        portal = portal.url
    once = () if "--check" in extra else ("--once",)
    command = [str(agent_python), "-m", "agent", *once, "--portal", portal,
               "--bind-password-file", str(password_file),
               "--ldap-url", "ldaps://127.0.0.2:636", "--ldap-url", samba_dc.ldaps_url, "--base-dn", base_dn,
               "--bind-dn", samba_dc.admin_bind_dn, "--ca-file", str(ca_file), "--retries", "2",
               "--retry-delay", "0.1", *extra]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r17_ad_agent_once_fills_the_integrations_folders_and_users(agent_python, samba_dc, samba_ou, https_portal,
                                                                    client_org, tmp_path):
    sales = samba_dc.make_ou("Sales", samba_ou)
    emea = samba_dc.make_ou("EMEA", sales)
    users = {i: samba_dc.add_user(emea if i % 2 else sales, samba_dc.unique_sam(f"ag{i}"), f"Agent{i}", "User",
                                  f"agent{i}@corp.example.test" if i != 3 else None, enabled=i != 4)
             for i in range(5)}
    guids = set(users.values())
    integration, token = agent_integration(client_org)

    result = run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path, "--chunk-size", "2",
                       "--page-size", "2")

    assert result.returncode == 0, result.stderr
    assert "Pushed 3 OUs and 5 users of corp.example.test" in result.stdout
    for secret in (token, samba_dc.admin_password):  # R25: never printed or logged
        assert secret not in result.stdout + result.stderr
    assert {f.path.split("/", 1)[-1] for f in integration.folders.all()} == {samba_ou[3:].split(",")[0], "Sales",
                                                                            "Sales/EMEA"}
    assert integration.folders.get(name="EMEA").external_id == samba_dc.guid_of(emea)
    upload = AgentUpload.objects.get(integration=integration)
    assert upload.status == UploadStatus.COMMITTED and upload.chunk_count == 2 + 3  # chunks of 2 records

    snapshot = UploadConnector(integration).read_snapshot([samba_dc.guid_of(emea)])
    assert {u.id for u in snapshot.users} == {users[1], users[3]}
    everyone = {u.id: u for u in UploadConnector(integration).read_snapshot(()).users}
    assert set(everyone) == guids
    assert sum(not u.enabled for u in everyone.values()) == 1 and sum(not u.email for u in everyone.values()) == 1
    integration.refresh_from_db()
    assert integration.agent_version.startswith("passportal-ad-agent")


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r26_ad_agent_with_a_wrong_token_is_told_401_and_pushes_nothing(agent_python, samba_dc, samba_ou,
                                                                        https_portal, client_org, tmp_path):
    integration, _ = agent_integration(client_org)
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("wt"), "Wrong", "Token", "wt@corp.example.test")

    result = run_agent(agent_python, samba_dc, samba_ou, https_portal, "pat_guessed-token", tmp_path)

    assert result.returncode != 0
    assert "refused the agent token (401)" in result.stderr
    assert "pat_guessed-token" not in result.stdout + result.stderr
    assert not AgentUpload.objects.exists() and integration.folders.count() == 0


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r17_without_once_the_agent_pushes_at_start_and_again_every_interval(agent_python, samba_dc, samba_ou,
                                                                             https_portal, client_org, tmp_path):
    integration, token = agent_integration(client_org)
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("loop"), "Loop", "User", "loop@corp.example.test")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(samba_dc.ca_pem)
    env = agent_environ(AGENT_TOKEN=token, LDAP_BIND_PASSWORD=samba_dc.admin_password, LDAP_CA_FILE=str(ca_file),
                        PORTAL_CA_FILE=str(https_portal.ca_file))
    # An interval of about a second stands in for the 6 hours.
    agent = subprocess.Popen(
        [str(agent_python), "-m", "agent", "--portal", https_portal.url, "--ldap-url", samba_dc.ldaps_url,
         "--base-dn", samba_ou, "--bind-dn", samba_dc.admin_bind_dn, "--interval-hours", "0.0003"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    pushes = []
    try:
        for line in agent.stdout:
            if line.startswith("Pushed "):
                pushes.append(line)
            if len(pushes) == 2:
                break
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert len(pushes) == 2 and all("1 users of corp.example.test" in p for p in pushes)
    latest = AgentUpload.objects.get(integration=integration)  # older committed uploads are dropped
    assert latest.status == UploadStatus.COMMITTED and f"as upload {latest.pk}." in pushes[1]


class _Forwarder(socketserver.ThreadingTCPServer):
    """A TCP relay to the live server: the portal 'comes back' when it starts listening."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        super().__init__(("127.0.0.1", port), _Relay)


class _TlsForwarder(_Forwarder):
    """The same relay with TLS on the side the agent connects to."""

    def __init__(self, port: int, target: tuple[str, int], context: ssl.SSLContext) -> None:
        self.context = context
        socketserver.ThreadingTCPServer.__init__(self, ("127.0.0.1", port), _TlsRelay)
        self.target = target


class _TlsRelay(socketserver.BaseRequestHandler):
    """One thread per connection, select() between the two sockets: an SSL socket must not be read in one
    thread while another writes to it."""

    def handle(self) -> None:
        try:
            front = self.server.context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that gave up on the handshake
        with front, socket.create_connection(self.server.target) as back:
            other = {front: back, back: front}
            with contextlib.suppress(OSError):
                while True:
                    ready, _, _ = select.select([front, back], [], [], 120)
                    if not ready:
                        return
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        other[sock].sendall(data)


class _Relay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream = socket.create_connection(self.server.target)

        def pump(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        back.start()
        pump(self.request, upstream)
        back.join(5)
        upstream.close()


def config(portal: str, token: str, retries: int = 4, retry_delay: float = 1) -> AgentConfig:
    """An agent's settings for the live server or the relays above, which speak plain HTTP: hence --insecure."""
    return load_config({"portal": portal, "token": token, "ldap_url": ["ldaps://127.0.0.1"], "base_dn": "DC=x",
                        "bind_dn": "cn=r", "retries": retries, "retry_delay": retry_delay, "insecure": True},
                       {"LDAP_BIND_PASSWORD": "pw"}, None)


@pytest.mark.django_db(transaction=True)
def test_the_agent_retries_with_backoff_until_the_portal_is_back(live_server, client_org):
    _, token = agent_integration(client_org)
    port = free_port()
    waits: list[float] = []
    relay: list[ServerThread] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:  # the portal comes back during the second wait
            host, live_port = live_server.url.split("//")[1].split(":")
            relay.append(ServerThread(_Forwarder(port, (host, int(live_port))), "relay").start())

    client = PortalClient(config(f"http://127.0.0.1:{port}", token, retries=5), sleep=sleep)
    try:
        reply = client.post("uploads/", {"directory_id": "corp.example.test", "agent_version": "t"})
    finally:
        for server in relay:
            server.stop()
    assert waits == [1, 2]  # exponential
    assert reply["status"] == "open"


def test_the_agent_gives_up_after_its_retries_and_says_why():
    port = free_port()
    waits: list[float] = []
    client = PortalClient(config(f"http://127.0.0.1:{port}", "pat_x", retries=4), sleep=waits.append)
    with pytest.raises(PortalDown, match=f"cannot reach http://127.0.0.1:{port}.*after 4 attempts"):
        client.post("uploads/", {})
    assert waits == [1, 2, 4]


# ---------------------------------------------------------------- keeping to the portal's limits


def snapshot_of(users: int) -> Snapshot:
    ou = FolderRecord(id=str(uuid.uuid4()), name="Sales", kind="ou", parent_id=None, path="corp.test/Sales")
    people = [
        UserRecord(id=str(uuid.uuid4()), first_name=f"First{n}", last_name="Lee", email=f"u{n}@corp.test",
                   enabled=True, folder_ids=frozenset({ou.id}), display_name=f"First{n} Lee", upn=f"u{n}@corp.test",
                   # some records far longer than others: the split must go by bytes, not by count
                   dn=f"CN=First{n} Lee,{'OU=Deep,' * (40 if n % 7 == 0 else 1)}DC=corp,DC=test")
        for n in range(users)]
    return full_snapshot("corp.test", [ou], people, [ou.id])


@pytest.mark.django_db(transaction=True)
def test_r26_the_agent_splits_its_chunks_to_fit_the_portals_AGENT_CHUNK_MAX_BYTES(live_server, client_org,
                                                                                 settings):
    settings.AGENT_CHUNK_MAX_BYTES = 4096
    settings.AGENT_REQUESTS_PER_MINUTE = 1000
    integration, token = agent_integration(client_org)
    snapshot = snapshot_of(60)
    total = sum(len(json.dumps(user_payload(u))) for u in snapshot.users)  # about 27 KB

    reply = push_snapshot(PortalClient(config(live_server.url, token)), snapshot, chunk_size=1000)

    upload = AgentUpload.objects.get(pk=reply["upload_id"], integration=integration)
    assert (upload.status, upload.user_count) == (UploadStatus.COMMITTED, 60)
    # Every chunk fitted (the portal refuses a larger one with 413), and no more were sent than needed.
    assert math.ceil(total / 4096) + 1 <= upload.chunk_count <= 2 * math.ceil(total / 4096) + 1


@pytest.mark.django_db(transaction=True)
def test_r26_the_agent_waits_as_long_as_retry_after_asks(live_server, client_org, settings):
    settings.AGENT_REQUESTS_PER_MINUTE = 1
    _, token = agent_integration(client_org)
    waits: list[float] = []
    client = PortalClient(config(live_server.url, token, retries=3, retry_delay=0.01), sleep=waits.append)
    if 60 - time.time() % 60 < 10:  # the limit counts per clock minute: start well inside one
        time.sleep(60 - time.time() % 60 + 0.1)
    client.post("uploads/", {"directory_id": "corp.test", "agent_version": "t"})

    with pytest.raises(PortalDown, match=r"429.*AGENT_REQUESTS_PER_MINUTE.*gave up after 3 attempts"):
        client.post("uploads/", {"directory_id": "corp.test", "agent_version": "t"})
    assert len(waits) == 2 and all(1 <= wait <= 60 for wait in waits)  # Retry-After, not the 0.01 s backoff


def test_agent_settings_come_from_flags_then_environment_then_the_config_file(tmp_path):
    ini = tmp_path / "agent.ini"
    ini.write_text("[agent]\nportal = https://from-file.example\ntoken = file-token\nldap_url = ldaps://dc1\n"
                   "  ldaps://dc2\nbase_dn = DC=corp,DC=test\nbind_dn = svc@corp.test\nbind_password = file-pw\n"
                   "page_size = 250\n")
    loaded = load_config({"portal": "https://from-flag.example"}, {"AGENT_TOKEN": "env-token"}, str(ini))

    assert loaded.portal == "https://from-flag.example" and loaded.token == "env-token"
    assert loaded.ldap.urls == ("ldaps://dc1", "ldaps://dc2") and loaded.ldap.page_size == 250
    assert loaded.ldap.bind_password == "file-pw"
    assert "file-pw" not in repr(loaded) and "env-token" not in repr(loaded)  # R25


def test_missing_agent_settings_are_named():
    with pytest.raises(ConfigError) as missing:
        load_config({"portal": "https://p.example"}, {}, None)
    assert "--token (or AGENT_TOKEN)" in str(missing.value) and "--bind-password" in str(missing.value)


# ---------------------------------------------------------------- secrets in clear, and on the command line (R25)


def agent_command(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`manage.py ad_agent --once ...`: the wrapper over the standalone agent, on the portal's own host."""
    return subprocess.run([sys.executable, "manage.py", "ad_agent", "--once", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False)


@contextlib.contextmanager
def listener() -> Iterator[socket.socket]:
    """A port that records whether anyone connected: the agent must refuse before it sends anything."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock


def nobody_connected(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return True
    return False


SECRETS = {"AGENT_TOKEN": "pat_secret-agent-token", "LDAP_BIND_PASSWORD": "secret-bind-password"}


def test_r25_ad_agent_refuses_an_http_portal_without_insecure():
    with listener() as portal:
        result = agent_command("--portal", f"http://127.0.0.1:{portal.getsockname()[1]}",
                               "--ldap-url", "ldaps://127.0.0.1:1", "--base-dn", "DC=corp,DC=test",
                               "--bind-dn", "svc@corp.test", **SECRETS)
        assert nobody_connected(portal)
    assert result.returncode != 0
    assert "plain http://: the agent token" in result.stderr and "pass --insecure" in result.stderr
    assert not any(secret in result.stdout + result.stderr for secret in SECRETS.values())


def test_r25_ad_agent_refuses_ldap_without_tls_unless_insecure():
    with listener() as dc:
        result = agent_command("--portal", "https://portal.example.test", "--ldap-url",
                               f"ldap://127.0.0.1:{dc.getsockname()[1]}", "--tls-mode", "none",
                               "--base-dn", "DC=corp,DC=test", "--bind-dn", "svc@corp.test", **SECRETS)
        assert nobody_connected(dc)
    assert result.returncode != 0
    assert "--tls-mode none: the bind password" in result.stderr and "pass --insecure" in result.stderr

    accepted = load_config({"portal": "http://portal.test", "ldap_url": ["ldap://dc"], "tls_mode": "none",
                            "base_dn": "DC=x", "bind_dn": "cn=r", "insecure": True}, SECRETS, None)
    assert len(accepted.warnings) == 2 and accepted.ldap.plain_ldap_allowed


def test_r25_the_bind_password_is_refused_on_the_command_line_where_ps_shows_it(tmp_path):
    result = agent_command("--portal", "https://portal.example.test", "--ldap-url", "ldaps://127.0.0.1:1",
                           "--base-dn", "DC=corp,DC=test", "--bind-dn", "svc@corp.test",
                           "--bind-password", "typed-on-the-command-line", AGENT_TOKEN="pat_x")
    assert result.returncode != 0
    assert "--bind-password is not accepted" in result.stderr and "(ps)" in result.stderr
    assert "--bind-password-file" in result.stderr and "LDAP_BIND_PASSWORD" in result.stderr
    assert "typed-on-the-command-line" not in result.stdout + result.stderr


def test_r25_the_bind_password_comes_from_a_file_or_the_environment(tmp_path):
    flags = {"portal": "https://p.test", "token": "pat_x", "ldap_url": ["ldaps://dc"], "base_dn": "DC=x",
             "bind_dn": "cn=r"}
    password_file = tmp_path / "bind-password"
    password_file.write_text("  spaces kept \r\n")
    assert load_config({**flags, "bind_password_file": str(password_file)}, {}, None).ldap.bind_password == \
        "  spaces kept "
    assert load_config(flags, {"LDAP_BIND_PASSWORD_FILE": str(password_file), "LDAP_BIND_PASSWORD": "other"},
                       None).ldap.bind_password == "  spaces kept "  # a file, when named, wins
    assert load_config(flags, {"LDAP_BIND_PASSWORD": "from-env"}, None).ldap.bind_password == "from-env"
    with pytest.raises(ConfigError, match=r"Cannot read the bind password file .*missing: No such file"):
        load_config({**flags, "bind_password_file": str(tmp_path / "missing")}, {}, None)


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r25_with_insecure_the_agent_pushes_over_http_and_says_what_travels_in_clear(agent_python, samba_dc,
                                                                                    samba_ou, live_server,
                                                                                    client_org, tmp_path):
    integration, token = agent_integration(client_org)
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("ins"), "In", "Secure", "insecure@corp.example.test")

    result = run_agent(agent_python, samba_dc, samba_ou, live_server.url, token, tmp_path, "--insecure")

    assert result.returncode == 0, result.stderr
    assert f"WARNING (--insecure): the portal address {live_server.url} is plain http://" in result.stderr
    assert AgentUpload.objects.get(integration=integration).status == UploadStatus.COMMITTED
