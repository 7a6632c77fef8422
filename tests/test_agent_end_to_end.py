"""`manage.py ad_agent` end to end: a real Samba DC, the live portal (Django's live server), real HTTP."""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from directory.management.commands.ad_agent import AgentConfig, PortalClient, PortalDown, load_config
from directory.models import AdMode, AgentUpload, Integration, IntegrationKind, UploadStatus
from directory.uploads import UploadConnector

ROOT = Path(__file__).resolve().parent.parent


def agent_integration(client) -> tuple[Integration, str]:
    integration = Integration.objects.create(client=client, name="Corp AD (agent)",
                                             kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.AGENT)
    return integration, integration.issue_agent_token()


def run_agent(samba_dc, base_dn: str, portal: str, token: str, tmp_path: Path, *extra: str):
    """The agent as an operator runs it: its own process, secrets in the environment, not on the command line."""
    ca_file = tmp_path / "corp-ca.pem"
    ca_file.write_text(samba_dc.ca_pem)
    env = {**os.environ, "AGENT_TOKEN": token, "LDAP_BIND_PASSWORD": samba_dc.admin_password,
           "LOG_LEVEL": "DEBUG"}
    command = [sys.executable, "manage.py", "ad_agent", "--once", "--portal", portal,
               "--ldap-url", "ldaps://127.0.0.2:636", "--ldap-url", samba_dc.ldaps_url, "--base-dn", base_dn,
               "--bind-dn", samba_dc.admin_bind_dn, "--ca-file", str(ca_file), "--retries", "2",
               "--retry-delay", "0.1", *extra]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r17_ad_agent_once_fills_the_integrations_folders_and_users(samba_dc, samba_ou, live_server, client_org,
                                                                    tmp_path):
    sales = samba_dc.make_ou("Sales", samba_ou)
    emea = samba_dc.make_ou("EMEA", sales)
    users = {i: samba_dc.add_user(emea if i % 2 else sales, samba_dc.unique_sam(f"ag{i}"), f"Agent{i}", "User",
                                  f"agent{i}@corp.example.test" if i != 3 else None, enabled=i != 4)
             for i in range(5)}
    guids = set(users.values())
    integration, token = agent_integration(client_org)

    result = run_agent(samba_dc, samba_ou, live_server.url, token, tmp_path, "--chunk-size", "2", "--page-size", "2")

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
def test_r26_ad_agent_with_a_wrong_token_is_told_401_and_pushes_nothing(samba_dc, samba_ou, live_server,
                                                                        client_org, tmp_path):
    integration, _ = agent_integration(client_org)
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("wt"), "Wrong", "Token", "wt@corp.example.test")

    result = run_agent(samba_dc, samba_ou, live_server.url, "pat_guessed-token", tmp_path)

    assert result.returncode != 0
    assert "refused the agent token (401)" in result.stderr
    assert "pat_guessed-token" not in result.stdout + result.stderr
    assert not AgentUpload.objects.exists() and integration.folders.count() == 0


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r17_without_once_the_agent_pushes_at_start_and_again_every_interval(samba_dc, samba_ou, live_server,
                                                                             client_org, tmp_path):
    integration, token = agent_integration(client_org)
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("loop"), "Loop", "User", "loop@corp.example.test")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(samba_dc.ca_pem)
    env = {**os.environ, "AGENT_TOKEN": token, "LDAP_BIND_PASSWORD": samba_dc.admin_password,
           "LDAP_CA_FILE": str(ca_file), "PYTHONUNBUFFERED": "1"}
    # An interval of about a second stands in for the 6 hours.
    agent = subprocess.Popen(
        [sys.executable, "manage.py", "ad_agent", "--portal", live_server.url, "--ldap-url", samba_dc.ldaps_url,
         "--base-dn", samba_ou, "--bind-dn", samba_dc.admin_bind_dn, "--interval-hours", "0.0003"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(portal: str, token: str, retries: int = 4) -> AgentConfig:
    return load_config({"portal": portal, "token": token, "ldap_url": ["ldaps://127.0.0.1"], "base_dn": "DC=x",
                        "bind_dn": "cn=r", "bind_password": "pw", "retries": retries, "retry_delay": 1}, {}, None)


@pytest.mark.django_db(transaction=True)
def test_the_agent_retries_with_backoff_until_the_portal_is_back(live_server, client_org):
    _, token = agent_integration(client_org)
    port = free_port()
    waits: list[float] = []
    relay: list[_Forwarder] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:  # the portal comes back during the second wait
            host, live_port = live_server.url.split("//")[1].split(":")
            server = _Forwarder(port, (host, int(live_port)))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            relay.append(server)

    client = PortalClient(config(f"http://127.0.0.1:{port}", token, retries=5), sleep=sleep)
    try:
        reply = client.post("uploads/", {"directory_id": "corp.example.test", "agent_version": "t"})
    finally:
        for server in relay:
            server.shutdown()
            server.server_close()
    assert waits == [1, 2]  # exponential
    assert reply["status"] == "open"


def test_the_agent_gives_up_after_its_retries_and_says_why():
    port = free_port()
    waits: list[float] = []
    client = PortalClient(config(f"http://127.0.0.1:{port}", "pat_x", retries=4), sleep=waits.append)
    with pytest.raises(PortalDown, match=f"cannot reach http://127.0.0.1:{port}.*after 4 attempts"):
        client.post("uploads/", {})
    assert waits == [1, 2, 4]


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
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as missing:
        load_config({"portal": "https://p.example"}, {}, None)
    assert "--token (or AGENT_TOKEN)" in str(missing.value) and "--bind-password" in str(missing.value)
