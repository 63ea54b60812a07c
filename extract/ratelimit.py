"""Sliding-window rate limiter shared by threads and processes.

The window (timestamps of recent calls, wall clock) lives in a small JSON file,
``<state_dir>/ratelimit/<hostname>.json``, guarded by a ``filelock.FileLock``; every client talking to the same
host (keyed by hostname, not port, so embedded servers on ephemeral ports share it) through the same state
directory - in this process, another thread or an Airflow task in another process - sees the same window.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
from filelock import FileLock

from regionstat.batches import atomic_write

__all__ = ["SlidingWindowLimiter"]


def _safe_name(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", host) or "default"


class SlidingWindowLimiter:
    """At most ``max_calls`` calls per ``window`` seconds (plus ``margin`` seconds of safety).

    ``state_dir=None`` keeps the window in memory (this process only).
    """

    def __init__(
        self,
        host: str,
        max_calls: int = 30,
        window: float = 10.0,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        margin: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ):
        self.host = host
        self.max_calls = max(1, int(max_calls))
        self.window = float(window)
        self.margin = margin
        self._sleep = sleep
        self._clock = clock
        self._tlock = threading.Lock()
        self._memory: list[float] = []
        self.path: Path | None = None
        self._flock: FileLock | None = None
        if state_dir is not None:
            d = Path(state_dir) / "ratelimit"
            d.mkdir(parents=True, exist_ok=True)
            self.path = d / f"{_safe_name(host)}.json"
            self._flock = FileLock(str(self.path) + ".lock")
        self.waited = 0.0  # seconds this limiter slept
        self.configured = False  # limits known from the server's /config (else: the last ones stored)

    def configure(self, max_calls: int, window: float) -> None:
        """Set the limits (from ``/config``); they are stored with the window for clients that start later."""
        self.max_calls = max(1, int(max_calls))
        self.window = float(window)
        self.configured = True

    @property
    def _span(self) -> float:
        margin = self.margin if self.margin is not None else max(0.05, 0.02 * self.window)
        return self.window + margin

    def _read(self) -> list[float]:
        if self.path is None:
            return self._memory
        try:
            data = orjson.loads(self.path.read_bytes())
            if not self.configured and data.get("max_calls") and data.get("window"):
                # limits unknown yet (e.g. the /config call itself): use the ones a sharer stored
                self.max_calls = max(1, int(data["max_calls"]))
                self.window = float(data["window"])
            return [float(t) for t in data.get("calls", [])]
        except (FileNotFoundError, orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return []

    def _write(self, calls: list[float]) -> None:
        if self.path is None:
            self._memory = calls
            return
        doc: dict[str, object] = {"host": self.host, "calls": calls}
        if self.configured:
            doc.update(max_calls=self.max_calls, window=self.window)
        else:
            try:
                old = orjson.loads(self.path.read_bytes())
                doc.update({k: old[k] for k in ("max_calls", "window") if k in old})
            except (FileNotFoundError, orjson.JSONDecodeError, TypeError):
                pass
        # no fsync: a window lost in a power cut only forgets recent calls, and this runs once per request
        atomic_write(self.path, orjson.dumps(doc), fsync=False)

    def _locked(self) -> contextlib.AbstractContextManager[object]:
        return self._flock if self._flock is not None else contextlib.nullcontext()

    def _try(self) -> tuple[float, float]:
        """Record a call and return (0, its timestamp) if the window allows it now, else (seconds to wait, 0)."""
        now = self._clock()
        span = self._span
        calls = [t for t in self._read() if now - span < t <= now + 4 * span + 300]
        if len(calls) < self.max_calls:
            calls.append(now)
            self._write(calls)
            return 0.0, now
        calls.sort()
        return max(calls[-self.max_calls] + span - now, 0.001), 0.0

    def _acquire(self) -> tuple[float, float]:
        waited = 0.0
        while True:
            with self._tlock, self._locked():
                wait, stamp = self._try()
            if wait <= 0:
                self.waited += waited
                return waited, stamp
            self._sleep(wait)
            waited += wait

    def acquire(self) -> float:
        """Block until a call is allowed, record it (at send time), return the seconds waited."""
        return self._acquire()[0]

    @contextlib.contextmanager
    def call(self) -> Iterator[float]:
        """``with limiter.call() as waited: send()`` - reserves a slot at send time and moves the recorded
        time to when the call finished: the server stamps a call somewhere in between, so spacing sends by
        a window after the previous *completion* can never look too dense to the server."""
        waited, stamp = self._acquire()
        try:
            yield waited
        finally:
            with self._tlock, self._locked():
                end = self._clock()
                calls = self._read()
                try:
                    calls[calls.index(stamp)] = max(end, stamp)
                except ValueError:
                    calls.append(end)
                self._write(calls)

    def penalise(self, seconds: float) -> None:
        """After a 429: push a marker so that every sharer of the window backs off for ``seconds``."""
        if seconds <= 0:
            return
        with self._tlock, self._locked():
            now = self._clock()
            calls = [t for t in self._read() if t > now - self._span]
            # fill the window so the next slot opens `seconds` from now
            start = now + seconds - self._span
            calls = sorted(calls + [start] * self.max_calls)[-self.max_calls * 2 :]
            self._write(calls)
