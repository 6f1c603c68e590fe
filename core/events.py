"""The event log of an optimization run: one versioned, typed schema for the recorder, the UI, the
results loader and the tests.

A run appends one JSON object per line to ``events.jsonl`` in its run folder; the UI tails it while
the run goes, and at the end (or at cancellation) it is logged at the root of the MLflow run's
artifacts. Everything a results view shows is rebuilt from these events (:mod:`core.analysis`).

Each line is an event: a frozen dataclass below, written by :meth:`Event.to_dict` and read back by
:func:`decode_event` (through :func:`parse_events`, :func:`read_events` or :func:`tail_events`,
the only readers). Every line has ``v`` (schema version), ``seq`` (0, 1, 2, ...), ``t`` (seconds
since the epoch) and ``type``. The types, in the order a run emits them:

``run_started`` (:class:`RunStarted`)
    The settings, models, scorer, dataset rows and splits, the baseline prompt, the budget preflight,
    the model preflight checks and where the MLflow run is.
``baseline_progress`` (:class:`BaselineProgress`)
    While the baseline is scored on the validation set, before its ``validation`` event: how many
    examples so far (a few times a second at most).
``validation`` (:class:`Candidate`)
    A candidate scored on the whole validation set.
``pareto_front`` (:class:`FrontUpdated`)
    GEPA's own front after a validation: every candidate that is best (ties included) on at least
    one validation example, the set GEPA's Pareto selection samples parents from.
``budget`` (:class:`BudgetUsed`)
    Metric calls used so far.
``iteration`` (:class:`Proposal`)
    One per GEPA iteration, at its end: what was proposed from which parent and what became of it.
``stage`` (:class:`Stage`)
    What the run does after its search.
``test_scores`` (:class:`ScoredOnTest`)
    After the search, when every candidate is scored on the test set: one per candidate.
``usage`` (:class:`UsageUpdate`)
    Tokens, seconds and calls per model role so far, as the run goes.
``run_finished`` (:class:`RunFinished`)
    How it ended, what was registered, and the traced final evaluation.

Schema history: version 1 (the first release) wrote the same types with a few fields that are
derived from the others (best candidate and scores in ``iteration`` and ``run_finished``) and a
front of non-dominated candidates in ``pareto_front``; it is still read, derived fields ignored.
Version 3 adds what the reflection model was shown to ``iteration``: the reflective dataset GEPA
built (``reflective_dataset``, :class:`ReflectiveExample` records) and the full length of the
instruction text it sent (``reflection_prompt_chars``; the text itself, ``reflection_prompt``, is
kept up to :data:`REFLECTION_PROMPT_CAP` characters). Logs of versions 1 and 2 read with those
fields empty; every event keeps the version it was written with (:attr:`Event.schema_version`), so
a reader can say what an older log lacks. Unknown fields are ignored when reading, so a log written
with more fields stays readable.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any, ClassVar, Literal, TypeVar

from core.errors import InputError

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
EVENTS_FILE = "events.jsonl"
REFLECTION_PROMPT_CAP = 50_000
"""Characters of the reflection model's instruction text kept in ``iteration`` events; GEPA's
default request for a minibatch of 3 is about 2,500, so only very long inputs or outputs are cut."""

Outcome = Literal["accepted", "rejected", "skipped", "reflection_failed", "invalid_proposal"]
RunStatus = Literal["finished", "cancelled", "failed"]
StoppedBy = Literal["budget", "patience", "perfect", "cancelled", "error"]
StageName = Literal["final_evaluation", "test_scoring", "registering"]

E = TypeVar("E", bound="Event")


class EventLogError(InputError, ValueError):
    """An event log that cannot be read: wrong schema version or not an event log at all."""


# --------------------------------------------------------------------------------------------------
# Records inside events
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleRecord:
    """One dataset row as the run saw it. ``id`` is its index in the dataset, ``row`` its 1-based row
    in the file."""

    id: int
    row: int = 0
    inputs: Mapping[str, str] = field(default_factory=dict)
    expected: str = ""


@dataclass(frozen=True)
class ReflectiveExample:
    """One record of the reflective dataset GEPA built from the parent's minibatch run: what the
    reflection model was shown about one example.

    ``inputs`` are the example's inputs, ``output`` the parent's answer, ``expected`` the expected
    answer, ``score`` its score and ``feedback`` the scorer's rationale (one line per scorer when
    there are several). ``example`` is the example id (None when the record did not say which
    minibatch example it was).
    """

    example: int | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    output: str = ""
    expected: str = ""
    score: float = 0.0
    feedback: str = ""


@dataclass(frozen=True)
class PromptRef:
    """A registered prompt version."""

    uri: str = ""
    name: str = ""
    version: int = 0
    template: str = ""


@dataclass(frozen=True)
class DatasetRef:
    name: str = ""
    source: str = ""
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelsRef:
    """The public description of the models (never a key)."""

    provider: str = ""
    task_model: str = ""
    reflection_model: str = ""
    base_url: str | None = None
    simulated: bool = False
    simulated_delay_ms: float = 0.0
    simulated_error_rate: float = 0.0


@dataclass(frozen=True)
class ScorerRef:
    kind: str = "exact_match"
    normalization: tuple[str, ...] = ()


@dataclass(frozen=True)
class BudgetRef:
    """The budget preflight shown before the run (:class:`core.budget.BudgetPlan`)."""

    budget: int = 0
    min_proposals: int = 0
    max_proposals: int = 0
    level: str = "ok"
    message: str = ""


@dataclass(frozen=True)
class PreflightCheck:
    role: str
    model: str
    ok: bool
    seconds: float = 0.0


@dataclass(frozen=True)
class PriceRef:
    """A model's price in dollars per million input and output tokens, and where it comes from
    ("cost map", "you", "simulated")."""

    input_per_million: float
    output_per_million: float
    source: str = ""


@dataclass(frozen=True)
class RoleTally:
    """Calls, tokens and dollars of one role (task, reflection, judge); ``cost`` None: unknown."""

    calls: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    cost: float | None = None


@dataclass(frozen=True)
class EstimateRecord:
    """The pre-run estimate (:mod:`core.estimate`): per role, the expected metric calls, the seconds,
    and in words what it comes to and what the judge changes."""

    metric_calls: float = 0.0
    seconds: float = 0.0
    cost: float | None = None
    simulated: bool = False
    summary: str = ""
    judge_effect: str | None = None
    by_role: Mapping[str, RoleTally] = field(default_factory=dict)


@dataclass(frozen=True)
class UsageRecord:
    """What one role's successful responses used so far (:class:`core.models.Usage`)."""

    responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    unreported: int = 0


