"""Where an Entra integration's client secret, and the token it buys, may be sent (R26).

The login hosts msal knows for Microsoft's clouds, and the Graph hosts of those clouds. Any other host (a sovereign
proxy, the test suite's stand-in) must be on the operator's ENTRA_ALLOWED_HOSTS: a staff member cannot point a
stored secret at a host of theirs. Checked when the settings are typed (directory.validators) and again before
every login (entra_client).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings as django_settings
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

LOGIN_HOSTS = WELL_KNOWN_AUTHORITY_HOSTS
GRAPH_HOSTS = frozenset({"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us",
                         "microsoftgraph.chinacloudapi.cn"})
_ASK_OPERATOR = "any other host must first be allowed by whoever runs the portal (ENTRA_ALLOWED_HOSTS)"


def operator_hosts() -> frozenset[str]:
    """ENTRA_ALLOWED_HOSTS: extra login and Graph hosts the operator trusts ("host": any port; "host:port")."""
    return frozenset(h.strip().lower() for h in django_settings.ENTRA_ALLOWED_HOSTS if h.strip())


def _host_allowed(host: str, port: int | None, microsoft: frozenset[str]) -> bool:
    if port in (None, 443) and host in microsoft:
        return True
    extra = operator_hosts()
    return host in extra or f"{host}:{port}" in extra


def login_host_problem(login_host: str) -> str:
    """Why the client secret may not be sent to this login host, in plain words; "" when it may."""
    value = login_host.strip()
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if not parts.hostname or parts.netloc != value or parts.username is not None or port == 0:
        return (f"{value[:80]!r} is not a host name: write the login host alone, e.g. login.microsoftonline.com "
                "(no https:// and no path).")
    if not _host_allowed(parts.hostname, port, LOGIN_HOSTS):
        return (f"{value} is not a Microsoft login host: use login.microsoftonline.com, or your national cloud's "
                f"(login.microsoftonline.us, login.chinacloudapi.cn); {_ASK_OPERATOR}.")
    return ""


def scope_problem(scope: str) -> str:
    """Why a token may not be asked for with this scope, in plain words; "" when it may.

    The scope decides which resource the client secret buys a token for, and that token goes to the Graph
    host: only Graph's own resources (or a host the operator allowed) may be named, never another service's.
    """
    value = scope.strip()
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = 0
    example = "write the Graph resource followed by /.default, e.g. https://graph.microsoft.com/.default"
    if parts.scheme != "https" or not parts.hostname or parts.path != "/.default" or parts.query or parts.fragment \
            or parts.username is not None or port == 0:
        return f"{value[:80]!r} is not a token scope: {example}."
    if not _host_allowed(parts.hostname, port, GRAPH_HOSTS):
        return (f"{parts.netloc} is not a Microsoft Graph resource: use your cloud's Graph (graph.microsoft.com, "
                f"graph.microsoft.us, dod-graph.microsoft.us, microsoftgraph.chinacloudapi.cn); {_ASK_OPERATOR}.")
    return ""


def graph_url_problem(graph_base_url: str) -> str:
    """Why Graph may not be read at this URL (it gets the token), in plain words; "" when it may."""
    url = graph_base_url.strip()
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if parts.scheme != "https":
        return "Graph is read over https only: write https://graph.microsoft.com/v1.0."
    if not parts.hostname or parts.username is not None or parts.query or parts.fragment or port == 0:
        return f"{url[:80]!r} is not a Graph base URL: write it as https://graph.microsoft.com/v1.0."
    if not _host_allowed(parts.hostname, port, GRAPH_HOSTS):
        return (f"{parts.netloc} is not a Microsoft Graph host: use https://graph.microsoft.com/v1.0, or your "
                "national cloud's Graph (graph.microsoft.us, dod-graph.microsoft.us, "
                f"microsoftgraph.chinacloudapi.cn); {_ASK_OPERATOR}.")
    return ""
