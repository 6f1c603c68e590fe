"""Background health checks: does the store answer, do the models answer?

Checks can take seconds (the first one imports MLflow; a remote endpoint may be slow), so a page asks
the board and shows what is known, instead of waiting. Each check runs at most once at a time per key;
a result is kept for ``ttl`` seconds, and the last result is shown while a fresh one is on its way.
Pure Python: the app keeps one board per server process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.models import ModelConfig

StatusRow = tuple[str, bool, str]  # (role, answers?, one line to show)
Ttl = float | Callable[[Any], float]
# A failed check is repeated this soon: a store that another process was still creating, or a server
# restarting, must not leave an error on the page.
FAILURE_TTL_SECONDS = 3.0


def _fresh(found: tuple[float, Any], ttl: Ttl) -> bool:
    at, value = found
    seconds = ttl(value) if callable(ttl) else ttl
    return time.monotonic() - at < seconds


def retry_failures_soon(
    success_ttl: float, ok: Callable[[Any], bool], *, failure_ttl: float = FAILURE_TTL_SECONDS
) -> Callable[[Any], float]:
    """A ``ttl`` that keeps a result ``ok`` calls good for ``success_ttl`` seconds and any other for
    ``failure_ttl``."""
    return lambda value: success_ttl if ok(value) else failure_ttl


class HealthBoard:
    """Results of named checks, computed in background threads."""

    def __init__(self, max_workers: int = 4):
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="health-check")
        self._lock = threading.Lock()
        self._results: dict[Hashable, tuple[float, Any]] = {}
        self._pending: dict[Hashable, Future] = {}

    def get(self, key: Hashable, check: Callable[[], Any], *, ttl: Ttl) -> Any | None:
        """The latest result of ``check`` for ``key`` (``None`` until the first one is in), starting a
        new check when there is none or it is older than ``ttl`` seconds (``ttl`` may be a function of
        the result: a failure is worth checking again sooner than a success). Never blocks."""
        with self._lock:
            found = self._results.get(key)
            fresh = found is not None and _fresh(found, ttl)
            if not fresh and key not in self._pending:
                self._pending[key] = self._executor.submit(self._run, key, check)
            return found[1] if found is not None else None

    def peek(self, key: Hashable, *, ttl: Ttl) -> Any | None:
        """The result for ``key`` if one younger than ``ttl`` seconds is in; never starts a check."""
        with self._lock:
            found = self._results.get(key)
        return found[1] if found is not None and _fresh(found, ttl) else None

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


def model_status(models: ModelConfig) -> list[StatusRow]:
    """One status line per model role: does it answer (one short call each, through the openai client)."""
    from core.models import check_model
    from core.offline_model import MODEL_NAME as OFFLINE_MODEL

    rows = []
    for role in ("task", "reflection"):
        result = check_model(models, role=role)
        label = f"{result.model} answers" if result.ok else result.message
        if models.is_offline and result.ok:
            label = f"{OFFLINE_MODEL} (simulated) answers"
        rows.append((role, result.ok, label))
    return rows


def store_status_in_child(tracking_uri: str, *, timeout: float = 120.0) -> tuple[bool, str]:
    """:func:`core.store.check_store` computed by ``python -m core check-store`` in a child process
    (importing MLflow and opening a store is seconds of CPU; see :func:`model_status_in_child`)."""
    answer = _in_child("check-store", {"tracking_uri": tracking_uri}, {}, timeout)
    if isinstance(answer, str):
        return False, f"Could not tell whether the store answers: {answer}."
    ok, message = answer
    return bool(ok), str(message)


def model_status_in_child(models: ModelConfig, *, timeout: float = 180.0) -> list[StatusRow]:
    """:func:`model_status` computed by ``python -m core check-models`` in a child process.

    The check imports the openai client (and for the offline model starts its endpoint): seconds of
    CPU that, in a thread of the app's process, would slow every page served meanwhile (they share
    one interpreter lock). The key goes through the environment, never the command line.
    """
    from core.runs import API_KEY_ENV

    public = dataclasses.asdict(models)
    public.pop("api_key", None)
    answer = _in_child("check-models", public, {API_KEY_ENV: models.api_key} if models.api_key else {}, timeout)
    if isinstance(answer, str):
        return [(role, False, f"Could not tell: {answer}.") for role in ("task", "reflection")]
    return [(str(role), bool(ok), str(line)) for role, ok, line in answer]


@dataclasses.dataclass(frozen=True)
class ReplyProbe:
    """How the task model replies to one real example: reply length and a warm call's seconds, for
    the pre-run estimate; ``message`` says why not when ``ok`` is False."""

    ok: bool
    message: str
    completion_tokens: float = 0.0
    seconds: float = 0.0


def reply_probe(models: ModelConfig, prompt: str) -> ReplyProbe:
    """Send ``prompt`` to the task model twice (the first call of a process also pays for connecting)
    and keep the second's reply length and latency."""
    from core.models import check_model

    check_model(models, role="task", prompt=prompt)
    check = check_model(models, role="task", prompt=prompt)
    if not check.ok or check.usage is None:
        return ReplyProbe(False, check.message)
    usage = check.usage
    return ReplyProbe(
        True, check.message, usage.completion_tokens_per_response or 0.0, usage.seconds_per_response or 0.0
    )


def reply_probe_in_child(models: ModelConfig, prompt: str, *, timeout: float = 180.0) -> ReplyProbe:
    """:func:`reply_probe` in ``python -m core check-reply`` (see :func:`model_status_in_child`)."""
    from core.runs import API_KEY_ENV

    public = dataclasses.asdict(models)
    public.pop("api_key", None)
    secrets = {API_KEY_ENV: models.api_key} if models.api_key else {}
    answer = _in_child("check-reply", {"models": public, "prompt": prompt}, secrets, timeout)
    if isinstance(answer, str):
        return ReplyProbe(False, f"Could not reach the model: {answer}.")
    return ReplyProbe(**answer)


def _in_child(command: str, request: dict[str, Any], secrets: dict[str, str], timeout: float) -> Any:
    """``python -m core COMMAND`` with ``request`` as JSON on stdin (``secrets`` in its environment,
    never on its command line); its last stdout line parsed as JSON, or a string saying what failed."""
    from core.runs import API_KEY_ENV, PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV} | secrets
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    done = None
    try:
        done = subprocess.run(
            [sys.executable, "-m", "core", command],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(PROJECT_ROOT),
            env=env,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return f"the check took more than {timeout:.0f} s"
    except (OSError, ValueError, IndexError) as error:
        said = " ".join(done.stderr.split())[-200:] if done is not None else ""
        return f"the check did not run: {said or error}"
