"""Listeners on 127.0.0.1 that stand where an attacker would: they record every byte a client sends them.

A test points an integration at one and then asserts what arrived (R26: a stored secret never reaches an
endpoint it was not typed for). Nothing in the code under test knows about them: they are real sockets.

    with ByteTrap() as trap:                     # plain TCP; ByteTrap(tls=True) decrypts TLS with its own CA
        ... ldap_urls=f"ldap://127.0.0.1:{trap.port}" ...
    assert trap.connections == 0 and PASSWORD.encode() not in trap.received

    with LoginTrap() as login:                   # HTTPS impersonating a Microsoft login host (OIDC discovery)
        ... login_host=login.host, tls_ca_pem=login.ca_pem ...
    assert b"client_secret=" not in login.received
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from testing.net import LOOPBACK, ServerThread
from testing.tls import LoopbackCA


class _Recording:
    """What every connection sent, appended as it arrives, and how many connections were made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received = bytearray()
        self._connections = 0
        self._ca = LoopbackCA()
        self.ca_pem = self._ca.ca_pem
        self._serving: ServerThread | None = None

    def _record(self, data: bytes) -> None:
        with self._lock:
            self._received += data

    def _count(self) -> None:
        with self._lock:
            self._connections += 1

    @property
    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections


class ByteTrap(_Recording):
    """A TCP listener (TLS with tls=True) that reads what a client sends for a moment, then hangs up.

    An LDAP client sends its bind request, password included, without waiting for anything: it arrives here.
    """

    def __init__(self, *, tls: bool = False) -> None:
        super().__init__()
        trap = self
        context = self._ca.server_context() if tls else None

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                trap._count()
                sock: socket.socket = self.request
                try:
                    if context is not None:
                        sock = context.wrap_socket(sock, server_side=True)
                    sock.settimeout(1.0)
                    while chunk := sock.recv(65536):
                        trap._record(chunk)
                except OSError:  # a timeout, a refused handshake: what arrived is recorded
                    pass

        server = socketserver.ThreadingTCPServer((LOOPBACK, 0), Handler)
        server.daemon_threads = True
        self._serving = ServerThread(server, "byte-trap")
        self.port = self._serving.port

    def __enter__(self) -> ByteTrap:
        self._serving.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._serving.stop()


class LoginTrap(_Recording):
    """HTTPS on 127.0.0.1 that answers OIDC discovery like a Microsoft login host, so a client goes on to
    post its client credentials here; every request (line, headers, body) is recorded, the token refused."""

    def __init__(self) -> None:
        super().__init__()
        trap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                trap._record(self.requestline.encode() + b"\r\n" + bytes(self.headers) +
                             (self.rfile.read(length) if length else b""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                tenant = self.path.strip("/").split("/")[0]
                base = f"https://{trap.host}/{tenant}"
                self._answer(200, {"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                                   "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                   "jwks_uri": f"{base}/discovery/v2.0/keys"})

            def do_POST(self) -> None:
                self._answer(401, {"error": "invalid_client", "error_codes": [7000215]})

        context = self._ca.server_context()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, address = super().get_request()
                trap._count()  # counted before the handshake: a client that hangs up at once still came
                return context.wrap_socket(sock, server_side=True), address

            def handle_error(self, request, client_address) -> None:  # a client refusing our certificate
                pass

        self._serving = ServerThread(Server((LOOPBACK, 0), Handler), "login-trap")
        self.port = self._serving.port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LoginTrap:
        self._serving.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._serving.stop()
