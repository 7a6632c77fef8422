"""What one agent token may send: bytes per request, nesting of its JSON, requests per minute (README, Security).

Each refusal is JSON naming the setting that refused it (413 for size, 429 with Retry-After for rate), so
the agent, and the person reading its log, know which limit to stay under or raise.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

# The agent API's bodies need 4 levels ({"records": [{"folder_ids": [...]}]}); anything deeper is not ours.
MAX_JSON_DEPTH = 10
RATE_WINDOW_SECONDS = 60


class LimitExceeded(Exception):
    """A request over one of the agent API's limits; `limit` is the setting's name, `maximum` its value."""

    def __init__(self, message: str, *, status_code: int, limit: str, maximum: int,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.limit = limit
        self.maximum = maximum
        self.retry_after = retry_after


def body_too_large(size: int) -> LimitExceeded:
    most = settings.AGENT_CHUNK_MAX_BYTES
    return LimitExceeded(
        f"The request body of {size:,} bytes is too large: at most {most:,} bytes are accepted per request "
        "(AGENT_CHUNK_MAX_BYTES on the portal); send fewer records per chunk.",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, limit="AGENT_CHUNK_MAX_BYTES", maximum=most)


def refuse_large_declared_body(content_length: str) -> None:
    """Refuse a body by its Content-Length, before a byte of it is read."""
    if not content_length.isdigit():
        raise ParseError(f"Content-Length {content_length[:20]!r} is not a number of bytes.")
    if int(content_length) > settings.AGENT_CHUNK_MAX_BYTES:
        raise body_too_large(int(content_length))


def _nested_deeper_than(data: Any, limit: int) -> bool:
    """Walked with a list, not recursion, so no nesting can exhaust the stack here."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return False


TOO_DEEP = (f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep: the agent API takes "
            '{"records": [...]} objects, 4 levels at most.')


class AgentJSONParser(BaseParser):
    """JSON with the agent API's own size limit, read straight from the request.

    Not DRF's JSONParser: DRF reads that one through request.body, which Django caps at
    DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) with an HTML 400; here AGENT_CHUNK_MAX_BYTES is the one limit.
    """

    media_type = "application/json"

    def parse(self, stream: IO[Any] | None, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        most = settings.AGENT_CHUNK_MAX_BYTES
        raw = stream.read(most + 1) if stream is not None else b""
        if len(raw) > most:  # no Content-Length to check beforehand (a chunked body)
            raise body_too_large(len(raw))
        try:
            data = json.loads(raw)
        except RecursionError:  # nesting deeper than Python's stack: never a 500
            raise ParseError(TOO_DEEP) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _nested_deeper_than(data, MAX_JSON_DEPTH):
            # Nesting that did parse could still exhaust the stack later (validation re-encodes it).
            raise ParseError(TOO_DEEP)
        return data


def _claim(counter: str, limit: int) -> int:
    """This request's number in its window, each number handed out once even when requests race.

    cache.add is atomic on every backend (the database cache inserts a unique key). cache.incr is atomic
    on Redis and memcached, but on the database cache (the default) it reads then writes, so two racing
    requests can get the same number: each then claims its number with add, and the loser takes the next.
    """
    timeout = 2 * RATE_WINDOW_SECONDS
    cache.add(counter, 0, timeout)
    while True:
        try:
            number = cache.incr(counter)
        except ValueError:  # the counter was evicted between add and incr
            cache.add(counter, 0, timeout)
            continue
        if number > limit or cache.add(f"{counter}:{number}", True, timeout):
            return number


def throttle(integration_pk: int) -> None:
    """Count one request of this integration's agent; LimitExceeded (429) past AGENT_REQUESTS_PER_MINUTE."""
    limit = settings.AGENT_REQUESTS_PER_MINUTE
    now = time.time()
    window = int(now // RATE_WINDOW_SECONDS)
    if _claim(f"agent-requests:{integration_pk}:{window}", limit) <= limit:
        return
    retry_after = max(1, math.ceil((window + 1) * RATE_WINDOW_SECONDS - now))
    raise LimitExceeded(
        f"Too many requests from this integration's agent: at most {limit} a minute are accepted "
        f"(AGENT_REQUESTS_PER_MINUTE on the portal); try again in {retry_after} s.",
        status_code=status.HTTP_429_TOO_MANY_REQUESTS, limit="AGENT_REQUESTS_PER_MINUTE", maximum=limit,
        retry_after=retry_after)
