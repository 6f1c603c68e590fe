"""Background health checks: does the store answer, do the models answer?

Checks can take seconds (the first one imports MLflow; a remote endpoint may be slow), so a page asks
the board and shows what is known, instead of waiting. Each check runs at most once at a time per key;
a result is kept for ``ttl`` seconds, and the last result is shown while a fresh one is on its way.
Pure Python: the app keeps one board per server process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class HealthBoard:
    """Results of named checks, computed in background threads."""

    def __init__(self, max_workers: int = 2):
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="health-check")
        self._lock = threading.Lock()
        self._results: dict[Hashable, tuple[float, Any]] = {}
        self._pending: dict[Hashable, Future] = {}

    def get(self, key: Hashable, check: Callable[[], Any], *, ttl: float) -> Any | None:
        """The latest result of ``check`` for ``key`` (``None`` until the first one is in), starting a
        new check when there is none or it is older than ``ttl`` seconds. Never blocks."""
        with self._lock:
            found = self._results.get(key)
            fresh = found is not None and time.monotonic() - found[0] < ttl
            if not fresh and key not in self._pending:
                self._pending[key] = self._executor.submit(self._run, key, check)
            return found[1] if found is not None else None

    def wait(self, key: Hashable, timeout: float) -> Any | None:
        """Block up to ``timeout`` seconds for a pending check of ``key``; returns the latest result."""
        with self._lock:
            future = self._pending.get(key)
        if future is not None:
            try:
                future.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - a check's own failure is its result (see _run)
                pass
        with self._lock:
            found = self._results.get(key)
        return found[1] if found is not None else None

    def forget(self) -> None:
        """Drop every result, so the next :meth:`get` checks again."""
        with self._lock:
            self._results.clear()

    def _run(self, key: Hashable, check: Callable[[], Any]) -> None:
        try:
            value = check()
        finally:
            with self._lock:
                self._pending.pop(key, None)
        with self._lock:
            self._results[key] = (time.monotonic(), value)
