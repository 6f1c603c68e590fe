"""Continuing a failed or cancelled run from the GEPA state it saved.

Every run gives GEPA a ``run_dir`` in its folder (``gepa/``; ``gepa_kwargs["run_dir"]`` reaches
``gepa.optimize`` through ``GepaPromptOptimizer``), where GEPA saves its state before each
iteration, and the run keeps the state of GEPA's random generator and minibatch sampler beside it
(``gepa/random_state.pkl``, which GEPA's own state lacks); both are logged to the MLflow run
(artifacts ``gepa/``) at the end, by a queued run's guard whenever they change, and by a salvage.
A resume is a **new MLflow run** tagged
``gepa_explorer.resumed_from`` with the same settings (seed and total budget included): the old run
stays as it ended (its record is history), and the new one's event log starts with the old one's
search up to the last saved iteration, so a results view shows the whole search. GEPA itself resumes
from the state: its candidates, scores, Pareto front and metric calls spent, so the budget is the
total over both runs, and with the random state restored it draws the parents and minibatches the
uninterrupted run would have (with a deterministic model, the same iterations). Not carried over:
the patience counter (it starts again) and the token tally (the new run counts its own calls); it
also scores the baseline on the validation set once more before it goes on (outside the budget).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import tags
from core.errors import InputError
from core.events import EVENTS_FILE, RunStarted, parse_events
from core.rundir import RunDir

if TYPE_CHECKING:
    from core.config import OptimizationConfig
    from core.summary import RunSummary

RESUMABLE = ("FAILED", "KILLED")
STATE_ARTIFACT = "gepa/gepa_state.bin"
RANDOM_ARTIFACT = "gepa/random_state.pkl"


class NotResumable(InputError):
    """The run cannot be resumed; the message says why."""


def resume_config(run_id: str, *, tracking_uri: str | None = None) -> OptimizationConfig:
    """The settings of run ``run_id`` to resume it with (the store resolved into them).

    Raises:
        NotResumable: the run is still running or finished, or saved no GEPA state.
        RunNotFound: no such optimization run.
    """
    import mlflow

    from core.config import OptimizationConfig
    from core.runs import get_run
    from core.store import configure_mlflow

    store = configure_mlflow(tracking_uri)
    info = get_run(run_id, tracking_uri=store.tracking_uri)
    if info.status not in RESUMABLE:
        raise NotResumable(f"run {run_id} is {info.status.lower()}: only a failed or cancelled run can be resumed")
    client = mlflow.MlflowClient(store.tracking_uri)
    names = {item.path for item in client.list_artifacts(run_id, "gepa")}
    if STATE_ARTIFACT not in names:
        raise NotResumable(
            f"run {run_id} saved no GEPA state (it ended before its first iteration, or ran before resume "
            "existed): start it again instead"
        )
    started = _started(_download_events(client, run_id))
    data = dict(started.config)
    data["tracking_uri"] = store.tracking_uri
    data["run_name"] = None
    config = OptimizationConfig.from_dict(data)
    for path in (config.dataset_path, config.test_dataset_path):
        if path and not Path(path).exists():
            raise NotResumable(f"run {run_id} read its rows from {path}, which is not on this machine")
    return config


def prepare_resume(run_id: str, folder: RunDir, tracking_uri: str) -> None:
    """Put what run ``run_id`` saved into ``folder`` (its events and GEPA's state) and mark the folder
    as its continuation; :func:`core.optimization.run_optimization` does the rest."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    folder.gepa_dir.mkdir(parents=True, exist_ok=True)
    client.download_artifacts(run_id, STATE_ARTIFACT, str(folder.path))
    if RANDOM_ARTIFACT in {item.path for item in client.list_artifacts(run_id, "gepa")}:
        client.download_artifacts(run_id, RANDOM_ARTIFACT, str(folder.path))
    client.download_artifacts(run_id, EVENTS_FILE, str(folder.gepa_dir))
    (folder.gepa_dir / EVENTS_FILE).replace(folder.path / "resumed_events.jsonl")
    (folder.path / "resumed_from").write_text(run_id)


def resume_locally(
    run_id: str, config: OptimizationConfig, *, on_event: Callable[[Any], None] | None = None
) -> RunSummary:
    """Resume run ``run_id`` in this process (``python -m core resume RUN_ID``)."""
    from core.optimization import run_optimization
    from core.runs import new_run_dir

    folder = RunDir(new_run_dir())
    assert config.tracking_uri is not None
    prepare_resume(run_id, folder, config.tracking_uri)
    return run_optimization(config, folder.path, on_event=on_event)


def resumed_from(info: Any) -> str | None:
    """The run a run continues, if it is a resume."""
    return info.tags.get(tags.RESUMED_FROM) or None


def _download_events(client: Any, run_id: str) -> list:
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(run_id, EVENTS_FILE, folder)
        except Exception as error:  # noqa: BLE001 - said as one line
            raise NotResumable(f"run {run_id} has no event log to resume from ({error})") from None
        with open(path, encoding="utf-8") as handle:
            return parse_events(handle, source=f"run {run_id}")


def _started(events: list) -> RunStarted:
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    if started is None:
        raise NotResumable("the run's event log has no run_started event: nothing to resume")
    return started


def start_resume(run_id: str, *, tracking_uri: str | None = None, api_key: str | None = None) -> Any:
    """Start the continuation of run ``run_id`` through the default executor (the queue when
    ``GEPA_EXPLORER_QUEUE_URL`` is set, else a process here); its handle, whose ``run_dir.name`` is
    the reference a page keeps. The Results page's Resume button.

    Raises:
        NotResumable, RunNotFound: see :func:`resume_config`.
    """
    import dataclasses

    from core.executors import default_executor
    from core.store import runs_home

    config = resume_config(run_id, tracking_uri=tracking_uri)
    if api_key:
        config = dataclasses.replace(config, models=dataclasses.replace(config.models, api_key=api_key))
    executor = default_executor()
    submit = getattr(executor, "submit", None)
    if submit is not None:
        from core.queue import participant_key

        return submit(config, api_key=participant_key(api_key), resume=run_id)
    folder = RunDir.create(runs_home())
    assert config.tracking_uri is not None
    prepare_resume(run_id, folder, config.tracking_uri)
    folder.write_config(config.to_dict())
    return executor.start(folder, api_key=api_key)
