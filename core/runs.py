"""Optimization runs as processes, and finding any run again: start, watch, cancel, open.

Each run is a process of its own (MLflow's optimizer patches classes, so two runs in one process
would corrupt each other) with its folder on this machine (:mod:`core.rundir`), started by an
executor (:mod:`core.executors`: warm, forked from a process that has already imported what a run
needs, or a fresh ``python -m core worker RUN_DIR``).
Anything a results view needs is also in the MLflow run, so a run started elsewhere, or by the CLI,
is read the same way. :func:`open_run` is the one place that decides where a run's events come from
(its live folder, its MLflow artifact, a salvage of a dead worker) and which phase it is in.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core import tags
from core.errors import InputError
from core.events import EVENTS_FILE, Event, EventLogError, RunFinished, parse_events, tail_events
from core.executors import API_KEY_ENV, default_executor, process_alive
from core.executors import PROJECT_ROOT as PROJECT_ROOT  # where callers have always found it
from core.rundir import RunDir, WorkerOutcome
from core.store import runs_home

if TYPE_CHECKING:
    from core.analysis import RunView
    from core.config import OptimizationConfig
    from core.registration import Registration


class RunNotFound(InputError, LookupError):
    """No optimization run with that id in the store."""


def new_run_dir() -> Path:
    return RunDir.create(runs_home()).path


@dataclass
class RunHandle:
    """A run process started from this machine, known by its folder."""

    run_dir: Path
    pid: int | None = None
    _offset: int = field(default=0, repr=False)

    @property
    def folder(self) -> RunDir:
        return RunDir(self.run_dir)

    @property
    def run_id(self) -> str | None:
        return self.folder.run_id()

    def outcome(self) -> WorkerOutcome | None:
        """What the worker reported when it ended; ``None`` while it runs."""
        return self.folder.outcome()

    def is_alive(self) -> bool:
        return self.pid is not None and process_alive(self.pid)

    def cancel(self, *, register_best: bool = False) -> None:
        self.folder.request_cancel(register_best=register_best)

    @property
    def cancel_requested(self) -> bool:
        return self.folder.cancel_requested

    def has_events(self) -> bool:
        """Whether the run has written anything to its event log yet (a file size, nothing parsed)."""
        try:
            return self.folder.events_path.stat().st_size > 0
        except OSError:
            return False

    def read_events(self) -> list[Event]:
        """Every event so far (re-reads from the start; see :meth:`new_events` to tail)."""
        return self.folder.read_events()

    def new_events(self) -> list[Event]:
        events, self._offset = tail_events(self.folder.events_path, self._offset)
        return events


def start_run(config: OptimizationConfig, *, run_dir: Path | None = None) -> RunHandle:
    """Start ``config`` in its own process (through :func:`core.executors.default_executor`)."""
    folder = RunDir(run_dir) if run_dir else RunDir.create(runs_home())
    folder.write_config(config.to_dict())
    return default_executor().start(folder, api_key=config.models.api_key)


def warm_up() -> None:
    """Get the executor ready to start runs at once (the app calls it when it starts); cheap to repeat."""
    default_executor().warm_up()


def find_handle(ref: str) -> Any:
    """The handle of run ``ref`` (a run folder's name) from the default executor; None if unknown."""
    return default_executor().find(ref)


def attach(run_dir: Path) -> RunHandle:
    """A handle on an existing run folder (after a page reload, say)."""
    return RunHandle(run_dir, RunDir(run_dir).pid())


def worker_main(run_dir: Path) -> int:
    """Body of ``python -m core worker RUN_DIR``: run the config found there and record the outcome.

    Exit status 0 (finished or cancelled), 1 (the run failed, or an internal error: its traceback
    goes to the run's log), 2 (the inputs were refused before the run existed).
    """
    folder = RunDir(run_dir)
    signal.signal(signal.SIGTERM, lambda *_: folder.request_cancel())
    outcome = run_in_folder(folder, api_key=os.environ.pop(API_KEY_ENV, None))
    return {"finished": 0, "cancelled": 0, "rejected": 2}.get(outcome.status, 1)


def run_in_folder(
    folder: RunDir, *, api_key: str | None, on_event: Callable[[Event], None] | None = None
) -> WorkerOutcome:
    """Run the config in ``folder`` in this process and record (and return) its outcome: the one code
    path of a worker, local (``python -m core worker RUN_DIR``, a warm fork) or queued (an RQ horse)."""
    from core.config import OptimizationConfig
    from core.optimization import run_optimization

    try:
        config = OptimizationConfig.from_dict(folder.read_config(), api_key=api_key)
        summary = run_optimization(config, folder.path, on_event=on_event)
        outcome = WorkerOutcome(summary.status, summary.error, summary.cli_dict())
    except InputError as error:
        # Before the MLflow run exists the inputs were refused; after, the store failed the run's end.
        outcome = WorkerOutcome("failed" if folder.run_id() else "rejected", " ".join(str(error).split()))
    except Exception as error:  # noqa: BLE001 - a bug: one line for the UI, the traceback in run.log
        traceback.print_exc()
        outcome = WorkerOutcome("failed", internal_error_line(error, folder.log_path))
    outcome = dataclasses.replace(outcome, finished_at=time.time())
    folder.write_outcome(outcome)
    return outcome


def internal_error_line(error: BaseException, log_path: Path) -> str:
    """The one line said for a bug (not a user's mistake): what it was and where its traceback is."""
    message = " ".join(str(error).split())
    return f"Internal error ({type(error).__name__}: {message[:200]}); its traceback is in {log_path}."


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
        return self.tags.get(tags.STATUS, self.status.lower())

    @property
    def live_dir(self) -> Path | None:
        value = self.tags.get(tags.LIVE_DIR)
        return Path(value) if value else None

    @property
    def host(self) -> str:
        return self.tags.get(tags.HOST, "unknown host")

    @property
    def is_local_process(self) -> bool:
        return self.tags.get(tags.HOST) == socket.gethostname()

    @property
    def dataset(self) -> str:
        return self.tags.get(tags.DATASET, "")

    @property
    def scorer(self) -> str:
        return self.tags.get(tags.SCORER, "")

    @property
    def stopped_by(self) -> str:
        return self.tags.get(tags.STOPPED_BY, "")

    @property
    def group(self) -> str | None:
        """The id shared by the runs of one repeat over seeds, if this run is one of them."""
        return self.tags.get(tags.GROUP) or None

    @property
    def participant(self) -> str | None:
        """Who of a class started the run (:mod:`core.participants`), if anyone said."""
        return self.tags.get(tags.PARTICIPANT) or None

    @property
    def test_scores(self) -> tuple[float | None, float | None]:
        """(baseline, best) on the held-out test set, from the final evaluation's metrics; (None, None)
        without a test set or before the run ended."""
        return self.metrics.get("test_baseline_score"), self.metrics.get("test_best_score")

    @property
    def cost_usd(self) -> float | None:
        """Dollars the run spent; None when a model's price is unknown, or the run logged no cost
        (it is still going, or it was recorded before metering)."""
        return self.metrics.get("cost_usd")

    @property
    def seconds(self) -> float | None:
        """The run's wall time; None until it ended."""
        return self.metrics.get("seconds")


SCORER_SHORT = {"exact_match": "exact match", "f1": "F1", "contains": "contains", "llm_judge": "LLM judge"}


def _started(info: RunInfo) -> str:
    return time.strftime("%b %d %H:%M", time.localtime(info.start_ms / 1000)) if info.start_ms else "?"


def _label_parts(info: RunInfo) -> list[tuple[str, str]]:
    """(field, text) pairs of a run's label, in reading order; a field it does not have is absent."""
    initial, final = info.metrics.get("initial_eval_score"), info.metrics.get("final_eval_score")
    scores = f"{initial:.0%} → {final:.0%}" if initial is not None and final is not None else "no score yet"
    test_initial, test_final = info.test_scores
    if test_initial is not None and test_final is not None:
        scores += f" (test {test_initial:.0%} → {test_final:.0%})"
    params = info.params
    parts = [
        ("scores", scores),
        ("scorer", SCORER_SHORT.get(params.get("scorer", ""), params.get("scorer") or info.scorer)),
    ]
    parts += [(name, f"{name} {params[name]}") for name in ("budget", "patience", "seed") if params.get(name)]
    if info.participant:
        parts.append(("participant", f"by {info.participant}"))
    if info.cost_usd is not None:
        parts.append(("cost", _dollars(info.cost_usd)))
    if info.seconds is not None:
        parts.append(("seconds", f"{info.seconds:.0f} s"))
    parts += [
        ("started", _started(info)),
        ("status", "" if info.explorer_status == "finished" else info.explorer_status),
    ]
    return [(field, text) for field, text in parts if text]


def run_label(info: RunInfo) -> str:
    """How a run is named in a picker: its scores first, then what tells it from the other runs
    (scorer, budget, patience, seed, participant, cost, seconds, when it started), and its state unless
    it finished."""
    return " · ".join(text for _, text in _label_parts(info))


def run_labels(runs: list[RunInfo]) -> dict[str, str]:
    """Each run's label among ``runs`` (by run id), short enough for a picker at 1024 px: its scores,
    then only the settings that differ between the runs listed, its state unless it finished, and when
    it started only where the rest would name two runs alike."""
    if len(runs) < 2:
        return {info.run_id: run_label(info) for info in runs}
    parts = {info.run_id: dict(_label_parts(info)) for info in runs}
    fields = ("scorer", "budget", "patience", "seed", "participant", "cost", "seconds")
    varying = [f for f in fields if len({p.get(f, "") for p in parts.values()}) > 1]
    labels = {}
    for run_id, found in parts.items():
        shown = [found["scores"], *(found[f] for f in varying if f in found), found.get("status", "")]
        labels[run_id] = " · ".join(text for text in shown if text)
    alike: dict[str, int] = {}
    for label in labels.values():
        alike[label] = alike.get(label, 0) + 1
    return {
        run_id: label if alike[label] == 1 else f"{label} · {parts[run_id]['started']}"
        for run_id, label in labels.items()
    }


def _dollars(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def run_rows(runs: list[RunInfo]) -> list[dict[str, Any]]:
    """The run list as table rows: scores first, then what distinguishes the runs."""
    return [
        {
            "baseline": r.metrics.get("initial_eval_score"),
            "best": r.metrics.get("final_eval_score"),
            "test": r.test_scores[1],
            "scorer": r.scorer or r.params.get("scorer", ""),
            "budget": r.params.get("budget"),
            "patience": r.params.get("patience"),
            "seed": r.params.get("seed"),
            "cost": r.cost_usd,
            "seconds": r.seconds,
            "participant": r.participant or "",
            "started": _started(r),
            "dataset": r.dataset,
            "status": r.explorer_status,
            "stopped by": r.stopped_by,
            "prompt": r.params.get("baseline_uri", ""),
            "run id": r.run_id,
        }
        for r in runs
    ]


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
        filter_string=f"tags.`{tags.KIND}` = '{tags.KIND_OPTIMIZATION}'",
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
    if run.data.tags.get(tags.KIND) != tags.KIND_OPTIMIZATION:
        raise RunNotFound(f"Run '{run_id}' is not a GEPA Explorer optimization run.")
    return _run_info(run)


def load_events(info: RunInfo, *, tracking_uri: str | None = None) -> list[Event]:
    """The run's events: from its live folder while it runs here, otherwise from its MLflow artifact."""
    import tempfile

    from mlflow.exceptions import MlflowException

    live = info.live_dir
    if info.status == "RUNNING" and live is not None and (live / EVENTS_FILE).exists():
        return RunDir(live).read_events()
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = _client(tracking_uri).download_artifacts(info.run_id, EVENTS_FILE, folder)
            with open(path, encoding="utf-8") as handle:
                return parse_events(handle, source=f"run {info.run_id}")
    except (MlflowException, OSError) as error:
        if live is not None and (live / EVENTS_FILE).exists():
            return RunDir(live).read_events()
        raise EventLogError(
            f"Run {info.run_id} has no events.jsonl artifact ({' '.join(str(error).split())[:120]}): "
            "it may have been stopped before it recorded anything."
        ) from None


def orphaned(info: RunInfo) -> bool:
    """A run MLflow still calls RUNNING whose worker process on this machine is gone (a queued run's
    liveness is its lease instead: :func:`core.queue.declare_dead`)."""
    if info.status != "RUNNING" or not info.is_local_process or info.tags.get(tags.QUEUE_REF):
        return False
    pid = info.tags.get(tags.PID)
    return pid is not None and not process_alive(int(pid))


def close_orphan(info: RunInfo, *, tracking_uri: str | None = None) -> None:
    """Salvage a run whose worker died: log its events and mark it FAILED, so it stays readable."""
    from core.store import retry_store

    client = _client(tracking_uri)
    live = info.live_dir
    if live is not None and (live / EVENTS_FILE).exists():
        retry_store(lambda: client.log_artifact(info.run_id, str(live / EVENTS_FILE)))
    for saved in RunDir(live).gepa_saved_files() if live is not None else []:  # for a resume (core.resume)
        retry_store(lambda saved=saved: client.log_artifact(info.run_id, str(saved), artifact_path="gepa"))
    retry_store(lambda: client.set_tag(info.run_id, tags.STATUS, "failed"))
    retry_store(lambda: client.set_tag(info.run_id, tags.ERROR, "The optimization process ended unexpectedly."))
    retry_store(lambda: client.set_terminated(info.run_id, status="FAILED"))


def salvage_if_orphaned(info: RunInfo, *, tracking_uri: str | None = None) -> RunInfo | None:
    """When ``info``'s worker died, salvage the run (see :func:`close_orphan`) and return its new
    record; None when the run is not an orphan."""
    if not orphaned(info):
        return None
    close_orphan(info, tracking_uri=tracking_uri)
    return get_run(info.run_id, tracking_uri=tracking_uri)


# --------------------------------------------------------------------------------------------------
# One run, whatever its source: open_run
# --------------------------------------------------------------------------------------------------

RunPhase = Literal["starting", "running", "finished", "cancelled", "failed", "rejected", "elsewhere", "unreadable"]


@dataclass(frozen=True)
class OpenRun:
    """A run as a page finds it.

    ``phase``: *starting* (its process runs but has written nothing yet), *running*, *finished*,
    *cancelled*, *failed* (including a dead worker's run, then ``salvaged``), *rejected* (its inputs
    were refused before it began), *elsewhere* (still going on another machine, whose events reach
    MLflow when it ends) or *unreadable* (nothing usable was recorded). ``message`` says why for the
    last three. ``handle`` is set when the run's process was started from this machine; ``info``
    once MLflow knows the run.
    """

    phase: RunPhase
    events: tuple[Event, ...] = ()
    info: RunInfo | None = None
    handle: RunHandle | None = None
    message: str | None = None
    salvaged: bool = False

    @cached_property
    def view(self) -> RunView | None:
        """The run rebuilt from its events; None before it has recorded anything."""
        from core.analysis import build_run_view

        return build_run_view(self.events) if self.events else None

    @property
    def is_live(self) -> bool:
        return self.phase in ("starting", "running")

    @property
    def stopping(self) -> bool:
        """Stop was pressed and the run has not reached its next iteration boundary yet."""
        return self.is_live and self.handle is not None and self.handle.cancel_requested

    @property
    def run_id(self) -> str | None:
        return self.info.run_id if self.info else (self.handle.run_id if self.handle else None)


EventsOfFinishedRun = Callable[[RunInfo], list[Event]]


def find_run(ref: str, *, tracking_uri: str | None = None) -> tuple[RunHandle | None, RunInfo | None]:
    """A run by the reference a page keeps (a run folder's name, or an MLflow run id).

    Returns the local handle when the run's folder is on this machine, and MLflow's record once the
    run exists there; raises :class:`RunNotFound` when neither is known.
    """
    ref = ref.strip()
    handle = default_executor().find(ref)
    if handle is not None:
        run_id = handle.run_id
        return handle, get_run(run_id, tracking_uri=tracking_uri) if run_id else None
    info = get_run(ref, tracking_uri=tracking_uri)
    queued = info.tags.get(tags.QUEUE_REF)
    executor = default_executor()
    if queued and info.status == "RUNNING" and getattr(executor, "url", None):  # followed through the queue
        handle = executor.find(queued)
        if handle is not None:
            return handle, info
    live = info.live_dir
    handle = attach(live) if live is not None and info.is_local_process and live.is_dir() else None
    return handle, info


def open_run(
    ref: str, *, tracking_uri: str | None = None, finished_events: EventsOfFinishedRun | None = None
) -> OpenRun:
    """The run behind ``ref`` (a run folder's name or an MLflow run id) with its events and phase.

    A run whose worker on this machine died is salvaged first (its events logged, its MLflow run
    marked failed). ``finished_events`` reads an ended run's events from MLflow (a page passes a
    cached reader; default :func:`load_events`).

    Raises:
        RunNotFound: no such run folder here and no such optimization run in the store.
    """
    handle, info = find_run(ref, tracking_uri=tracking_uri)
    salvaged = False
    if info is not None and (fresh := salvage_if_orphaned(info, tracking_uri=tracking_uri)) is not None:
        info, salvaged = fresh, True
    outcome = handle.outcome() if handle is not None else None
    if handle is not None and outcome is None and handle.is_alive():
        events = tuple(handle.read_events())
        return OpenRun("running" if events else "starting", events, info, handle)
    if outcome is not None and outcome.status == "rejected":
        return OpenRun("rejected", (), info, handle, f"The run could not start: {outcome.error}")
    events = tuple(handle.read_events()) if handle is not None else ()
    if not any(isinstance(e, RunFinished) for e in events) and info is not None:
        if info.status == "RUNNING" and not events:
            live = info.live_dir
            if live is not None and (live / EVENTS_FILE).exists():  # another host's folder, shared with us
                return OpenRun("running", tuple(RunDir(live).read_events()), info)
            where = f"Run {info.run_id} is still going in a process on another machine ({info.host})."
            return OpenRun("elsewhere", (), info, handle, f"{where} Its events reach MLflow when it ends.")
        try:
            events = tuple((finished_events or (lambda i: load_events(i, tracking_uri=tracking_uri)))(info))
        except EventLogError as error:
            if not events:
                return OpenRun("unreadable", (), info, handle, " ".join(str(error).split()))
    if not events:
        said = outcome.error if outcome is not None and outcome.error else "This run recorded nothing."
        return OpenRun("unreadable", (), info, handle, said)
    last = next((e for e in reversed(events) if isinstance(e, RunFinished)), None)
    if last is not None:
        return OpenRun(last.status, events, info, handle, salvaged=salvaged)
    ended = (
        salvaged or (handle is not None and not handle.is_alive()) or (info is not None and info.status != "RUNNING")
    )
    if ended:
        said = "The optimization process ended unexpectedly; what it recorded is kept."
        return OpenRun("failed", events, info, handle, said, salvaged)
    return OpenRun("running", events, info, handle)


def register_run_candidate(info: RunInfo, candidate: int, *, tracking_uri: str | None = None) -> Registration:
    """Register candidate ``candidate`` of a recorded run as a version of its baseline's prompt, under
    the same rule as at the end of a run (:func:`core.registration.registration_blocker`)."""
    from core.analysis import build_run_view
    from core.registration import register_candidate
    from core.store import retry_store

    view = build_run_view(load_events(info, tracking_uri=tracking_uri))
    registration = register_candidate(view, candidate, tracking_uri=tracking_uri)
    retry_store(lambda: _client(tracking_uri).set_tag(info.run_id, tags.OPTIMIZED_URI, registration.version.uri))
    return registration
