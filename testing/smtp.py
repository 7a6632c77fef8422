"""A real SMTP server (aiosmtpd on 127.0.0.1, a free port) for the tests; the `smtp` fixture is in
tests/fixtures_smtp.py.

The server records every message it accepts, can refuse chosen recipients with a 550 (a mailbox
that does not exist) and can be stopped and started again on the same port (a mail server down).
"""

from __future__ import annotations

import asyncio
import email
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from testing.net import LOOPBACK, free_port


@dataclass(frozen=True)
class Delivered:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    peer: tuple  # the client's address and port: one SMTP connection, one peer

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self, content_type: str) -> str:
        part = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert part is not None and part.get_content_type() == content_type, f"no {content_type} part"
        return part.get_content()

    @property
    def text(self) -> str:
        return self.body("text/plain")

    @property
    def html(self) -> str:
        return self.body("text/html")


class RecordingHandler:
    """aiosmtpd hooks (called by these names): refuse chosen recipients, record what is accepted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered: list[Delivered] = []
        self.refused: dict[str, str] = {}
        self.delay_seconds = 0.0  # a slow server, so a test can act while a batch is being sent

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.refused.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.delivered.append(Delivered(envelope.mail_from, tuple(envelope.rcpt_tos), message, tuple(session.peer)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """One listening port; stop() and start() make it unreachable and reachable again."""

    host = LOOPBACK

    def __init__(self) -> None:
        self.port = free_port(self.host)  # chosen once: stop() and start() keep it
        self.handler = RecordingHandler()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is None:
            # A Controller's loop is closed by stop(): a restart needs a new one, on the same port.
            self._controller = Controller(self.handler, hostname=self.host, port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse(self, address: str, answer: str = "550 5.1.1 No such user here") -> None:
        self.handler.refused[address.lower()] = answer

    def reset(self) -> None:
        with self.handler._lock:
            self.handler.delivered.clear()
        self.handler.refused.clear()

    @property
    def delivered(self) -> list[Delivered]:
        with self.handler._lock:
            return list(self.handler.delivered)

    def to(self, address: str) -> list[Delivered]:
        return [item for item in self.delivered if address.lower() in (rcpt.lower() for rcpt in item.rcpt_tos)]