@dataclass(frozen=True)
class JudgeRef:
    """The LLM judge of a run that scores with one."""

    model: str = ""
    simulated: bool = False


@dataclass(frozen=True)
class MlflowRef:
    run_id: str | None = None
    experiment_id: str | None = None
    tracking_uri: str | None = None


@dataclass(frozen=True)
class Registered:
    """The prompt version the run's best candidate is: a new one, or an ``existing`` version that
    already had exactly its text (so nothing new was registered); ``by_run`` is then the run that
    registered that version (None: not an optimization run, or a log from before this field)."""

    uri: str
    version: int
    existing: bool = False
    by_run: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """A template scored on examples: outputs and scores in example order, and their mean."""

    outputs: tuple[str, ...]
    scores: tuple[float, ...]
    aggregate: float
    rationales: tuple[str, ...] = ()


@dataclass(frozen=True)
class FinalEvaluation:
    """Baseline and best scored once more after the search, traced in MLflow: on the validation set,
    and on the test set (``test_baseline``/``test_best``; None without a test set)."""

    baseline: Evaluation
    best: Evaluation
    best_candidate: int = 0
    test_baseline: Evaluation | None = None
    test_best: Evaluation | None = None


# --------------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every line has besides its own fields: ``seq`` and ``t`` are set by :class:`EventLog`;
    ``schema_version`` is the ``v`` the line was read with (:data:`SCHEMA_VERSION` for a new event)."""

    TYPE: ClassVar[str] = ""
    seq: int = 0
    t: float = 0.0
    schema_version: int = field(default=SCHEMA_VERSION, metadata={"key": "v"})

    def to_dict(self) -> dict[str, Any]:
        """The line's JSON object in the current schema: ``v``, ``seq``, ``t``, ``type``, then the fields."""
        data: dict[str, Any] = {"v": SCHEMA_VERSION, "seq": self.seq, "t": self.t, "type": self.TYPE}
        for item in dataclasses.fields(self):
            if item.name not in ("seq", "t", "schema_version"):
                data[item.metadata.get("key", item.name)] = _encode(getattr(self, item.name))
        return data

    @classmethod
    def from_dict(cls: type[E], data: Mapping[str, Any]) -> E:
        """The event of this type in ``data`` (a line's JSON object); unknown keys are ignored."""
        return _build(cls, data)


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    """The run's settings (``config``: the public form of :class:`~core.config.OptimizationConfig`,
    never a key), models, scorer and data. ``examples`` are every row the run may use (the dataset's,
    then a separate test file's, whose ``row`` numbers count in that file); ``train_ids``, ``val_ids``
    and ``test_ids`` are example ids (``test_ids`` empty without a test set; ``test_dataset`` names a
    separate test file)."""

    TYPE: ClassVar[str] = "run_started"
    config: Mapping[str, Any] = field(default_factory=dict)
    models: ModelsRef = ModelsRef()
    scorer: ScorerRef = ScorerRef()
    dataset: DatasetRef = DatasetRef()
    examples: tuple[ExampleRecord, ...] = ()
    train_ids: tuple[int, ...] = ()
    val_ids: tuple[int, ...] = ()
    test_ids: tuple[int, ...] = ()
    test_dataset: DatasetRef | None = None
    baseline: PromptRef = PromptRef()
    budget: BudgetRef = BudgetRef()
    preflight: tuple[PreflightCheck, ...] = ()
    mlflow: MlflowRef = MlflowRef()
    judge: JudgeRef | None = None
    prices: Mapping[str, PriceRef | None] = field(default_factory=dict)
    estimate: EstimateRecord | None = None


