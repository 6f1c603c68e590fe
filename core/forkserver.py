"""Warm workers: one process that has imported what a run needs, forking a fresh process per run.

A run's process pays seconds of imports before it does anything (mlflow, openai, gepa, the
offline endpoint...). The fork server pays them once, ahead of time: it is started as
``python -m core forkserver FD`` in a session of its own by whoever starts runs (the app's server,
the CLI's ``--seeds``, the tests), imports :data:`PRELOAD`, and then waits on a socket it shares with
its starter only. Each request forks one child, which becomes that run's worker: a session of its
own (the terminal's Ctrl-C and the starter's end do not reach it), the starter's current environment
and working folder, its output in the run folder's ``run.log``, exactly one run
(:func:`core.runs.worker_main`, so MLflow's class patching stays in that process), then exit.

The server runs no Python thread and has opened nothing but its socket when it forks (no store
connection, no client), so a fork starts clean; the native helper threads two libraries start when
imported (OpenBLAS's in numpy, jemalloc's in pyarrow) take care of forks themselves. Its garbage
collector is frozen after the imports: the children share those pages with it instead of copying
them at their first collection.
It reaps its children, and exits when its starter goes away (end of file on the socket); children
already forked keep running.

Messages are a 4-byte big-endian length and a JSON object. The starter sends ``{"run_dir", "env",
"key"}``: the API key travels through this socket, in memory only, never a file or a command line.
The server answers ``{"pid"}`` (or ``{"error"}``); its first message, once it has imported
everything, is ``{"ready": true, "pid", "failed"}`` (``failed``: preloads that could not be imported).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

# What a run imports: every package a default run loads, found by listing the modules a run forked
# from a server with this list still imports (none left but MLflow's migration scripts, read by its
# schema check). MLflow, its SQL stores, the optimizer, evaluation, tracing and the integrations that
# ``mlflow.autolog(disable=True)`` visits; the openai client and the HTTP stack under it (loaded on
# first request); GEPA; the offline endpoint (uvicorn's protocols load when it starts); our modules.
PRELOAD: tuple[str, ...] = (
    "mlflow",
    "mlflow.genai.optimize",
    "mlflow.genai.optimize.optimizers.gepa_optimizer",
    "mlflow.evaluation",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_workspace_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_workspace_store",
    "mlflow.tracing.export.mlflow_v3",
    "mlflow.tracing.processor.mlflow_v3",
    "mlflow.tracing.processor.otel",
    "mlflow.gateway.providers",
    "mlflow.metrics",
    "mlflow.openai",
    "mlflow.pyfunc",
    "mlflow.types.responses",
    "mlflow.utils.openai_utils",
    "alembic.command",
    "alembic.config",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "pandas.core.methods.to_dict",
    "pyarrow.pandas_compat",
    "pydantic.v1",
    "git",
    "encodings.utf_8_sig",
    "openai",
    "openai.resources.chat",
    "httpcore",
    "gepa",
    "gepa.api",
    "gepa.lm",
    "gepa.utils",
    "gepa.visualization",
    "gepa.proposer.reflective_mutation.reflection_lm",
    "uvicorn",
    "uvicorn.lifespan.off",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.loops.asyncio",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto",
    "core.optimization",
    "core.offline_model.server",
    "core.prompts",
    "core.runs",
    "core.statistics",
)
READY_TIMEOUT_SECONDS = 180.0  # a first start on a busy machine imports for tens of seconds
REPLY_TIMEOUT_SECONDS = 30.0
_LENGTH = struct.Struct(">I")
_log = logging.getLogger(__name__)


class ForkServerUnavailable(RuntimeError):
    """The fork server could not be started or did not answer; start the run the cold way."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8")
    sock.sendall(_LENGTH.pack(len(data)) + data)


def receive(sock: socket.socket) -> dict[str, Any]:
    """One message; raises ``EOFError`` when the other end has closed."""
    (length,) = _LENGTH.unpack(_read_exactly(sock, _LENGTH.size))
    return json.loads(_read_exactly(sock, length).decode("utf-8"))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the other end closed the socket")
        data += chunk
    return data


# --------------------------------------------------------------------------------------------------
# The server: ``python -m core forkserver FD``
# --------------------------------------------------------------------------------------------------


