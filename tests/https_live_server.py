"""The portal served over HTTPS in a thread, as it runs in production behind TLS: secure cookies, DEBUG off.

pytest-django's live_server speaks plain HTTP; CSRF checks the Origin and Referer of HTTPS requests
more strictly, so the end user's journey is also walked over HTTPS.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import WSGIRequestHandler
from django.db import connections
from django.test.testcases import LiveServerThread

from testing.tls import LoopbackCA


class _HttpsRequestHandler(WSGIRequestHandler):
    def get_environ(self):
        environ = super().get_environ()
        environ["HTTPS"] = "on"  # what a TLS-terminating WSGI server tells the application
        return environ

    def log_message(self, format, *args):
        pass


class _HttpsLiveServerThread(LiveServerThread):
    tls_context: ssl.SSLContext

    def _create_server(self, connections_override=None):
        server = self.server_class((self.host, self.port), _HttpsRequestHandler, allow_reuse_address=False,
                                   connections_override=connections_override)
        server.socket = self.tls_context.wrap_socket(server.socket, server_side=True)
        return server


@contextmanager
def https_live_server() -> Iterator[str]:
    """Serve the portal on https://localhost:<port>; yields the base URL."""
    context = LoopbackCA().server_context()
    overrides = {conn.alias: conn for conn in connections.all() if conn.vendor == "sqlite" and conn.is_in_memory_db()}
    thread = _HttpsLiveServerThread("localhost", static_handler=StaticFilesHandler,
                                    connections_override=overrides, port=0)
    thread.tls_context = context
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    try:
        yield f"https://localhost:{thread.port}"
    finally:
        thread.terminate()