@dataclass(frozen=True, kw_only=True)
class BaselineProgress(Event):
    """The baseline being scored on the validation set, before its ``validation`` event: ``scored``
    of ``total`` examples so far (each one metric call, so ``metric_calls`` is ``scored``). Written
    when that scoring starts and then at most a few times a second; never for the last example
    (the ``validation`` event follows)."""

    TYPE: ClassVar[str] = "baseline_progress"
    scored: int = 0
    total: int = 0
    metric_calls: int = 0


@dataclass(frozen=True, kw_only=True)
class Candidate(Event):
    """A prompt scored on the whole validation set (written as a ``validation`` line, its index under
    the key ``candidate``).

    ``index`` counts candidates in the order GEPA validated them (0 is the baseline); ``iteration``
    is the GEPA iteration that produced it; ``metric_calls`` the budget used once its validation
    finished; ``scores``/``outputs`` are aligned with the run's ``val_ids``; ``failed`` counts outputs
    that are failed model calls. Two ``parents`` mean a merge.
    """

    TYPE: ClassVar[str] = "validation"
    index: int = field(metadata={"key": "candidate"})
    iteration: int = 0
    parents: tuple[int, ...] = ()
    template: str = ""
    scores: tuple[float, ...] = ()
    outputs: tuple[str, ...] = ()
    aggregate: float = 0.0
    metric_calls: int = 0
    failed: int = 0
    rationales: tuple[str, ...] = ()
    judge_failed: int = 0


@dataclass(frozen=True, kw_only=True)
class ScoredOnTest(Event):
    """A candidate scored on the test set after the search (``scores``/``outputs`` aligned with the
    run's ``test_ids``), so validation and test can be compared candidate by candidate."""

    TYPE: ClassVar[str] = "test_scores"
    index: int = field(metadata={"key": "candidate"})
    scores: tuple[float, ...] = ()
    outputs: tuple[str, ...] = ()
    aggregate: float = 0.0
    failed: int = 0
    rationales: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UsageUpdate(Event):
    """Tokens, seconds and calls of every model role so far (preflight checks included), and the
    judge's cache and failures: written as the run goes (after each validation and iteration) and
    once more before ``run_finished``."""

    TYPE: ClassVar[str] = "usage"
    metric_calls: int = 0
    by_role: Mapping[str, UsageRecord] = field(default_factory=dict)
    judge_cache_hits: int = 0
    judge_cache_misses: int = 0
    judge_failures: int = 0


