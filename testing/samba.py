"""A real Samba AD domain controller on loopback, shared by every test process on the machine.

Samba's LDAP ports (389, 636) cannot be moved off an address, so there is one tests' DC per machine, on
127.0.0.1, kept under STATE_DIR (PASSPORTAL_SAMBA_DIR, default /tmp/passportal-test-samba). The benchmark runs
a second one on 127.0.0.2 with a state directory of its own (`SambaDC(host=..., state_dir=...)`, bench/ad.py).

How one DC is shared, within a pytest session and across concurrent pytest processes:

* Set-up: the session fixture `samba_dc` calls `ensure_running()`, which takes an exclusive lock on
  STATE_DIR.lock (fcntl.flock: released by the kernel if the process dies), so only one process
  provisions, restores or starts the DC at a time; the others wait on the lock, then find it up.
* Reuse: a DC that answers an admin simple bind over LDAPS, verified against our own CA, is reused
  as it is: by every test of the session and by every later or concurrent session. It is left running
  when a session ends.
* Restore: the provisioned directory is cached as STATE_DIR/provisioned.tar, so a DC that is not
  running comes back from it in about a second instead of being provisioned again (5-6 s).
* Isolation: every test works in its own uniquely named OU (`unique_ou`, the `samba_ou` fixture),
  deleted with everything in it afterwards, so tests never see each other's objects, even across
  processes, and never need the DC reset.
* Down on purpose: while a test uses the DC its process holds a shared lock on STATE_DIR.in-use
  (`in_use()`, taken by `samba_ou`). `stopped()` (the "DC is down" tests) takes it exclusively: it waits
  until no other process is inside a DC test, and new ones wait until the DC is back up.
* Reconnect: each process keeps one admin connection for the write helpers (`conn`). Another process
  may have restarted the DC since it was made, so `samba_ou` probes it first (`reconnect_if_stale`)
  and a dead connection is re-made on next use; `stop()` drops it.

Nothing here installs packages. The Debian packages (samba, samba-ad-dc, ...) are installed by the set-up
step, `make system-deps` (scripts/install-system-deps.sh, run by `make test`); when they are missing,
`ensure_running()` raises `SambaNotInstalled`, which names that command.

Helpers here write to the DC on behalf of tests: the portal's own code never does (R1).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import ssl
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from adread.flags import UserAccountControl
from testing.net import port_open
from testing.tls import LoopbackCA

STATE_DIR = Path(os.environ.get("PASSPORTAL_SAMBA_DIR", "/tmp/passportal-test-samba"))
REALM = "CORP.EXAMPLE.TEST"
DOMAIN = "CORP"
BASE_DN = "DC=corp,DC=example,DC=test"
ADMIN_PASSWORD = "Adm1n-Passw0rd-Test"
USER_PASSWORD = "Us3r-Passw0rd-Test"  # every test user gets it; AD needs one to create an enabled account
ADMIN_BIND_DN = f"CN=Administrator,CN=Users,{BASE_DN}"
HOST = "127.0.0.1"  # the tests' DC; the benchmark runs a second one on 127.0.0.2 (bench/ad.py)

GROUP_GLOBAL = 0x2
GROUP_SECURITY_ENABLED = 0x80000000
SETUP_COMMAND = "make system-deps"  # scripts/install-system-deps.sh, as root; `make test` runs it first
SAMBA_PROGRAMS = ("samba", "samba-tool")


class SambaNotInstalled(RuntimeError):
    """The Samba AD DC programs are not on PATH: the machine's set-up step has not been run."""


def require_samba_installed() -> None:
    missing = [program for program in SAMBA_PROGRAMS if shutil.which(program) is None]
    if missing:
        raise SambaNotInstalled(
            f"The Samba AD DC the tests need is not installed ({', '.join(missing)} not found on PATH). "
            f"Run the set-up step first: `{SETUP_COMMAND}` (scripts/install-system-deps.sh, as root), "
            "which `make test` runs before pytest."
        )


