"""Throwaway certificate authorities (trustme) for the harness's TLS servers on loopback.

Each server gets its own CA; a client is given that CA's PEM (an integration's `tls_ca_pem`, an agent's CA file),
exactly as an operator would give the portal a private CA. Nothing is trusted system-wide.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class LoopbackCA:
    """One throwaway CA and the server certificates it signs (by default for 127.0.0.1 and localhost)."""

    def __init__(self, organization_name: str | None = None) -> None:
        self._ca = trustme.CA(organization_name=organization_name)

    @property
    def ca_pem(self) -> str:
        return self._ca.cert_pem.bytes().decode()

    def write_ca(self, path: Path) -> Path:
        self._ca.cert_pem.write_to_path(str(path))
        return path

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A server-side SSL context holding a certificate for these names (default: loopback's)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*(names or LOOPBACK_NAMES)).configure_cert(context)
        return context

    def write_server_files(self, directory: Path, *names: str, rsa: bool = False) -> None:
        """ca.pem, server.pem (the certificate chain) and server.key (mode 0600) in directory, for a server that
        reads its TLS set-up from files (Samba). rsa=True for servers that do not take an ECDSA key."""
        directory.mkdir(parents=True, exist_ok=True)
        key_type = trustme.KeyType.RSA if rsa else trustme.KeyType.ECDSA
        leaf = self._ca.issue_cert(*(names or LOOPBACK_NAMES), key_type=key_type)
        key = directory / "server.key"
        leaf.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        with open(directory / "server.pem", "wb") as out:
            for blob in leaf.cert_chain_pems:
                out.write(blob.bytes())
        self.write_ca(directory / "ca.pem")
