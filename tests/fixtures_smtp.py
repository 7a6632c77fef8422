"""The `smtp_server` (one per session) and `smtp` (emptied, running, Django pointed at it) fixtures over
testing/smtp.py's real aiosmtpd server."""

from __future__ import annotations

import logging

import pytest

from testing.smtp import SmtpServer


@pytest.fixture(scope="session")
def smtp_server():
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer, settings) -> SmtpServer:
    """The real SMTP server, emptied and running, with Django's email settings pointing at it."""
    smtp_server.start()
    smtp_server.reset()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield smtp_server
    smtp_server.start()
