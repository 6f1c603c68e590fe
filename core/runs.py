"""Optimization runs as processes: start, watch, cancel; and finding recorded runs in MLflow again.

Each run is a ``python -m core worker RUN_DIR`` process (MLflow's optimizer patches classes, so two
runs in one process would corrupt each other). The run folder holds ``config.json`` (no secrets:
the API key travels in the worker's environment only), the live ``events.jsonl``, ``run_id`` once
the MLflow run exists, and ``outcome.json`` when the worker ends. Anything a results view needs is
also in the MLflow run, so a run started elsewhere, or by the CLI, is read the same way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.events import EVENTS_FILE, EventLogError, parse_events, tail_events
from core.models import ModelError
from core.store import StoreError, runs_home

API_KEY_ENV = "GEPA_EXPLORER_API_KEY"
CONFIG_FILE = "config.json"
OUTCOME_FILE = "outcome.json"
RUN_ID_FILE = "run_id"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Errors that mean "fix your input": exit status 2, one line, nothing registered.
BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, ModelError, StoreError)

_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


class RunNotFound(LookupError):
    """No optimization run with that id in the store."""


def new_run_dir() -> Path:
    path = runs_home() / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


@dataclass
class RunHandle:
    """A run process started from this machine, known by its folder."""

    run_dir: Path
    pid: int | None = None
    _offset: int = field(default=0, repr=False)

    @property
    def run_id(self) -> str | None:
        path = self.run_dir / RUN_ID_FILE
        return path.read_text().strip() if path.exists() else None

    def outcome(self) -> dict[str, Any] | None:
        """What the worker reported when it ended; ``None`` while it runs."""
        path = self.run_dir / OUTCOME_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def is_alive(self) -> bool:
        return self.pid is not None and process_alive(self.pid)

    def cancel(self, *, register_best: bool = False) -> None:
        from core.optimization import request_cancel

        request_cancel(self.run_dir, register_best=register_best)

    def read_events(self) -> list[dict[str, Any]]:
        """Every event so far (re-reads from the start; see :meth:`new_events` to tail)."""
        events, _ = tail_events(self.run_dir / EVENTS_FILE, 0)
        return events

    def new_events(self) -> list[dict[str, Any]]:
        events, self._offset = tail_events(self.run_dir / EVENTS_FILE, self._offset)
        return events


def start_run(config: Any, *, run_dir: Path | None = None) -> RunHandle:
    """Start ``config`` (an :class:`~core.optimization.OptimizationConfig`) in its own process."""
    run_dir = run_dir or new_run_dir()
    (run_dir / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))
    env = dict(os.environ)
    env.pop(API_KEY_ENV, None)
    if config.models.api_key:
        env[API_KEY_ENV] = config.models.api_key
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    log = (run_dir / "worker.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "worker", str(run_dir)],
        cwd=str(PROJECT_ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # survives the app's reruns; Stop is our cancel file, not a signal
    )
    log.close()
    with _children_lock:
        _children[process.pid] = process
    (run_dir / "pid").write_text(str(process.pid))
    return RunHandle(run_dir, process.pid)


def attach(run_dir: Path) -> RunHandle:
    """A handle on an existing run folder (after a page reload, say)."""
    pid_file = run_dir / "pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    return RunHandle(run_dir, pid)


def find_run(ref: str, *, tracking_uri: str | None = None) -> tuple[RunHandle | None, RunInfo | None]:
    """A run by the reference a page keeps (a run folder's name, or an MLflow run id).

    Returns the local handle when the run's folder is on this machine, and MLflow's record once the
    run exists there; raises :class:`RunNotFound` when neither is known.
    """
    ref = ref.strip()
    folder = runs_home() / ref
    if ref and "/" not in ref and folder.is_dir():
        handle = attach(folder)
        run_id = handle.run_id
        return handle, get_run(run_id, tracking_uri=tracking_uri) if run_id else None
    info = get_run(ref, tracking_uri=tracking_uri)
    live = info.live_dir
    handle = attach(live) if live is not None and info.is_local_process and live.is_dir() else None
    return handle, info


def process_alive(pid: int) -> bool:
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
    try:  # a zombie has exited
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def worker_main(run_dir: Path) -> int:
    """Body of ``python -m core worker RUN_DIR``: run the config found there and record the outcome."""
    from core.optimization import OptimizationConfig, request_cancel, run_optimization

    outcome: dict[str, Any]
    code = 0
    signal.signal(signal.SIGTERM, lambda *_: request_cancel(run_dir))
    try:
        data = json.loads((run_dir / CONFIG_FILE).read_text())
        config = OptimizationConfig.from_dict(data, api_key=os.environ.pop(API_KEY_ENV, None))
        summary = run_optimization(config, run_dir)
        outcome = {"status": summary.status, "summary": summary.cli_dict(), "error": summary.error}
        code = 1 if summary.status == "failed" else 0
    except BAD_INPUT_ERRORS as error:
        outcome = {"status": "rejected", "error": " ".join(str(error).split())}
        code = 2
    except Exception as error:  # noqa: BLE001 - reported to the UI, which shows one line
        outcome = {"status": "failed", "error": f"{type(error).__name__}: {' '.join(str(error).split())}"}
        code = 1
    outcome["finished_at"] = time.time()
    (run_dir / OUTCOME_FILE).write_text(json.dumps(outcome, default=str))
    return code


# --------------------------------------------------------------------------------------------------
# Recorded runs, through MLflow
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """An optimization run as MLflow records it."""

    run_id: str
    name: str
    experiment_id: str
    status: str  # MLflow's: RUNNING, FINISHED, KILLED, FAILED
    start_ms: int
    end_ms: int | None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]

    @property
    def explorer_status(self) -> str:
        return self.tags.get("gepa_explorer.status", self.status.lower())

    @property
    def live_dir(self) -> Path | None:
        value = self.tags.get("gepa_explorer.live_dir")
        return Path(value) if value else None

    @property
    def is_local_process(self) -> bool:
        return self.tags.get("gepa_explorer.host") == socket.gethostname()


def _run_info(run: Any) -> RunInfo:
    return RunInfo(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id[:8],
        experiment_id=run.info.experiment_id,
        status=run.info.status,
        start_ms=run.info.start_time or 0,
        end_ms=run.info.end_time,
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        metrics=dict(run.data.metrics),
    )


def _client(tracking_uri: str | None):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri) if tracking_uri else mlflow.MlflowClient()


def list_optimization_runs(*, tracking_uri: str | None = None, max_results: int = 500) -> list[RunInfo]:
    """Every GEPA Explorer optimization run in the store, newest first."""
    client = _client(tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    runs = client.search_runs(
        experiment_ids=experiments,
        filter_string="tags.`gepa_explorer.kind` = 'optimization'",
        order_by=["attributes.start_time DESC"],
        max_results=max_results,
    )
    return [_run_info(run) for run in runs]


def get_run(run_id: str, *, tracking_uri: str | None = None) -> RunInfo:
    from mlflow.exceptions import MlflowException

    try:
        run = _client(tracking_uri).get_run(run_id)
    except MlflowException:
        raise RunNotFound(f"No run with id '{run_id}' in this store: pick one from the list.") from None
    if run.data.tags.get("gepa_explorer.kind") != "optimization":
        raise RunNotFound(f"Run '{run_id}' is not a GEPA Explorer optimization run.")
    return _run_info(run)


def load_events(info: RunInfo, *, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """The run's events: from its live folder while it runs here, otherwise from its MLflow artifact."""
    import tempfile

    from mlflow.exceptions import MlflowException

    live = info.live_dir
    if info.status == "RUNNING" and live is not None and (live / EVENTS_FILE).exists():
        events, _ = tail_events(live / EVENTS_FILE, 0)
        return events
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = _client(tracking_uri).download_artifacts(info.run_id, EVENTS_FILE, folder)
            with open(path, encoding="utf-8") as handle:
                return parse_events(handle, source=f"run {info.run_id}")
    except (MlflowException, OSError) as error:
        if live is not None and (live / EVENTS_FILE).exists():
            events, _ = tail_events(live / EVENTS_FILE, 0)
            return events
        raise EventLogError(
            f"Run {info.run_id} has no events.jsonl artifact ({' '.join(str(error).split())[:120]}): "
            "it may have been stopped before it recorded anything."
        ) from None


def orphaned(info: RunInfo) -> bool:
    """A run MLflow still calls RUNNING whose worker process on this machine is gone."""
    if info.status != "RUNNING" or not info.is_local_process:
        return False
    pid = info.tags.get("gepa_explorer.pid")
    return pid is not None and not process_alive(int(pid))


def close_orphan(info: RunInfo, *, tracking_uri: str | None = None) -> None:
    """Salvage a run whose worker died: log its events and mark it FAILED, so it stays readable."""
    from core.store import retry_store

    client = _client(tracking_uri)
    live = info.live_dir
    if live is not None and (live / EVENTS_FILE).exists():
        retry_store(lambda: client.log_artifact(info.run_id, str(live / EVENTS_FILE)))
    retry_store(lambda: client.set_tag(info.run_id, "gepa_explorer.status", "failed"))
    retry_store(
        lambda: client.set_tag(info.run_id, "gepa_explorer.error", "The optimization process ended unexpectedly.")
    )
    retry_store(lambda: client.set_terminated(info.run_id, status="FAILED"))


def salvage_if_orphaned(info: RunInfo, *, tracking_uri: str | None = None) -> RunInfo | None:
    """When ``info``'s worker died, salvage the run (see :func:`close_orphan`) and return its new
    record; None when the run is not an orphan."""
    if not orphaned(info):
        return None
    close_orphan(info, tracking_uri=tracking_uri)
    return get_run(info.run_id, tracking_uri=tracking_uri)


def register_run_candidate(info: RunInfo, candidate: int, *, tracking_uri: str | None = None):  # -> PromptVersionInfo
    """Register candidate ``candidate`` of a recorded run as a new version of its baseline's prompt.

    For a run that was stopped, or any candidate a user prefers. The same checks as at the end of a
    run apply: never a copy of the baseline, never one that lost a variable.
    """
    from core.optimization import TAG_PREFIX, register_candidate
    from core.prompts import PromptError, PromptVersionInfo
    from core.scorers import ScorerSpec
    from core.store import retry_store

    events = load_events(info, tracking_uri=tracking_uri)
    started = next((e for e in events if e["type"] == "run_started"), None)
    validations = {e["candidate"]: e for e in events if e["type"] == "validation"}
    if started is None or candidate not in validations:
        raise PromptError(f"Run {info.run_id} has no candidate {candidate} to register.")
    base = started["baseline"]
    baseline = PromptVersionInfo(base["name"], int(base["version"]), base["template"])
    scorer = ScorerSpec(started["scorer"]["kind"], tuple(started["scorer"]["normalization"]))
    version = register_candidate(
        baseline,
        validations[candidate]["template"],
        run_id=info.run_id,
        candidate=candidate,
        initial=validations[0]["aggregate"] if 0 in validations else None,
        final=validations[candidate]["aggregate"],
        scorer=scorer,
        tracking_uri=tracking_uri,
    )
    retry_store(lambda: _client(tracking_uri).set_tag(info.run_id, TAG_PREFIX + "optimized_uri", version.uri))
    return version