def _flock(path: Path, mode: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, mode)
    return fd


@dataclass
class SambaDC:
    """The running DC and the helpers tests use to change its data.

    Attributes a test (or an integration it creates) needs:
      host                       the loopback address it listens on ("127.0.0.1"; any other is added to lo)
      ldaps_url / starttls_url   "ldaps://127.0.0.1:636", "ldap://127.0.0.1:389"
      base_dn                    "DC=corp,DC=example,DC=test"; domain "corp.example.test"
      admin_bind_dn / admin_password
      ca_pem                     the CA that signed the DC's certificate (SAN: 127.0.0.1, localhost)
      wrong_ca_pem               a CA that did not (for "refused with a wrong CA")
    """

    state_dir: Path = STATE_DIR
    host: str = HOST
    base_dn: str = BASE_DN
    domain: str = REALM.lower()
    admin_bind_dn: str = ADMIN_BIND_DN
    admin_password: str = ADMIN_PASSWORD
    user_password: str = USER_PASSWORD
    _usage_fd: int | None = field(default=None, repr=False)
    _usage_depth: int = field(default=0, repr=False)
    _conn: Connection | None = field(default=None, repr=False)

    # ---- paths -----------------------------------------------------------------------------
    @property
    def dc_dir(self) -> Path:
        return self.state_dir / "dc"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def tarball(self) -> Path:
        return self.state_dir / "provisioned.tar"

    @property
    def smb_conf(self) -> Path:
        return self.dc_dir / "etc" / "smb.conf"

    @property
    def ca_pem(self) -> str:
        return (self.tls_dir / "ca.pem").read_text()

    @property
    def wrong_ca_pem(self) -> str:
        return (self.tls_dir / "wrong-ca.pem").read_text()

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:636"

    @property
    def starttls_url(self) -> str:
        return f"ldap://{self.host}:389"

    @property
    def ldap_urls(self) -> list[str]:
        return [self.ldaps_url]

    # ---- life cycle --------------------------------------------------------------------------
    def ensure_running(self) -> None:
        """Reuse the DC if it answers, else restore (or provision) it and start it. Idempotent.

        Waits first for any other process inside `stopped()`, so it never "repairs" a DC stopped on purpose.
        """
        with self.in_use():
            lock_fd = _flock(self.state_dir.parent / f"{self.state_dir.name}.lock", fcntl.LOCK_EX)
            try:
                self._ensure_running_locked()
            finally:
                os.close(lock_fd)

    def _ensure_running_locked(self) -> None:
        if self.tls_dir.joinpath("ca.pem").exists() and self.answers():
            return
        require_samba_installed()
        self._stop_by_pid()
        self._make_tls()
        if not self.tarball.exists():
            self._provision()
        shutil.rmtree(self.dc_dir, ignore_errors=True)
        with tarfile.open(self.tarball) as tar:
            tar.extractall(self.state_dir, filter="tar")
        self._start_daemon()

    def answers(self, timeout: int = 3) -> bool:
        """True when the DC accepts the admin's simple bind over LDAPS verified with our CA."""
        try:
            conn = self.admin_connection(timeout=timeout)
        except (LDAPException, OSError):
            return False
        conn.unbind()
        return True

    def _make_tls(self) -> None:
        if (self.tls_dir / "ca.pem").exists():
            return
        ca = LoopbackCA("passportal test CA")
        ca.write_server_files(self.tls_dir, self.host, "localhost", f"dc1.{REALM.lower()}", rsa=True)
        LoopbackCA("some other CA").write_ca(self.tls_dir / "wrong-ca.pem")

    def _provision(self) -> None:
        """Provision the domain into dc_dir once and keep it as a tarball (before the first start)."""
        shutil.rmtree(self.dc_dir, ignore_errors=True)
        (self.dc_dir / "etc").mkdir(parents=True)
        empty_conf = self.state_dir / "empty.conf"
        empty_conf.write_text("")
        run_dir = self.dc_dir / "run"
        options = {
            "interfaces": self.host,
            "bind interfaces only": "yes",
            "server services": "ldap, cldap, kdc, drepl",
            "ldb:nosync": "true",
            "pid directory": str(run_dir),
            "ncalrpc dir": str(run_dir / "ncalrpc"),
            "winbindd socket directory": str(run_dir / "winbindd"),
            "ntp signd socket directory": str(run_dir / "ntp_signd"),
            "log file": str(self.dc_dir / "log" / "samba.log"),
        }
        command = [
            "samba-tool", "domain", "provision", "-s", str(empty_conf), f"--targetdir={self.dc_dir}",
            f"--realm={REALM}", f"--domain={DOMAIN}", "--server-role=dc", "--dns-backend=SAMBA_INTERNAL",
            "--use-rfc2307", "--backend-store=mdb", f"--adminpass={ADMIN_PASSWORD}",
        ] + [f"--option={key}={value}" for key, value in options.items()]
        subprocess.run(command, check=True, capture_output=True)
        # Added after provisioning: provision drops options it does not know about.
        extra = (
            f"\ttls enabled = yes\n\ttls keyfile = {self.tls_dir / 'server.key'}\n"
            f"\ttls certfile = {self.tls_dir / 'server.pem'}\n\ttls cafile = {self.tls_dir / 'ca.pem'}\n"
        )
        conf = self.smb_conf.read_text().replace("[global]\n", "[global]\n" + extra, 1)
        self.smb_conf.write_text(conf)
        subprocess.run(
            ["samba-tool", "user", "setexpiry", "Administrator", "--noexpiry", "-s", str(self.smb_conf)],
            check=True, capture_output=True,
        )
        with tarfile.open(self.tarball, "w") as tar:
            tar.add(self.dc_dir, arcname="dc")

    def _pid_file(self) -> Path:
        return self.dc_dir / "run" / "samba.pid"

    def _listen_on_host(self) -> None:
        """Samba binds only addresses an interface carries (`bind interfaces only`): give loopback this one
        if it lacks it (root, as Samba), and point the restored copy's listeners at it."""
        if self.host != HOST:  # 127.0.0.1 is always there; any 127/8 address binds, but Samba asks the interface
            shown = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True)
            if f"inet {self.host}/" not in shown.stdout:
                subprocess.run(["ip", "addr", "add", f"{self.host}/8", "dev", "lo"], check=True, capture_output=True)
        conf = self.smb_conf.read_text()
        pointed = re.sub(r"(?m)^(\s*interfaces = ).*$", lambda m: m.group(1) + self.host, conf, count=1)
        if pointed != conf:
            self.smb_conf.write_text(pointed)

    def _start_daemon(self) -> None:
        self._listen_on_host()
        (self.dc_dir / "log").mkdir(exist_ok=True)
        subprocess.run(["samba", "-s", str(self.smb_conf)], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.answers(timeout=1):
                return
            time.sleep(0.2)
        log = self.dc_dir / "log" / "samba.log"
        tail = log.read_text()[-3000:] if log.exists() else "(no log)"
        raise RuntimeError(f"Samba AD DC did not answer on {self.ldaps_url} within 60 s:\n{tail}")

    def _stop_by_pid(self) -> None:
        pid_file = self._pid_file()
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Wait for the listening socket to close, so the next start can bind it.
        while time.monotonic() < deadline and port_open(self.host, 636):
            time.sleep(0.1)

    # ---- sharing the DC between processes -----------------------------------------------------
    def _usage_lock_fd(self) -> int:
        if self._usage_fd is None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._usage_fd = os.open(self.state_dir.parent / f"{self.state_dir.name}.in-use", os.O_RDWR | os.O_CREAT,
                                     0o600)
        return self._usage_fd

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Hold a shared lock while a test talks to the DC, so `stopped()` elsewhere waits for it."""
        fd = self._usage_lock_fd()
        if self._usage_depth == 0:
            fcntl.flock(fd, fcntl.LOCK_SH)
        self._usage_depth += 1
        try:
            yield
        finally:
            self._usage_depth -= 1
            if self._usage_depth == 0:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def stop(self) -> None:
        """Stop the DC (by the pid it wrote). Prefer `stopped()`, which restarts it and shares nicely."""
        self._drop_connection()
        self._stop_by_pid()

    def start(self) -> None:
        """Start the DC again and wait until it answers an admin bind."""
        if not self.answers(timeout=1):
            self._start_daemon()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The DC is down inside the block and back up after it.

        Takes the "in use" lock exclusively: other processes' DC tests finish first and new ones wait.
        """
        fd = self._usage_lock_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)  # converts this process's shared lock, if it holds one
        try:
            self.stop()
            yield
        finally:
            self.start()
            fcntl.flock(fd, fcntl.LOCK_SH if self._usage_depth else fcntl.LOCK_UN)

    # ---- connections ----------------------------------------------------------------------------
    def tls(self, ca_pem: str | None = None) -> Tls:
        return Tls(validate=ssl.CERT_REQUIRED, ca_certs_data=ca_pem or self.ca_pem)

    def admin_connection(self, timeout: int = 5) -> Connection:
        """A new admin connection over LDAPS (bound). The caller unbinds it."""
        server = Server(self.host, port=636, use_ssl=True, tls=self.tls(), connect_timeout=timeout, get_info=NONE)
        return Connection(server, ADMIN_BIND_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True,
                          receive_timeout=timeout)

    @property
    def conn(self) -> Connection:
        """This process's admin connection for the write helpers (re-made after a stop)."""
        if self._conn is None or self._conn.closed:
            self._conn = self.admin_connection()
        return self._conn

    def reconnect_if_stale(self) -> None:
        """Another process may have restarted the DC since this process's connection was made: probe it."""
        if self._conn is None or self._conn.closed:
            return
        try:
            self._conn.extend.standard.who_am_i()
        except (LDAPException, OSError):
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(LDAPException, OSError):
                self._conn.unbind()
            self._conn = None

    # ---- writing test data (tests only; the portal never writes, R1) --------------------------
    def make_ou(self, name: str, parent_dn: str | None = None) -> str:
        """Create OU=<name> under parent_dn (default: the domain) and return its DN."""
        dn = f"OU={_rdn_value(name)},{parent_dn or self.base_dn}"
        self.conn.add(dn, ["top", "organizationalUnit"], {"ou": name})
        return dn

    def unique_ou(self, prefix: str = "t") -> str:
        """A fresh OU with a unique name under the domain root, e.g. OU=t-1a2b3c4d5e,DC=corp,..."""
        return self.make_ou(f"{prefix}-{uuid.uuid4().hex[:10]}")

    def add_user(self, ou_dn: str, sam: str, given: str, sn: str, mail: str | None = None,
                 enabled: bool = True, display_name: str | None = None) -> str:
        """Create a user CN=<given sn> in ou_dn and return its objectGUID as canonical text.

        sAMAccountName must be unique in the whole domain and at most 20 characters: tests make it
        unique with a short random suffix (see `unique_sam`).
        """
        cn = f"{given} {sn}".strip() or sam
        dn = f"CN={_rdn_value(cn)},{ou_dn}"
        attributes = {
            "sAMAccountName": sam,
            "userPrincipalName": f"{sam}@{self.domain}",
            "givenName": given,
            "sn": sn,
            "displayName": display_name or cn,
            "unicodePwd": f'"{self.user_password}"'.encode("utf-16-le"),
            "userAccountControl": int(UserAccountControl.NORMAL_ACCOUNT
                                      | (0 if enabled else UserAccountControl.ACCOUNTDISABLE)),
        }
        if mail:
            attributes["mail"] = mail
        self.conn.add(dn, ["top", "person", "organizationalPerson", "user"], attributes)
        return self.guid_of(dn)

    def unique_sam(self, prefix: str) -> str:
        """A sAMAccountName unique in the domain: <prefix>-<6 hex>, at most 20 characters."""
        return f"{prefix[:13]}-{uuid.uuid4().hex[:6]}"

    def guid_of(self, dn: str) -> str:
        self.conn.search(dn, "(objectClass=*)", BASE, attributes=["objectGUID"])
        return str(uuid.UUID(bytes_le=self.conn.entries[0].objectGUID.raw_values[0]))

    def dn_of(self, guid: str) -> str:
        """The current DN of the object with this objectGUID (it changes on rename and move)."""
        escaped = escape_filter_chars(uuid.UUID(guid).bytes_le)
        self.conn.search(self.base_dn, f"(objectGUID={escaped})", SUBTREE, attributes=["distinguishedName"])
        return self.conn.entries[0].entry_dn

    def set_uac(self, guid: str, value: int) -> None:
        self.conn.modify(self.dn_of(guid), {"userAccountControl": [(MODIFY_REPLACE, [value])]})

    def disable_user(self, guid: str) -> None:
        """Set userAccountControl's ACCOUNTDISABLE bit (0x202)."""
        self.set_uac(guid, int(UserAccountControl.NORMAL_ACCOUNT | UserAccountControl.ACCOUNTDISABLE))

    def enable_user(self, guid: str) -> None:
        """Clear the ACCOUNTDISABLE bit (0x200)."""
        self.set_uac(guid, int(UserAccountControl.NORMAL_ACCOUNT))

    def set_mail(self, guid: str, mail: str | None) -> None:
        """Change the user's mail; None removes it."""
        self.conn.modify(self.dn_of(guid), {"mail": [(MODIFY_REPLACE, [mail] if mail else [])]})

    def set_names(self, guid: str, given: str | None = None, sn: str | None = None) -> None:
        """Change givenName and/or sn (the names the portal uses, R6)."""
        changes = {}
        if given is not None:
            changes["givenName"] = [(MODIFY_REPLACE, [given])]
        if sn is not None:
            changes["sn"] = [(MODIFY_REPLACE, [sn])]
        self.conn.modify(self.dn_of(guid), changes)

    def rename_user(self, guid: str, new_cn: str) -> str:
        """Rename the user's CN in place (modify_dn); the objectGUID stays. Returns the new DN."""
        dn = self.dn_of(guid)
        self.conn.modify_dn(dn, f"CN={_rdn_value(new_cn)}")
        return f"CN={_rdn_value(new_cn)},{_parent_dn(dn)}"

    def move_user(self, guid: str, new_ou_dn: str) -> str:
        """Move the user to another OU (modify_dn with a new superior); the objectGUID stays."""
        dn = self.dn_of(guid)
        rdn = _first_rdn(dn)
        self.conn.modify_dn(dn, rdn, new_superior=new_ou_dn)
        return f"{rdn},{new_ou_dn}"

    def delete_user(self, guid: str) -> None:
        """Delete the user (AD keeps a tombstone a normal search does not return)."""
        self.conn.delete(self.dn_of(guid))

    # ---- groups (G1, G2)
    def add_security_group(self, ou_dn: str, name: str, *, members: Sequence[str] = (), security: bool = True
                           ) -> str:
        """A global group CN=<name> in ou_dn (security, or distribution) with these member DNs; returns its DN."""
        dn = f"CN={_rdn_value(name)},{ou_dn}"
        group_type = GROUP_GLOBAL | (GROUP_SECURITY_ENABLED if security else 0)
        # groupType is a signed 32-bit integer in AD: the security bit makes it negative.
        attributes = {"sAMAccountName": self.unique_sam("g"),
                      "groupType": group_type - (1 << 32) if group_type & (1 << 31) else group_type}
        self.conn.add(dn, ["top", "group"], attributes)
        for member in members:
            self.add_group_member(dn, member)
        return dn

    def add_group_member(self, group_dn: str, member_dn: str) -> None:
        self.conn.modify(group_dn, {"member": [(MODIFY_ADD, [member_dn])]})

    def remove_group_member(self, group_dn: str, member_dn: str) -> None:
        self.conn.modify(group_dn, {"member": [(MODIFY_DELETE, [member_dn])]})

    def rename_group(self, group_dn: str, new_name: str) -> str:
        self.conn.modify_dn(group_dn, f"CN={_rdn_value(new_name)}")
        return f"CN={_rdn_value(new_name)},{_parent_dn(group_dn)}"

    def rename_ou(self, ou_dn: str, new_name: str) -> str:
        """Rename an OU in place; its objectGUID (the folder identity, R19) stays. Returns the new DN."""
        self.conn.modify_dn(ou_dn, f"OU={_rdn_value(new_name)}")
        return f"OU={_rdn_value(new_name)},{_parent_dn(ou_dn)}"

    def move_ou(self, ou_dn: str, new_parent_dn: str) -> str:
        """Move an OU (and everything in it) under another parent. Returns the new DN."""
        rdn = _first_rdn(ou_dn)
        self.conn.modify_dn(ou_dn, rdn, new_superior=new_parent_dn)
        return f"{rdn},{new_parent_dn}"

    def delete_tree(self, dn: str) -> None:
        """Delete dn and everything below it (tree-delete control), e.g. a test's OU."""
        self.conn.delete(dn, controls=[("1.2.840.113556.1.4.805", True, None)])

    def add_computer(self, ou_dn: str, name: str) -> str:
        """A computer account (objectClass user + computer, objectCategory computer). Returns its GUID."""
        dn = f"CN={_rdn_value(name)},{ou_dn}"
        self.conn.add(dn, ["top", "person", "organizationalPerson", "user", "computer"],
                      {"sAMAccountName": f"{name[:14]}$",
                       "userAccountControl": int(UserAccountControl.WORKSTATION_TRUST_ACCOUNT)})
        return self.guid_of(dn)

    def add_contact(self, ou_dn: str, given: str, sn: str, mail: str) -> str:
        """A contact (objectCategory person, but not a user object). Returns its GUID."""
        dn = f"CN={_rdn_value(f'{given} {sn}')},{ou_dn}"
        self.conn.add(dn, ["top", "person", "organizationalPerson", "contact"],
                      {"givenName": given, "sn": sn, "mail": mail})
        return self.guid_of(dn)

    def add_group(self, ou_dn: str, name: str) -> str:
        dn = f"CN={_rdn_value(name)},{ou_dn}"
        self.conn.add(dn, ["top", "group"], {"sAMAccountName": name[:20]})
        return self.guid_of(dn)

    def subtree_state(self, dn: str) -> tuple[int, int]:
        """(number of objects, highest uSNChanged) under dn: any write to the subtree changes it (R1 tests).

        Scoped to one test's OU because other processes write elsewhere in the domain at the same time.
        """
        self.conn.search(dn, "(objectClass=*)", SUBTREE, attributes=["uSNChanged"])
        usns = [int(e.uSNChanged.value) for e in self.conn.entries]
        return len(usns), max(usns)

    def highest_usn(self) -> int:
        """The rootDSE's highestCommittedUSN: it grows with every write to the directory (R1 tests)."""
        self.conn.search("", "(objectClass=*)", BASE, attributes=["highestCommittedUSN"])
        return int(self.conn.entries[0].highestCommittedUSN.value)


def _rdn_value(value: str) -> str:
    from ldap3.utils.dn import escape_rdn

    return escape_rdn(value)


def _first_rdn(dn: str) -> str:
    from ldap3.utils.dn import to_dn

    return to_dn(dn)[0]


def _parent_dn(dn: str) -> str:
    from ldap3.utils.dn import to_dn

    return ",".join(to_dn(dn)[1:])
