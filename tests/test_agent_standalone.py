"""The on-prem agent as a program of its own: its own requirements, no Django, the portal's own LDAP reading code.

Run in an environment holding only agent/requirements.txt (tests/agent_env.py), against the real Samba DC and
the live portal behind TLS (the relay of test_agent_end_to_end).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import adread.connection
import adread.ldap
import adread.records
from agent import AGENT_VERSION
from directory.connectors import base as portal_base
from directory.connectors import ldap as portal_ldap
from directory.models import AgentUpload, Folder
from passportal.models import PermissionLevel
from provisioning.models import Mapping
from tests import agent_env, test_agent_end_to_end
from tests.test_agent_end_to_end import agent_environ, agent_integration, run_agent

agent_python = agent_env.agent_python  # fixtures: the agent's own environment, the live portal behind TLS
https_portal = test_agent_end_to_end.https_portal
ROOT = Path(__file__).resolve().parent.parent
PORTAL_PACKAGES = ("django", "rest_framework", "directory", "provisioning", "passportal", "notifications", "scim")


def test_r17_the_agent_runs_in_an_environment_of_its_own_requirements_and_imports_nothing_of_django(agent_python,
                                                                                                  tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(agent_python), *args], cwd=tmp_path, env=agent_environ(), capture_output=True,
                              text=True, timeout=60, check=False)

    # The environment really is the agent's alone: the portal's framework is not there to import.
    assert "No module named 'django'" in run("-c", "import django").stderr
    version = run("-m", "agent", "--version")
    assert (version.returncode, version.stdout.strip()) == (0, AGENT_VERSION), version.stderr
    # Every module of the agent, loaded: nothing of the portal among what Python imported.
    loaded = run("-c", "import sys, agent.cli, agent.run, agent.portal, agent.config, adread.ldap; "
                       "print('\\n'.join(sorted(sys.modules)))")
    assert loaded.returncode == 0, loaded.stderr
    modules = {name.split(".")[0] for name in loaded.stdout.split()}
    assert {"agent", "adread", "ldap3", "requests"} <= modules
    assert not modules & set(PORTAL_PACKAGES)


def test_r17_the_portal_and_the_agent_read_ad_with_one_module():
    # The portal's connector is the agent's, not a copy: the same objects, the same errors.
    assert portal_ldap.LdapConnector is adread.ldap.LdapConnector
    assert portal_ldap.LdapSettings is adread.connection.LdapSettings
    assert portal_base.DirectoryError is adread.records.DirectoryError
    assert portal_base.Snapshot is adread.records.Snapshot
    # And that module imports only the standard library and ldap3 (checked in its source, not only at run time).
    for module in (ROOT / "adread").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                assert name.split(".")[0] not in PORTAL_PACKAGES, f"{module.name} imports {name}"


def test_manage_py_ad_agent_is_the_standalone_agent():
    result = subprocess.run([sys.executable, "manage.py", "ad_agent", "--version"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    # The portal's own start-up may log a line first (django-axes does); the agent's answer is the last.
    assert (result.returncode, result.stdout.strip().splitlines()[-1]) == (0, AGENT_VERSION), result.stderr


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r17_agent_check_counts_the_users_of_each_mapped_ou_and_pushes_nothing(agent_python, samba_dc, samba_ou,
                                                                              https_portal, client_org, tmp_path):
    sales = samba_dc.make_ou("Sales", samba_ou)
    samba_dc.make_ou("Finance", samba_ou)
    for n in range(3):
        samba_dc.add_user(sales, samba_dc.unique_sam(f"ck{n}"), f"Check{n}", "User", f"ck{n}@corp.example.test",
                          enabled=n != 2)
    integration, token = agent_integration(client_org)
    assert run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path).returncode == 0
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, name="Sales"),
                           permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    uploads_before = AgentUpload.objects.count()

    result = run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path, "--check")

    assert result.returncode == 0, result.stderr
    assert f"bound as {samba_dc.admin_bind_dn}" in result.stdout and "1 OUs are mapped in the portal" in result.stdout
    assert "/Sales: 3 users (2 enabled)" in result.stdout and "Finance" not in result.stdout
    assert AgentUpload.objects.count() == uploads_before  # a check sends no upload
    assert samba_dc.admin_password not in result.stdout + result.stderr and token not in result.stdout


@pytest.mark.samba
def test_agent_check_without_a_portal_counts_every_ou_and_names_a_refused_bind(agent_python, samba_dc, samba_ou,
                                                                               tmp_path):
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("solo"), "Solo", "User", "solo@corp.example.test")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(samba_dc.ca_pem)
    base = [str(agent_python), "-m", "agent", "--check", "--ldap-url", samba_dc.ldaps_url, "--base-dn", samba_ou,
            "--bind-dn", samba_dc.admin_bind_dn, "--ca-file", str(ca_file)]

    good = subprocess.run(base, cwd=tmp_path, env=agent_environ(LDAP_BIND_PASSWORD=samba_dc.admin_password),
                          capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0, good.stderr
    assert ": 1 users (1 enabled)" in good.stdout

    wrong = subprocess.run(base, cwd=tmp_path, env=agent_environ(LDAP_BIND_PASSWORD="not-the-password"),
                           capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 1 and "refused the bind: wrong password" in wrong.stderr
    assert "not-the-password" not in wrong.stdout + wrong.stderr
