"""One tenant's request budget during a read: how many Graph requests go at once, and when the next may go.

Graph throttles directory reads per app and tenant (a token bucket, docs/notes/entra-graph.md §6): a 429's
Retry-After says when that tenant may be asked again, whichever request drew it. So the wait belongs to the
tenant, not to the request: every worker of a read holds back until it has passed (`ThrottleGate`).
`fan_out` reads several collections (the members of each mapped AU) on a small pool of threads; paging within
one collection stays sequential, as each page's nextLink comes from the page before. A worker that fails stops
the others at their next request or wait, and the read fails whole (R21): no partial snapshot.

requests documents no thread-safety for a Session (psf/requests#2766: its maintainers advise one per thread), so
`SessionPool` lends each request a session no other thread is using, and keeps it (with its connections) for
the next request.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

import requests

from .base import DirectoryUnavailable

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class ReadStopped(DirectoryUnavailable):
    """Another worker of the same read failed: this one stops before its next request (R21)."""


class ThrottleGate:
    """When the tenant may next be asked (a 429's Retry-After holds it for every worker), and the read's stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0  # time.monotonic() before which no request of this tenant goes
        self._stopped = threading.Event()

    def hold(self, seconds: float) -> None:
        """No request of the tenant before `seconds` from now (a later hold already set stays)."""
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def wait(self) -> None:
        """Return when the tenant may be asked; ReadStopped as soon as the read is stopped."""
        while True:
            if self._stopped.is_set():
                raise ReadStopped("The read stopped: another request of it failed.")
            with self._lock:
                remaining = self._not_before - time.monotonic()
            if remaining <= 0:
                return
            self._stopped.wait(remaining)

    def pause(self, seconds: float) -> None:
        """One worker's own back-off (a 5xx without Retry-After), cut short when the read is stopped."""
        if self._stopped.wait(seconds):
            raise ReadStopped("The read stopped: another request of it failed.")

    def stop(self) -> None:
        self._stopped.set()

    def reopen(self) -> None:
        self._stopped.clear()


class SessionPool:
    """Sessions lent one request at a time, so no two threads ever use one session together."""

    def __init__(self, make: Callable[[], requests.Session]) -> None:
        self._make = make
        self._idle: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def session(self) -> Iterator[requests.Session]:
        try:
            borrowed = self._idle.get_nowait()
        except queue.Empty:
            borrowed = self._make()
            with self._lock:
                self._all.append(borrowed)
        try:
            yield borrowed
        finally:
            self._idle.put(borrowed)

    def close(self) -> None:
        with self._lock:
            for session in self._all:
                session.close()


def fan_out(gate: ThrottleGate, items: Sequence[Item], work: Callable[[Item], Result], limit: int) -> list[Result]:
    """`work(item)` for every item, at most `limit` at once; the results in the items' order.

    The first failure stops the other workers (their next request or wait raises ReadStopped), waits for them to
    end, and is raised as it was: the caller never sees part of the results.
    """
    if limit <= 1 or len(items) <= 1:
        return [work(item) for item in items]

    def guarded(item: Item) -> Result:
        try:
            return work(item)
        except BaseException:
            gate.stop()  # at once, from the failing thread: the others stop at their next request
            raise

    gate.reopen()
    try:
        with ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="graph-read") as pool:
            futures = [pool.submit(guarded, item) for item in items]
            wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
            if failed:
                for future in futures:
                    future.cancel()
                wait(futures)
                first = next((f for f in failed if not isinstance(f.exception(), ReadStopped)), failed[0])
                raise first.exception()  # type: ignore[misc]
            return [future.result() for future in futures]
    finally:
        gate.reopen()