def preload(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import ``modules``; the names that failed (a run imports them itself, if it needs them)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional: the run imports what it needs anyway
            failed.append(name)
    return failed


def serve(fd: int) -> int:
    """Body of ``python -m core forkserver FD``: preload, say ready, then fork one worker per request
    until the starter closes its end of socket ``fd``."""
    gc.disable()  # no collection while importing: the frozen generation below is then complete
    sock = socket.socket(fileno=fd)
    failed = preload()
    gc.freeze()
    send(sock, {"ready": True, "pid": os.getpid(), "failed": failed})
    while True:
        _reap_children()
        readable, _, _ = select.select([sock], [], [], 1.0)
        if not readable:
            continue
        try:
            request = receive(sock)
        except (EOFError, OSError):
            return 0
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sock.close()
            os._exit(_be_the_worker(request))
        send(sock, {"pid": pid})


def _reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _be_the_worker(request: dict[str, Any]) -> int:
    """In the forked child: become the run's worker and run it; the exit status of
    :func:`core.runs.worker_main`."""
    from core.rundir import RunDir
    from core.runs import API_KEY_ENV, worker_main

    try:
        os.setsid()
        os.environ.clear()
        os.environ.update(request["env"])
        if request.get("key"):
            os.environ[API_KEY_ENV] = request["key"]
        os.chdir(request.get("cwd") or os.getcwd())
        folder = RunDir(Path(request["run_dir"]))
        log = os.open(folder.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        gc.enable()
        return worker_main(folder.path)
    except BaseException:  # noqa: BLE001 - the traceback goes to run.log; the status says it failed
        traceback.print_exc()
        return 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()


# --------------------------------------------------------------------------------------------------
# The starter's side
# --------------------------------------------------------------------------------------------------


class ForkServer:
    """The starter's handle on its fork server: started on first use (or by :meth:`start`, ahead of
    time), restarted when it died. Thread-safe: one request at a time."""

    def __init__(self, project_root: Path, api_key_env: str):
        self._project_root = project_root
        self._api_key_env = api_key_env
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._ready = False
        self.failed_preloads: list[str] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server if it is not running; returns at once (it imports in the background)."""
        with self._lock:
            self._start_unlocked()

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        """Start the server if needed and wait until it has imported everything; False if it did not
        say so within ``timeout`` seconds."""
        with self._lock:
            self._start_unlocked()
            try:
                return self._await_ready_unlocked(timeout)
            except (OSError, EOFError, ValueError):
                self._stop_unlocked()
                return False

    def fork_run(self, run_dir: Path, *, env: dict[str, str], api_key: str | None) -> int:
        """Fork the worker of the run in ``run_dir``; its pid. Waits for a server still importing.

        Raises:
            ForkServerUnavailable: the server could not be started, was not ready in time or did not
                answer (it is stopped, so the next call starts a fresh one).
        """
        with self._lock:
            try:
                self._start_unlocked()
                if not self._await_ready_unlocked(READY_TIMEOUT_SECONDS):
                    raise TimeoutError(f"not ready after {READY_TIMEOUT_SECONDS:.0f} s")
                sock = self._sock
                assert sock is not None
                sock.settimeout(REPLY_TIMEOUT_SECONDS)
                send(sock, {"run_dir": str(run_dir), "env": env, "key": api_key, "cwd": str(self._project_root)})
                reply = receive(sock)
            except (OSError, EOFError, ValueError) as error:
                self._stop_unlocked()
                raise ForkServerUnavailable(f"the fork server did not answer ({error})") from None
            if "pid" not in reply:
                raise ForkServerUnavailable(str(reply.get("error") or reply))
            return int(reply["pid"])

    def _await_ready_unlocked(self, timeout: float) -> bool:
        if self._ready:
            return True
        sock = self._sock
        assert sock is not None
        readable, _, _ = select.select([sock], [], [], timeout)
        if not readable:
            return False
        sock.settimeout(REPLY_TIMEOUT_SECONDS)
        hello = receive(sock)
        self._ready = bool(hello.get("ready"))
        self.failed_preloads = list(hello.get("failed") or [])
        if self.failed_preloads:
            _log.warning("the fork server could not import %s", ", ".join(self.failed_preloads))
        return self._ready

    def stop(self) -> None:
        with self._lock:
            self._stop_unlocked()

    def _start_unlocked(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._stop_unlocked()
        ours, theirs = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if k != self._api_key_env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self._project_root), env.get("PYTHONPATH")]))
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "core", "forkserver", str(theirs.fileno())],
                cwd=str(self._project_root),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # runs forked from it outlive the starter, as cold ones do
            )
        except OSError as error:
            ours.close()
            raise ForkServerUnavailable(f"the fork server could not start ({error})") from None
        finally:
            theirs.close()
        self._sock = ours
        self._ready = False

    def _stop_unlocked(self) -> None:
        if self._sock is not None:
            self._sock.close()  # the server sees end of file and exits; its children go on
            self._sock = None
        if self._process is not None:
            if self._process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=5)
            if self._process.poll() is None:
                self._process.kill()
            self._process = None
        self._ready = False
