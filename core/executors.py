"""Where a run's process comes from: the seam between asking for a run and the process that runs it.

A :class:`RunExecutor` starts the run whose settings are in a run folder (:mod:`core.rundir`), and
finds a run again by the reference a page keeps; the :class:`~core.runs.RunHandle` it returns is how
a caller follows the run (its events and outcome) and stops it (the cancel file, read by the run at
its next iteration boundary). The contract every executor keeps:

* exactly one run per process, in a process of its own (MLflow's optimizer patches classes);
* the run outlives the session, page or command that started it;
* the API key reaches the run's process in memory or its environment only: never a file, a
  command line or a log;
* the run's process records its pid (the MLflow run's ``pid`` tag, the folder's ``pid``), so a
  worker that died is found and its run salvaged (:func:`core.runs.salvage_if_orphaned`).

:class:`LocalExecutor` runs on this machine. Warm (the default where ``os.fork`` exists), each run is
forked from a fork server that has already imported what a run needs (:mod:`core.forkserver`), so it
starts at once; cold (``GEPA_EXPLORER_WARM_WORKERS=0``, or when the fork server cannot be used) it is
a fresh ``python -m core worker RUN_DIR``, paying the imports itself. :class:`core.queue.QueueExecutor`
(RQ on Redis, when ``GEPA_EXPLORER_QUEUE_URL`` is set) runs them on warm workers on any machine.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.rundir import RunDir

if TYPE_CHECKING:
    from core.runs import RunHandle

API_KEY_ENV = "GEPA_EXPLORER_API_KEY"
WARM_ENV = "GEPA_EXPLORER_WARM_WORKERS"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_log = logging.getLogger(__name__)
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


class RunExecutor(Protocol):
    """Starts runs and finds them again (see the module docstring for the contract)."""

    def start(self, folder: RunDir, *, api_key: str | None) -> RunHandle:
        """Start the run whose ``config.json`` is in ``folder``; returns once its process exists."""
        ...

    def find(self, name: str) -> RunHandle | None:
        """The run whose folder is called ``name``, if this executor knows it; else None."""
        ...

    def warm_up(self) -> None:
        """Get ready to start runs fast; returns at once and may do nothing."""
        ...


class LocalExecutor:
    """Runs as processes on this machine, each with its folder under ``runs_home()``."""

    def __init__(self, *, warm: bool | None = None):
        self.warm = warm_workers_enabled() if warm is None else warm
        self._forkserver = None
        self._lock = threading.Lock()

    @property
    def forkserver(self):
        """The fork server warm runs come from (started on first use)."""
        from core.forkserver import ForkServer

        with self._lock:
            if self._forkserver is None:
                self._forkserver = ForkServer(PROJECT_ROOT, API_KEY_ENV)
            return self._forkserver

    def warm_up(self) -> None:
        if not self.warm:
            return
        from core.forkserver import ForkServerUnavailable

        try:
            self.forkserver.start()
        except ForkServerUnavailable as error:
            _log.warning("warm workers are off: %s", error)

    def start(self, folder: RunDir, *, api_key: str | None) -> RunHandle:
        from core.runs import RunHandle

        pid = self._fork(folder, api_key) if self.warm else None
        if pid is None:
            pid = _start_cold(folder, api_key)
        folder.write_pid(pid)
        return RunHandle(folder.path, pid)

    def find(self, name: str) -> RunHandle | None:
        from core.runs import RunHandle
        from core.store import runs_home

        path = runs_home() / name
        if not name or "/" in name or not path.is_dir():
            return None
        return RunHandle(path, RunDir(path).pid())

    def _fork(self, folder: RunDir, api_key: str | None) -> int | None:
        from core.forkserver import ForkServerUnavailable

        env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
        try:
            return self.forkserver.fork_run(folder.path, env=env, api_key=api_key)
        except ForkServerUnavailable as error:
            _log.warning("starting the run in a fresh process: %s", error)
            return None


def _start_cold(folder: RunDir, api_key: str | None) -> int:
    """``python -m core worker RUN_DIR``, the key in its environment only."""
    env = dict(os.environ)
    env.pop(API_KEY_ENV, None)
    if api_key:
        env[API_KEY_ENV] = api_key
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    with folder.log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "worker", str(folder.path)],
            cwd=str(PROJECT_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # survives the app's reruns; Stop is our cancel file, not a signal
        )
    with _children_lock:
        _children[process.pid] = process
    return process.pid


def warm_workers_enabled() -> bool:
    """Warm workers unless ``GEPA_EXPLORER_WARM_WORKERS`` is 0/false/no/off, where ``os.fork`` exists."""
    said = os.environ.get(WARM_ENV, "1").strip().lower()
    return hasattr(os, "fork") and said not in ("0", "false", "no", "off")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` on this machine still runs (a zombie has ended)."""
    with _children_lock:
        child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


_default: RunExecutor | None = None
_default_lock = threading.Lock()


def default_executor() -> RunExecutor:
    """The executor :func:`core.runs.start_run` uses: one per process. The queue's
    (:class:`core.queue.QueueExecutor`) when ``GEPA_EXPLORER_QUEUE_URL`` is set, else the local one."""
    global _default
    with _default_lock:
        if _default is None:
            url = os.environ.get("GEPA_EXPLORER_QUEUE_URL", "").strip()
            if url:
                from core.queue import QueueExecutor

                _default = QueueExecutor(url)
            else:
                _default = LocalExecutor()
        return _default
