"""pytest fixtures over the shared Samba AD DC (see testing/samba.py for the helpers and how it is shared).

    def test_something(samba_dc, samba_ou):
        guid = samba_dc.add_user(samba_ou, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.test")
        settings = ldap_settings_for(samba_dc, base_dn=samba_ou)   # read only this test's OU

Point the connector's base DN at `samba_ou` so a read sees this test's objects only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from ldap3.core.exceptions import LDAPException

from testing.samba import SambaDC, SambaNotInstalled


@pytest.fixture(scope="session")
def samba_dc() -> SambaDC:
    """The running DC: reused if up, else restored from the cached tarball (or provisioned) and started.

    Fails (never skips, never installs) when Samba is missing, with the set-up command to run.
    """
    dc = SambaDC()
    missing = None
    try:
        dc.ensure_running()
    except SambaNotInstalled as error:
        missing = str(error)
    if missing:
        pytest.fail(missing, pytrace=False)  # outside the except: no traceback of the check itself
    return dc


@pytest.fixture
def samba_ou(samba_dc: SambaDC) -> Iterator[str]:
    """A fresh, uniquely named OU under the domain (its DN); deleted with everything in it afterwards.

    While the test runs, this process holds the DC's shared "in use" lock, so another process's
    `samba_dc.stopped()` waits for the test to finish.
    """
    with samba_dc.in_use():
        samba_dc.start()  # a no-op unless a crashed test left it stopped
        samba_dc.reconnect_if_stale()
        dn = samba_dc.unique_ou()
        yield dn
        with contextlib.suppress(LDAPException, OSError):
            samba_dc.delete_tree(dn)
