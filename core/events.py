"""The event log of an optimization run: one versioned schema for the recorder, the UI, the results
loader and the tests.

A run appends one JSON object per line to ``events.jsonl`` in its live folder; the UI tails it while
the run goes, and at the end (or at cancellation) it is logged at the root of the MLflow run's
artifacts. Everything the results view shows is rebuilt from these events.

Every event has ``v`` (schema version), ``seq`` (0, 1, 2, ...), ``t`` (seconds since the epoch) and
``type``. The types, in the order a run emits them:

``run_started``
    ``config`` (public settings, never a key), ``models``, ``scorer`` {kind, normalization},
    ``examples`` [{id, row, inputs, expected}], ``train_ids``, ``val_ids`` (example ids),
    ``baseline`` {uri, name, version, template}, ``budget``, ``preflight`` {...}, ``mlflow``
    {run_id, experiment_id, tracking_uri}.
``validation``
    A candidate scored on the whole validation set: ``iteration``, ``candidate``, ``parents``,
    ``template``, ``scores`` and ``outputs`` (aligned with ``val_ids``), ``aggregate``,
    ``metric_calls`` (budget used after it), ``failed`` (how many outputs are failed model calls).
``pareto_front``
    After each validation: ``iteration``, ``front`` (non-dominated candidates), ``metric_calls``.
``budget``
    ``iteration``, ``metric_calls``.
``iteration``
    One per GEPA iteration, at its end: ``iteration``, ``outcome`` (accepted, rejected, skipped,
    reflection_failed, invalid_proposal), ``reason``, ``parent``, ``minibatch`` (example ids),
    ``scores_before``, ``scores_after``, ``outputs_before``, ``outputs_after``, ``candidate``
    (index when accepted), ``template`` (the proposal), ``reflection`` (the reflection model's
    reply), ``reflection_prompt``, ``metric_calls``, ``best_candidate``, ``best_score``.
``stage``
    ``name`` (final_evaluation, registering) and ``message``: what the run does after its search.
``run_finished``
    ``status`` (finished, cancelled, failed), ``stopped_by`` (budget, patience, perfect, cancelled,
    error), ``error``, ``best_candidate``, ``initial_score``, ``final_score``, ``metric_calls``,
    ``iterations``, ``candidates``, ``max_pareto_front_size``, ``failed_predictions``,
    ``failed_reflections``, ``registered`` {uri, version} or null, ``not_registered_reason``,
    ``final_evaluation`` {baseline, best: {scores, outputs, aggregate, per_scorer}} or null,
    ``seconds``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

SCHEMA_VERSION = 1
EVENTS_FILE = "events.jsonl"
EVENT_TYPES = (
    "run_started",
    "validation",
    "pareto_front",
    "budget",
    "iteration",
    "stage",
    "run_finished",
)


class EventLogError(ValueError):
    """An event log that cannot be read: wrong schema version or not an event log at all."""


class EventLog:
    """Append-only writer. Thread-safe; each event is flushed as one complete line, then handed to
    ``listener`` (the CLI's progress printer, say), if any."""

    def __init__(self, path: Path, listener: Callable[[dict[str, Any]], None] | None = None):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._seq = 0
        self._listener = listener

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        with self._lock:
            event = {"v": SCHEMA_VERSION, "seq": self._seq, "t": round(time.time(), 3), "type": type_, **fields}
            self._handle.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            self._handle.flush()
            self._seq += 1
        if self._listener is not None:
            self._listener(event)
        return event

    def close(self) -> None:
        with self._lock:
            self._handle.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_events(lines: Iterable[str], *, source: str = "events.jsonl") -> list[dict[str, Any]]:
    """Parse complete lines into events, checking the schema version."""
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise EventLogError(f"{source}, line {number}: not a JSON event") from None
        if not isinstance(event, dict) or "type" not in event:
            raise EventLogError(f"{source}, line {number}: not an event")
        if event.get("v") != SCHEMA_VERSION:
            raise EventLogError(
                f"{source}: event schema version {event.get('v')} is not supported "
                f"(this GEPA Explorer reads version {SCHEMA_VERSION})"
            )
        events.append(event)
    return events


def read_events(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return parse_events(handle, source=str(path))


def tail_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Events appended since byte ``offset``, and the new offset. A half-written last line waits."""
    if not path.exists():
        return [], offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    if end == 0:
        return [], offset
    lines = data[:end].decode("utf-8").splitlines()
    return parse_events(lines, source=str(path)), offset + end


def of_type(events: Iterable[dict[str, Any]], type_: str) -> Iterator[dict[str, Any]]:
    return (e for e in events if e["type"] == type_)
