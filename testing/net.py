"""Loopback plumbing every harness server needs: a free port, "is anyone listening?", a server on a thread."""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any, Generic, TypeVar

LOOPBACK = "127.0.0.1"

Server = TypeVar("Server", bound=socketserver.BaseServer)


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the kernel's pick), for a server that must be told its port
    up front: aiosmtpd's controller, a process started later, a server that comes back on the same port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection on host:port."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


class ServerThread(Generic[Server]):
    """A socketserver server serving on a daemon thread from start() (or `with`) until stop().

    stop() shuts the loop down and closes the listening socket, so the port is free again at once.
    """

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> ServerThread[Server]:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ServerThread[Server]:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