@dataclass(frozen=True, kw_only=True)
class FrontUpdated(Event):
    """GEPA's front after a validation (see the module docstring); ``displaced`` left it then."""

    TYPE: ClassVar[str] = "pareto_front"
    iteration: int = 0
    front: tuple[int, ...] = ()
    displaced: tuple[int, ...] = ()
    metric_calls: int = 0


@dataclass(frozen=True, kw_only=True)
class BudgetUsed(Event):
    TYPE: ClassVar[str] = "budget"
    iteration: int = 0
    metric_calls: int = 0


@dataclass(frozen=True, kw_only=True)
class Proposal(Event):
    """One GEPA iteration (an ``iteration`` line): what was proposed from which parent, and what became
    of it.

    ``outcome`` is accepted, rejected, skipped, reflection_failed or invalid_proposal; ``candidate``
    is set only when accepted. ``minibatch`` holds example ids; ``scores_before``/``scores_after`` are
    the parent's and the proposal's minibatch scores (``scores_after`` is empty when nothing was
    scored). ``metric_calls`` is the budget used at the end of the iteration.

    What the reflection model was shown and said (empty or None when it was not asked):
    ``reflective_dataset`` is the dataset GEPA built from the parent's minibatch run (schema 3;
    empty in older logs), ``reflection_prompt`` the instruction text GEPA sent, cut at
    :data:`REFLECTION_PROMPT_CAP` characters, ``reflection_prompt_chars`` its full length (schema 3;
    0 in older logs), and ``reflection`` the model's full reply.
    """

    TYPE: ClassVar[str] = "iteration"
    iteration: int
    outcome: Outcome = "skipped"
    reason: str = ""
    parent: int | None = None
    candidate: int | None = None
    minibatch: tuple[int, ...] = ()
    scores_before: tuple[float, ...] = ()
    scores_after: tuple[float, ...] = ()
    outputs_before: tuple[str, ...] = ()
    outputs_after: tuple[str, ...] = ()
    template: str | None = None
    reflection: str | None = None
    reflection_prompt: str | None = None
    reflection_prompt_chars: int = 0
    reflective_dataset: tuple[ReflectiveExample, ...] = ()
    metric_calls: int = 0

    @property
    def reflection_prompt_cut(self) -> bool:
        """True when the recorded instruction text is shorter than what GEPA sent."""
        return self.reflection_prompt is not None and self.reflection_prompt_chars > len(self.reflection_prompt)

    @property
    def minibatch_score(self) -> float | None:
        """The proposal's mean minibatch score, or None when it was never scored."""
        if not self.scores_after:
            return None
        return sum(self.scores_after) / len(self.scores_after)


@dataclass(frozen=True, kw_only=True)
class Stage(Event):
    """What the run does after its search, in a sentence for the live view."""

    TYPE: ClassVar[str] = "stage"
    name: StageName
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    """How the run ended. ``stopped_by`` names the stop condition that fired; ``registered`` is the
    version it registered (None: see ``not_registered_reason``); ``final_evaluation`` is None when the
    run was cancelled or failed; ``failed_predictions`` counts task-model calls that failed after
    retries; ``seconds`` is the run's wall time."""

    TYPE: ClassVar[str] = "run_finished"
    status: RunStatus = "finished"
    stopped_by: StoppedBy = "budget"
    error: str | None = None
    registered: Registered | None = None
    not_registered_reason: str | None = None
    final_evaluation: FinalEvaluation | None = None
    failed_predictions: int = 0
    seconds: float = 0.0


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        RunStarted,
        BaselineProgress,
        Candidate,
        FrontUpdated,
        BudgetUsed,
        Proposal,
        Stage,
        ScoredOnTest,
        UsageUpdate,
        RunFinished,
    )
}


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


