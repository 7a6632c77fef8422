"""The LDAP connector of the portal: `adread.ldap` and the names of its parts, re-exported.

The reading code lives in the top-level `adread` package because the standalone on-prem agent reads AD
with the same module and must not need Django; this module keeps the names the portal (and its tests)
import from here.
"""

from adread.connection import LdapSettings, ReadStats
from adread.dn import dn_key, domain_of, domain_root, guid_filter, parent_dn, parent_key
from adread.ldap import LdapConnector
from adread.search import GUIDS_PER_LOOKUP, OU_ATTRIBUTES, OU_FILTER, SHOW_DELETED_OID, USER_ATTRIBUTES, USER_FILTER

__all__ = [
    "GUIDS_PER_LOOKUP", "OU_ATTRIBUTES", "OU_FILTER", "SHOW_DELETED_OID", "USER_ATTRIBUTES",
    "USER_FILTER", "LdapConnector", "LdapSettings", "ReadStats", "dn_key", "domain_of", "domain_root",
    "guid_filter", "parent_dn", "parent_key",
]
