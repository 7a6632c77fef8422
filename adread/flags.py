"""The bits of AD's `userAccountControl`, defined once for the reader, the demo directory and the test DC.

The values are Microsoft's (MS-ADTS 2.2.16, "userAccountControl Bits"); authentik keeps the same table as an
IntFlag in `sources/ldap/sync/vendor/ms_ad.py`. Only ACCOUNTDISABLE decides anything here (R8: a disabled
account is disabled in the portal); the others name what the demo data and the tests write.
"""

from __future__ import annotations

import enum


class UserAccountControl(enum.IntFlag):
    SCRIPT = 0x1
    ACCOUNTDISABLE = 0x2
    HOMEDIR_REQUIRED = 0x8
    LOCKOUT = 0x10
    PASSWD_NOTREQD = 0x20
    PASSWD_CANT_CHANGE = 0x40
    ENCRYPTED_TEXT_PWD_ALLOWED = 0x80
    TEMP_DUPLICATE_ACCOUNT = 0x100
    NORMAL_ACCOUNT = 0x200
    INTERDOMAIN_TRUST_ACCOUNT = 0x800
    WORKSTATION_TRUST_ACCOUNT = 0x1000
    SERVER_TRUST_ACCOUNT = 0x2000
    DONT_EXPIRE_PASSWORD = 0x10000
    MNS_LOGON_ACCOUNT = 0x20000
    SMARTCARD_REQUIRED = 0x40000
    TRUSTED_FOR_DELEGATION = 0x80000
    NOT_DELEGATED = 0x100000
    USE_DES_KEY_ONLY = 0x200000
    DONT_REQ_PREAUTH = 0x400000
    PASSWORD_EXPIRED = 0x800000
    TRUSTED_TO_AUTH_FOR_DELEGATION = 0x1000000
    PARTIAL_SECRETS_ACCOUNT = 0x4000000


def account_enabled(user_account_control: int) -> bool:
    """R8: an account is enabled unless its ACCOUNTDISABLE bit is set."""
    return not user_account_control & UserAccountControl.ACCOUNTDISABLE


__all__ = ["UserAccountControl", "account_enabled"]
