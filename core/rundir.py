"""A run's folder on this machine, and everything that knows its layout.

``GEPA_EXPLORER_HOME/runs/<timestamp>-<hex>/`` (or the CLI's ``--run-dir``) holds:

``config.json``    the run's settings, never a key (the key travels in the worker's environment only)
``events.jsonl``   the live event log (:mod:`core.events`), logged to the MLflow run at the end
``run_id``         the MLflow run id, once the run exists there
``pid``            the worker process, for the app's liveness check
``cancel.json``    written to ask the run to stop at its next iteration boundary
``outcome.json``   what the worker reported when it ended
``run.log``        the worker's output, and the traceback of an internal error
``gepa.log``       GEPA's own log lines (logged to the MLflow run too)
``gepa/``          GEPA's ``run_dir``: ``gepa_state.bin``, saved before each iteration (logged too)
``resumed_from``   the MLflow run this one continues, for a resumed run
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.events import EVENTS_FILE, Event, read_events

WorkerStatus = Literal["finished", "cancelled", "failed", "rejected"]


@dataclass(frozen=True)
class WorkerOutcome:
    """What a worker reports when it ends. ``rejected``: the inputs were refused before any MLflow run
    existed (``error`` says why); otherwise ``summary`` is the run's CLI summary."""

    status: WorkerStatus
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    finished_at: float = 0.0


@dataclass(frozen=True)
class RunDir:
    """The folder of one run; every read tolerates a file that is not there yet."""

    path: Path

    @classmethod
    def create(cls, parent: Path) -> RunDir:
        """A new, empty run folder under ``parent``, named by its start time."""
        path = parent / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return cls(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def log_path(self) -> Path:
        return self.path / "run.log"

    @property
    def gepa_log_path(self) -> Path:
        return self.path / "gepa.log"

    @property
    def cancel_path(self) -> Path:
        return self.path / "cancel.json"

    @property
    def gepa_dir(self) -> Path:
        """GEPA's own ``run_dir``: its saved state, which a resumed run starts from."""
        return self.path / "gepa"

    @property
    def gepa_state_path(self) -> Path:
        return self.gepa_dir / "gepa_state.bin"

    def gepa_saved_files(self) -> list[Path]:
        """What a resume needs of ``gepa/``: GEPA's state and the random state kept beside it."""
        return [path for path in (self.gepa_state_path, self.gepa_dir / "random_state.pkl") if path.exists()]

    @property
    def resumed_from(self) -> str | None:
        """The MLflow run this run continues (``resumed_from``, written by :mod:`core.resume`)."""
        return _read_text(self.path / "resumed_from")

    # -- settings and identity --------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        (self.path / "config.json").write_text(json.dumps(config, indent=2))

    def read_config(self) -> dict[str, Any]:
        return json.loads((self.path / "config.json").read_text())

    def run_id(self) -> str | None:
        return _read_text(self.path / "run_id")

    def write_run_id(self, run_id: str) -> None:
        (self.path / "run_id").write_text(run_id)

    def pid(self) -> int | None:
        text = _read_text(self.path / "pid")
        return int(text) if text and text.isdigit() else None

    def write_pid(self, pid: int) -> None:
        (self.path / "pid").write_text(str(pid))

    # -- stopping -----------------------------------------------------------------------------
    def request_cancel(self, *, register_best: bool = False) -> None:
        """Ask the run to stop at its next iteration boundary (and whether to register its best)."""
        self.cancel_path.write_text(json.dumps({"register_best": register_best}))

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()

    @property
    def register_best_on_cancel(self) -> bool:
        try:
            return bool(json.loads(self.cancel_path.read_text()).get("register_best"))
        except (OSError, ValueError):
            return False

    # -- what it recorded -----------------------------------------------------------------------
    def read_events(self) -> list[Event]:
        """Every complete event written so far (none before the log exists)."""
        return read_events(self.events_path) if self.events_path.exists() else []

    def outcome(self) -> WorkerOutcome | None:
        """What the worker reported when it ended; None while it runs (or if it died first)."""
        try:
            data = json.loads((self.path / "outcome.json").read_text())
            return WorkerOutcome(**data)
        except (OSError, ValueError, TypeError):
            return None

    def write_outcome(self, outcome: WorkerOutcome) -> None:
        (self.path / "outcome.json").write_text(json.dumps(asdict(outcome), default=str))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