class EventLog:
    """Append-only writer. Thread-safe; each event gets its ``seq`` and ``t``, is flushed as one
    complete line, kept in :attr:`events` (the run's own model of itself), then handed to
    ``listener`` (the CLI's progress printer, say), if any."""

    def __init__(self, path: Path, listener: Callable[[Event], None] | None = None):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._listener = listener
        self.events: list[Event] = []

    def emit(self, event: E) -> E:
        with self._lock:
            event = dataclasses.replace(event, seq=len(self.events), t=round(time.time(), 3))
            self._handle.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
            self._handle.flush()
            self.events.append(event)
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


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def decode_event(data: Mapping[str, Any], *, where: str = "event") -> Event:
    """The typed event in one line's JSON object, from any readable schema version.

    Raises:
        EventLogError: not an event, an unknown type, a version this code cannot read, or a field of
            the wrong shape (``where`` names the line in the message).
    """
    if not isinstance(data, Mapping) or "type" not in data:
        raise EventLogError(f"{where}: not an event")
    if data.get("v") not in READABLE_VERSIONS:
        raise EventLogError(
            f"{where}: event schema version {data.get('v')} is not supported "
            f"(this GEPA Explorer reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    cls = EVENT_TYPES.get(str(data["type"]))
    if cls is None:
        raise EventLogError(f"{where}: unknown event type {data['type']!r}")
    try:
        return cls.from_dict(data)
    except (TypeError, ValueError, KeyError) as error:
        raise EventLogError(f"{where}: a {data['type']} event that cannot be read ({error})") from None


def parse_events(lines: Iterable[str], *, source: str = EVENTS_FILE) -> list[Event]:
    """Parse complete lines into events, checking the schema version."""
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            raise EventLogError(f"{source}, line {number}: not a JSON event") from None
        events.append(decode_event(data, where=f"{source}, line {number}"))
    return events


def read_events(path: Path) -> list[Event]:
    with path.open(encoding="utf-8") as handle:
        return parse_events(handle, source=str(path))


def tail_events(path: Path, offset: int = 0) -> tuple[list[Event], int]:
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


def of_type(events: Iterable[Event], kind: type[E]) -> list[E]:
    """The events of one type, in order."""
    return [event for event in events if isinstance(event, kind)]


def latest(events: Iterable[Event], kind: type[E]) -> E | None:
    """The last event of one type, or None."""
    found = None
    for event in events:
        if isinstance(event, kind):
            found = event
    return found


# --------------------------------------------------------------------------------------------------
# The codec: dataclasses <-> JSON, by their type hints
# --------------------------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.metadata.get("key", item.name): _encode(getattr(value, item.name))
            for item in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    return value


@cache
def _fields_of(cls: type) -> tuple[tuple[str, str, Any], ...]:
    """(attribute, JSON key, type hint) of each field of a dataclass."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (item.name, item.metadata.get("key", item.name), hints[item.name])
        for item in dataclasses.fields(cls)
        if item.init
    )


def _build(cls: type[E], data: Mapping[str, Any]) -> E:
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} must be an object, not {type(data).__name__}")
    values = {name: _decode(hint, data[key]) for name, key, hint in _fields_of(cls) if key in data}
    return cls(**values)


_SCALARS: dict[Any, Callable[[Any], Any]] = {int: int, float: float, bool: bool}


def _decode(hint: Any, value: Any) -> Any:
    if hint is Any:
        return value
    if hint is str:
        return "" if value is None else str(value)
    if hint in _SCALARS:
        return _SCALARS[hint](value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(options[0], value)
    if origin is Literal:
        return value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if item is float:  # the long ones (scores): skip the generic path
            return tuple(map(float, value or ()))
        if item is str:
            return tuple("" if v is None else str(v) for v in value or ())
        return tuple(_decode(item, v) for v in value or ())
    if origin in (Mapping, dict):
        args = typing.get_args(hint)
        if args == (str, str):
            return {str(k): "" if v is None else str(v) for k, v in (value or {}).items()}
        if len(args) == 2 and args[1] is not Any:
            return {str(k): _decode(args[1], v) for k, v in (value or {}).items()}
        return dict(value or {})
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    return value
