"""Microsoft's clouds for Entra ID: where to log in, where Graph answers, and the token scope to ask for.

The values are Microsoft's published ones ("Microsoft Graph national cloud deployments": the Entra ID
endpoint and the Graph service root of each cloud; a scope names the Graph root of the same cloud, since
tokens of one cloud are not accepted by another). Plain data: the models, the forms, the API and the
connector all read it, so a cloud sets its three values together in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

CUSTOM = "custom"
ENDPOINT_FIELDS = ("login_host", "graph_base_url", "graph_scope")


@dataclass(frozen=True)
class Cloud:
    key: str
    label: str
    login_host: str
    graph_base_url: str
    graph_scope: str

    def endpoints(self) -> dict[str, str]:
        return {"login_host": self.login_host, "graph_base_url": self.graph_base_url, "graph_scope": self.graph_scope}


def _cloud(key: str, label: str, login_host: str, graph_root: str) -> Cloud:
    return Cloud(key, label, login_host, f"{graph_root}/v1.0", f"{graph_root}/.default")


CLOUDS: dict[str, Cloud] = {cloud.key: cloud for cloud in (
    # Microsoft 365 GCC (not High) lives in the global cloud and uses these too.
    _cloud("global", "Global", "login.microsoftonline.com", "https://graph.microsoft.com"),
    _cloud("usgov", "US Government (GCC High)", "login.microsoftonline.us", "https://graph.microsoft.us"),
    _cloud("usgov_dod", "US Government (DoD)", "login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    _cloud("china", "China (21Vianet)", "login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
)}
DEFAULT_CLOUD = "global"


def cloud_for(login_host: str, graph_base_url: str) -> str:
    """The cloud whose login host and Graph URL these are, or CUSTOM (for rows saved before clouds existed)."""
    host = (login_host or "").strip().lower()
    url = (graph_base_url or "").strip().rstrip("/")
    for cloud in CLOUDS.values():
        if host == cloud.login_host and url.lower() == cloud.graph_base_url:
            return cloud.key
    return CUSTOM
