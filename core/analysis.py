"""What a recorded (or still running) optimization says: candidates, proposals, Pareto fronts over time,
per-example comparisons, lineage and what-if replays of the stop conditions.

Everything here is a pure function of the run's event log (:mod:`core.events`): build a
:class:`RunView` once with :func:`build_run_view`, then ask it questions. Nothing calls a model,
MLflow or Streamlit. numpy is used throughout; pandas is imported only by the functions that return
a DataFrame.

Conventions the caller must know:

* A *position* is an index into :attr:`RunView.val_examples` (the validation set, in the run's
  ``val_ids`` order); an *example id* is :attr:`~core.events.ExampleRecord.id`. Scores and outputs of a candidate are
  aligned with positions.
* Candidate 0 is the baseline. Candidates are numbered in the order they were validated.
* Fronts are recomputed from the validation scores with :mod:`core.pareto`; the run's own
  ``pareto_front`` events are not trusted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from core.events import (
    BaselineProgress,
    Candidate,
    Evaluation,
    Event,
    EventLogError,
    ExampleRecord,
    FinalEvaluation,
    ModelsRef,
    PromptRef,
    Proposal,
    Registered,
    RunFinished,
    RunStarted,
    ScoredOnTest,
    Stage,
)
from core.pareto import update_front
from core.scorers import ScorerSpec, is_failed_prediction

if TYPE_CHECKING:
    import pandas as pd

    from core.statistics import PairedComparison

XAxis = Literal["iteration", "metric_calls"]
MatrixOrder = Literal["index", "difficulty"]
Category = Literal["fixed", "regressed", "still failing", "always right"]
CATEGORIES: tuple[Category, ...] = ("fixed", "regressed", "still failing", "always right")
StopReason = Literal["budget", "patience", "run end"]

COMPARE_COLUMNS = (
    "split",
    "position",
    "example_id",
    "row",
    "inputs",
    "expected",
    "against_output",
    "candidate_output",
    "against_score",
    "candidate_score",
    "against_correct",
    "candidate_correct",
    "category",
    "expected_normalized",
    "against_normalized",
    "candidate_normalized",
    "failed",
)
WHAT_IF_COLUMNS = (
    "budget",
    "patience",
    "stopped_by",
    "iterations",
    "metric_calls",
    "best_score",
    "best_candidate",
    "beyond_recording",
)


@dataclass(frozen=True)
class FrontSnapshot:
    """The Pareto front right after one validation (``iteration`` is that validation's iteration)."""

    iteration: int
    metric_calls: int
    members: tuple[int, ...]


RunOutcome = Literal["running", "finished", "cancelled", "failed"]


@dataclass(frozen=True)
class RunView:
    """Everything the pages show about one run, rebuilt from its events (:func:`build_run_view`).

    ``started`` and ``finished`` are the run's first and last events (``finished`` is None while the
    run goes); ``baseline_progress`` says how far the baseline's scoring is while no candidate has
    been validated yet (None after); ``stage`` is the latest stage of a run that is past its search.
    ``candidates[i]`` is candidate ``i`` (GEPA numbers them 0, 1, 2, ... as it validates them);
    ``proposals`` are the finished iterations in order. ``iterations`` counts the finished GEPA iterations;
    ``metric_calls`` is the latest budget use seen in any event. ``best_candidate`` has the highest
    validation aggregate, the earliest on ties (0 while no candidate has been validated yet).
    ``val_scores`` is the candidates x validation-positions score matrix (a read-only numpy array;
    row i is candidate i).
    """

    started: RunStarted
    finished: RunFinished | None
    stage: Stage | None
    scorer: ScorerSpec
    examples: tuple[ExampleRecord, ...]
    val_examples: tuple[ExampleRecord, ...]
    test_examples: tuple[ExampleRecord, ...]
    candidates: tuple[Candidate, ...]
    proposals: tuple[Proposal, ...]
    fronts: tuple[FrontSnapshot, ...]
    best_candidate: int
    metric_calls: int
    iterations: int = 0
    baseline_metric_calls: int = 0
    on_test: Mapping[int, ScoredOnTest] = field(default_factory=dict)
    baseline_progress: BaselineProgress | None = None
    val_scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False, compare=False)

    # -- how the run went -----------------------------------------------------------------------
    @property
    def run_id(self) -> str | None:
        return self.started.mlflow.run_id

    @property
    def outcome(self) -> RunOutcome:
        """running until the run_finished event arrives, then finished, cancelled or failed."""
        return self.finished.status if self.finished else "running"

    @property
    def is_live(self) -> bool:
        return self.finished is None

    @property
    def stopped_by(self) -> str | None:
        return self.finished.stopped_by if self.finished else None

    @property
    def error(self) -> str | None:
        return self.finished.error if self.finished else None

    @property
    def registered(self) -> Registered | None:
        return self.finished.registered if self.finished else None

    @property
    def not_registered_reason(self) -> str | None:
        return self.finished.not_registered_reason if self.finished else None

    @property
    def final_evaluation(self) -> FinalEvaluation | None:
        return self.finished.final_evaluation if self.finished else None

    @property
    def failed_predictions(self) -> int:
        return self.finished.failed_predictions if self.finished else 0

    @property
    def failed_reflections(self) -> int:
        return sum(1 for p in self.proposals if p.outcome == "reflection_failed")

    @property
    def seconds(self) -> float | None:
        return self.finished.seconds if self.finished else None

    # -- settings -------------------------------------------------------------------------------
    @property
    def baseline(self) -> PromptRef:
        return self.started.baseline

    @property
    def models(self) -> ModelsRef:
        return self.started.models

    @property
    def budget(self) -> int:
        """The metric-call budget the run was given."""
        return self.started.budget.budget or int(self.started.config.get("budget") or 0)

    @property
    def patience(self) -> int | None:
        """None when patience was off."""
        return int(self.started.config["patience"]) if self.started.config.get("patience") else None

    @property
    def seed(self) -> int:
        return int(self.started.config.get("seed") or 0)

    @property
    def minibatch_size(self) -> int:
        return int(self.started.config.get("minibatch_size") or 3)

    # -- candidates -----------------------------------------------------------------------------
    @property
    def best(self) -> Candidate | None:
        return self.candidates[self.best_candidate] if self.candidates else None

    @property
    def baseline_candidate(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def initial_score(self) -> float | None:
        return self.candidates[0].aggregate if self.candidates else None

    @property
    def final_score(self) -> float | None:
        return self.best.aggregate if self.best else None

    @property
    def current_front(self) -> tuple[int, ...]:
        """The front after the latest validation (empty before the baseline is scored)."""
        return self.fronts[-1].members if self.fronts else ()

    @property
    def max_front_size(self) -> int:
        return max((len(f.members) for f in self.fronts), default=0)

    @property
    def last_iteration(self) -> int:
        """The latest iteration seen, finished or (in a live run) already validated."""
        latest = max((c.iteration for c in self.candidates), default=0)
        return max(latest, self.iterations)


def build_run_view(events: Sequence[Event]) -> RunView:
    """Rebuild a run from its events, complete or still being written.

    Works on a log cut anywhere after ``run_started`` (a live run), on runs with only the baseline
    and on runs without any validation yet (then ``candidates`` and ``fronts`` are empty).

    Raises:
        EventLogError: the events contain no ``run_started`` event (not a GEPA Explorer run log, or
            a log cut before its first line).
    """
    started: RunStarted | None = None
    validations: dict[int, Candidate] = {}
    on_test: dict[int, ScoredOnTest] = {}
    iterations: dict[int, Proposal] = {}
    finished: RunFinished | None = None
    stage: Stage | None = None
    progress: BaselineProgress | None = None
    metric_calls = 0
    for event in events:
        if isinstance(event, RunStarted):
            started = event
            continue
        if isinstance(event, Candidate):
            validations[event.index] = event
        elif isinstance(event, Proposal):
            iterations[event.iteration] = event
        elif isinstance(event, Stage):
            stage = event
        elif isinstance(event, BaselineProgress):
            progress = event
        elif isinstance(event, ScoredOnTest):
            on_test[event.index] = event
        elif isinstance(event, RunFinished):
            finished = event
        metric_calls = max(metric_calls, getattr(event, "metric_calls", 0) or 0)
    if started is None:
        raise EventLogError("This log has no run_started event, so it is not the log of an optimization run.")

    by_id = {example.id: example for example in started.examples}
    val_examples = tuple(by_id[i] for i in started.val_ids if i in by_id)
    test_examples = tuple(by_id[i] for i in started.test_ids if i in by_id)
    candidates = tuple(validations[i] for i in sorted(validations))
    width = len(candidates[0].scores) if candidates else len(val_examples)
    matrix = np.array([c.scores for c in candidates], dtype=float).reshape(len(candidates), width)
    matrix.setflags(write=False)
    aggregates = [c.aggregate for c in candidates]
    return RunView(
        started=started,
        finished=finished,
        stage=stage if finished is None else None,
        scorer=ScorerSpec(
            kind=started.scorer.kind,  # type: ignore[arg-type]
            normalization=started.scorer.normalization,  # type: ignore[arg-type]
        ),
        examples=started.examples,
        val_examples=val_examples,
        test_examples=test_examples,
        candidates=candidates,
        proposals=tuple(iterations[i] for i in sorted(iterations)),
        fronts=_fronts(candidates),
        best_candidate=candidates[int(np.argmax(aggregates))].index if aggregates else 0,
        metric_calls=metric_calls,
        iterations=max(iterations, default=0),
        baseline_metric_calls=candidates[0].metric_calls if candidates else 0,
        on_test=on_test,
        baseline_progress=progress if not candidates else None,
        val_scores=matrix,
    )


def _fronts(candidates: Sequence[Candidate]) -> tuple[FrontSnapshot, ...]:
    scores = {c.index: c.scores for c in candidates}
    front: list[int] = []
    snapshots = []
    for candidate in candidates:
        front = update_front(front, scores, candidate.index)
        snapshots.append(FrontSnapshot(candidate.iteration, candidate.metric_calls, tuple(front)))
    return tuple(snapshots)


def before_after(view: RunView) -> dict[str, PairedComparison]:
    """The baseline against the best candidate on each split the final evaluation scored ("validation",
    and "test" when there is a test set): the paired test, the bootstrap interval and one sentence
    (:func:`core.statistics.compare_paired`). Empty before the run's final evaluation."""
    from core.statistics import compare_paired

    evaluation = view.final_evaluation
    if evaluation is None:
        return {}
    pairs = {"validation": (evaluation.baseline, evaluation.best)}
    if evaluation.test_baseline is not None and evaluation.test_best is not None:
        pairs["test"] = (evaluation.test_baseline, evaluation.test_best)
    label = {"f1": "F1", "contains": "contains-answer score"}.get(view.scorer.kind, "score")
    return {
        split: compare_paired(before.scores, after.scores, split=split, seed=view.seed, score_label=label)
        for split, (before, after) in pairs.items()
        if before.scores
    }


def overfitting_warning(view: RunView) -> str | None:
    """One sentence when the validation gain is more than the test interval allows, else None."""
    from core.statistics import overfitting_flag

    comparisons = before_after(view)
    if "test" not in comparisons:
        return None
    return overfitting_flag(comparisons["validation"], comparisons["test"])


def front_members_at(view: RunView, iteration: int) -> tuple[int, ...]:
    """The Pareto front after every validation of iterations <= ``iteration`` (empty before any)."""
    members: tuple[int, ...] = ()
    for snapshot in view.fronts:
        if snapshot.iteration > iteration:
            break
        members = snapshot.members
    return members


def _validated_by(view: RunView, iteration: int | None) -> int:
    """How many candidates (a prefix of ``view.candidates``) were validated by ``iteration``."""
    if iteration is None:
        return len(view.candidates)
    return sum(1 for c in view.candidates if c.iteration <= iteration)


def kept_because(view: RunView, candidate: int, iteration: int | None = None) -> list[int]:
    """Validation *positions* where ``candidate`` has the top score among the candidates validated by
    ``iteration`` (all of them when None): why GEPA keeps it on the front.

    Ties count, as in GEPA's per-example best sets, so an example everyone fails (top score 0) is
    listed for everyone. Empty when the candidate was not validated by then.
    """
    count = _validated_by(view, iteration)
    if candidate < 0 or candidate >= count:
        return []
    pool = view.val_scores[:count]
    top = pool.max(axis=0)
    return np.flatnonzero(pool[candidate] == top).tolist()


def best_so_far(view: RunView, x: XAxis, *, upto_iteration: int | None = None) -> list[tuple[int, float, int]]:
    """(x, best validation aggregate so far, best candidate) steps, from the baseline to the latest x.

    A point is added where the best changes, plus one at the latest iteration or metric-call count so
    the line reaches the end of the run (or of ``upto_iteration``, when given). Plot it as a step line
    (``line_shape="hv"``). Empty before the baseline is scored.
    """
    limit = view.last_iteration if upto_iteration is None else upto_iteration
    points: list[tuple[int, float, int]] = []
    for candidate in view.candidates:
        if candidate.iteration > limit:
            break
        at = candidate.iteration if x == "iteration" else candidate.metric_calls
        if not points or candidate.aggregate > points[-1][1]:
            points.append((at, candidate.aggregate, candidate.index))
    if not points:
        return points
    if x == "iteration":
        end = limit
    elif upto_iteration is None:
        end = view.metric_calls
    else:
        end = max((p.metric_calls for p in view.proposals if p.iteration <= limit), default=points[-1][0])
    if end > points[-1][0]:
        points.append((end, points[-1][1], points[-1][2]))
    return points


def run_curve(view: RunView) -> list[tuple[int, float]]:
    """(metric calls, best validation score so far) points, to overlay several runs on one chart."""
    return [(at, score) for at, score, _ in best_so_far(view, "metric_calls")]


def example_inputs_text(example: ExampleRecord) -> str:
    """The inputs as one readable string: the bare value for one variable, ``name: value`` lines for several."""
    if len(example.inputs) == 1:
        return next(iter(example.inputs.values()))
    return "\n".join(f"{name}: {value}" for name, value in example.inputs.items())


def _candidate_or_error(view: RunView, index: int) -> Candidate:
    if not 0 <= index < len(view.candidates):
        raise ValueError(
            f"Candidate {index} has not been scored on the validation set; "
            f"choose one of 0 to {len(view.candidates) - 1}."
        )
    return view.candidates[index]


Split = Literal["validation", "test"]


def test_scores_of(view: RunView, index: int) -> Evaluation | None:
    """Candidate ``index``'s scores and outputs on the test set: from scoring every candidate on it, or
    for the baseline and the best from the final evaluation; None when it was not scored there."""
    if index in view.on_test:
        scored = view.on_test[index]
        return Evaluation(outputs=scored.outputs, scores=scored.scores, aggregate=scored.aggregate)
    evaluation = view.final_evaluation
    if evaluation is None:
        return None
    if index == 0 and evaluation.test_baseline is not None:
        return evaluation.test_baseline
    if index == evaluation.best_candidate and evaluation.test_best is not None:
        return evaluation.test_best
    return None


def compare_examples(
    view: RunView, candidate: int | None = None, against: int = 0, *, splits: Collection[Split] = ("validation",)
) -> pd.DataFrame:
    """One row per example of the chosen ``splits`` comparing ``candidate`` (the best one when None) with
    ``against``; test rows only where both were scored on the test set (:func:`test_scores_of`).

    Columns: see :data:`COMPARE_COLUMNS`; ``position`` indexes the split's examples. A score of exactly
    1.0 counts as correct; ``category`` is "fixed" (against wrong, candidate right), "regressed" (the
    reverse), "still failing" or "always right". ``failed`` is True when either output is a failed
    model call. Validation outputs are those of the candidates' validation. Empty (with the columns)
    before the baseline is scored.

    Raises:
        ValueError: either candidate has not been validated.
    """
    import pandas as pd

    if not view.candidates:
        return pd.DataFrame({name: [] for name in COMPARE_COLUMNS})
    chosen = _candidate_or_error(view, view.best_candidate if candidate is None else candidate)
    base = _candidate_or_error(view, against)
    parts = []
    if "validation" in splits:
        parts.append(_compare_rows("validation", view.val_examples, base, chosen, view.scorer))
    if "test" in splits and view.test_examples:
        base_test, chosen_test = test_scores_of(view, base.index), test_scores_of(view, chosen.index)
        if base_test is not None and chosen_test is not None:
            parts.append(_compare_rows("test", view.test_examples, base_test, chosen_test, view.scorer))
    if not parts:
        return pd.DataFrame({name: [] for name in COMPARE_COLUMNS})
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _compare_rows(
    split: str, examples: Sequence[ExampleRecord], base: Any, chosen: Any, scorer: ScorerSpec
) -> pd.DataFrame:
    """The comparison rows of one split (``base``/``chosen`` carry scores and outputs aligned with it)."""
    import pandas as pd

    normalized = scorer.normalized
    against_correct = [s == 1.0 for s in base.scores]
    candidate_correct = [s == 1.0 for s in chosen.scores]
    return pd.DataFrame(
        {
            "split": [split] * len(examples),
            "position": range(len(examples)),
            "example_id": [e.id for e in examples],
            "row": [e.row for e in examples],
            "inputs": [example_inputs_text(e) for e in examples],
            "expected": [e.expected for e in examples],
            "against_output": list(base.outputs),
            "candidate_output": list(chosen.outputs),
            "against_score": list(base.scores),
            "candidate_score": list(chosen.scores),
            "against_correct": against_correct,
            "candidate_correct": candidate_correct,
            "category": [_category(a, c) for a, c in zip(against_correct, candidate_correct, strict=True)],
            "expected_normalized": [normalized(e.expected) for e in examples],
            "against_normalized": [normalized(o) for o in base.outputs],
            "candidate_normalized": [normalized(o) for o in chosen.outputs],
            "failed": [
                is_failed_prediction(a) or is_failed_prediction(c)
                for a, c in zip(base.outputs, chosen.outputs, strict=True)
            ],
        },
        columns=list(COMPARE_COLUMNS),
    )


def _category(against_correct: bool, candidate_correct: bool) -> Category:
    if candidate_correct:
        return "always right" if against_correct else "fixed"
    return "regressed" if against_correct else "still failing"


def category_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many rows of a :func:`compare_examples` frame fall in each category; all four keys, in order."""
    counts = frame["category"].value_counts()
    return {name: int(counts.get(name, 0)) for name in CATEGORIES}


def filter_examples(frame: pd.DataFrame, categories: Collection[str] | None, text: str = "") -> pd.DataFrame:
    """Rows of a :func:`compare_examples` frame in ``categories`` (None: any; empty: none) whose inputs,
    expected answer or either output contain ``text`` (case-insensitive, plain text, not a pattern)."""
    keep = np.ones(len(frame), dtype=bool)
    if categories is not None:
        keep &= frame["category"].isin(list(categories)).to_numpy()
    needle = text.strip()
    if needle:
        found = np.zeros(len(frame), dtype=bool)
        for column in ("inputs", "expected", "against_output", "candidate_output"):
            found |= frame[column].astype(str).str.contains(needle, case=False, regex=False).to_numpy()
        keep &= found
    return frame[keep]


def score_matrix(view: RunView, order: MatrixOrder = "difficulty") -> tuple[np.ndarray, list[int], list[int]]:
    """(scores, example positions in column order, candidate indices in row order).

    ``scores`` is a fresh candidates x examples array. With ``order="difficulty"`` the columns go from
    the example the fewest candidates solve (score 1.0) to the one most solve; ties by mean score,
    then position. With ``order="index"`` columns follow validation positions.
    """
    matrix = view.val_scores
    positions = np.arange(matrix.shape[1])
    if order == "difficulty" and matrix.size:
        solved = (matrix >= 1.0).sum(axis=0)
        positions = np.lexsort((positions, matrix.mean(axis=0), solved))
    return matrix[:, positions].copy(), positions.tolist(), [c.index for c in view.candidates]


def lineage(view: RunView) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """((parent, child) edges, depth per candidate). The baseline has depth 0; a child is one deeper
    than its deepest parent. A candidate with two parents (a merge) has two edges."""
    edges: list[tuple[int, int]] = []
    depth: dict[int, int] = {}
    for candidate in view.candidates:
        edges.extend((parent, candidate.index) for parent in candidate.parents)
        known = [depth[p] for p in candidate.parents if p in depth]
        depth[candidate.index] = 1 + max(known) if known else 0
    return edges, depth


@dataclass(frozen=True)
class _Checkpoints:
    """The state GEPA's stop conditions saw before each iteration of the recorded run.

    Index j is the check before iteration j + 1; the last one is the check after the last recorded
    iteration.
    """

    metric_calls: np.ndarray
    best_score: np.ndarray
    best_candidate: np.ndarray
    without_improvement: np.ndarray


def _checkpoints(view: RunView) -> _Checkpoints:
    n = view.iterations
    calls = [view.baseline_metric_calls] * (n + 1)
    for proposal in view.proposals:
        calls[proposal.iteration] = proposal.metric_calls
    found: list[tuple[float, int]] = [(-np.inf, 0)] * (n + 1)
    for candidate in view.candidates:
        j = candidate.iteration
        if j > n:  # validated in an iteration that has not finished yet (a live run)
            continue
        if candidate.aggregate > found[j][0]:
            found[j] = (candidate.aggregate, candidate.index)
    without = [0] * (n + 1)
    for j in range(1, n + 1):
        # A missing iteration event (should not happen) keeps the budget seen before it.
        calls[j] = max(calls[j], calls[j - 1])
        if found[j][0] > found[j - 1][0]:
            without[j] = 0
        else:
            found[j] = found[j - 1]
            # gepa.utils.NoImprovementStopper: its first check (j = 0) always improves on -inf.
            without[j] = without[j - 1] + 1
    return _Checkpoints(
        metric_calls=np.array(calls, dtype=np.int64),
        best_score=np.array([score for score, _ in found]),
        best_candidate=np.array([index for _, index in found], dtype=np.int64),
        without_improvement=np.array(without, dtype=np.int64),
    )


def what_if_grid(view: RunView, steps: int = 8) -> tuple[list[int], list[int | None]]:
    """The budgets and patiences the Results page replays by default: from a budget that allows one
    proposal up to what the run used, and patience off, 1, 2, 3, 4, 6, 8."""
    full = max(view.budget, view.metric_calls)
    start = min(full, len(view.val_examples) + 2 * view.minibatch_size)
    budgets = sorted({max(1, round(start + (full - start) * i / (steps - 1))) for i in range(steps)})
    return budgets, [None, 1, 2, 3, 4, 6, 8]


def what_if(view: RunView, budgets: Sequence[int], patiences: Sequence[int | None]) -> pd.DataFrame:
    """Replay the recorded run under other budgets and patiences, without calling any model.

    Like GEPA, the stop conditions are checked before each iteration: the budget stops once the metric
    calls used so far reach it; patience stops after that many checks in a row without a new best
    validation aggregate (``gepa.utils.NoImprovementStopper``); when both hold, patience is named,
    as in the run's own stopper order. Patience None or 0 is off.

    One row per (budget, patience), budgets outer, in the given order; columns
    :data:`WHAT_IF_COLUMNS`. ``stopped_by`` is "run end" when neither condition fires within the
    recording: ``beyond_recording`` is then True and the row shows what was recorded, unless the
    recorded run stopped for a perfect score (which would stop the replay at the same point too).
    """
    import pandas as pd

    checks = _checkpoints(view)
    last = len(checks.metric_calls) - 1
    replay_ends_recording = view.stopped_by == "perfect"
    rows: dict[str, list[Any]] = {name: [] for name in WHAT_IF_COLUMNS}
    patience_stops = {}
    for patience in patiences:
        if patience and patience not in patience_stops:
            hits = np.flatnonzero(checks.without_improvement >= patience)
            patience_stops[patience] = int(hits[0]) if hits.size else last + 1
    for budget in budgets:
        budget_stop = int(np.searchsorted(checks.metric_calls, budget, side="left"))
        for patience in patiences:
            patience_stop = patience_stops.get(patience, last + 1) if patience else last + 1
            stop = min(budget_stop, patience_stop)
            if stop <= last:
                stopped_by: StopReason = "patience" if patience_stop == stop else "budget"
                beyond = False
            else:
                stop, stopped_by, beyond = last, "run end", not replay_ends_recording
            rows["budget"].append(int(budget))
            rows["patience"].append(int(patience) if patience else None)
            rows["stopped_by"].append(stopped_by)
            rows["iterations"].append(stop)
            rows["metric_calls"].append(int(checks.metric_calls[stop]))
            rows["best_score"].append(float(checks.best_score[stop]) if view.candidates else float("nan"))
            rows["best_candidate"].append(int(checks.best_candidate[stop]))
            rows["beyond_recording"].append(beyond)
    frame = pd.DataFrame(rows, columns=list(WHAT_IF_COLUMNS))
    frame["patience"] = pd.Series(rows["patience"], dtype=object)
    return frame


# Marks that read without colour (and without an emoji font): before → after.
CATEGORY_MARKS = {
    "fixed": "✗→✓ fixed",
    "regressed": "✓→✗ regressed",
    "still failing": "✗→✗ still failing",
    "always right": "✓→✓ always right",
}


def candidate_label(view: RunView, index: int) -> str:
    """How a candidate is named in pickers: index, role, score, iteration."""
    candidate = view.candidates[index]
    tags = ["baseline"] if index == 0 else []
    if index == view.best_candidate:
        tags.append("best")
    suffix = f" ({', '.join(tags)})" if tags else ""
    return f"Candidate {index}{suffix} · {candidate.aggregate:.1%} · iteration {candidate.iteration}"


def example_table(frame: pd.DataFrame, *, with_scores: bool = False) -> pd.DataFrame:
    """The columns of :func:`compare_examples` a person reads, with ✓/✗ marks and category marks.

    ``with_scores`` adds each side's score (for scorers whose scores are not just 0 or 1).
    """
    columns = ["row", "category", "expected", "against_output", "against_correct"]
    columns += ["against_score"] if with_scores else []
    columns += ["candidate_output", "candidate_correct"]
    columns += ["candidate_score"] if with_scores else []
    table = frame[columns].copy()
    table["category"] = table["category"].map(CATEGORY_MARKS)
    for column in ("against_correct", "candidate_correct"):
        table[column] = table[column].map({True: "✓", False: "✗"})
    return table.rename(
        columns={
            "against_output": "before",
            "against_correct": "✓ before",
            "against_score": "score before",
            "candidate_output": "after",
            "candidate_correct": "✓ after",
            "candidate_score": "score after",
        }
    )


def mark_meaning(scorer: ScorerSpec) -> str:
    """What ✓ means for a run's scorer, said next to every table of marks."""
    if scorer.kind == "exact_match":
        return f"✓ = exact match after normalising ({', '.join(scorer.normalization) or 'none'})"
    return f"✓ = full score (1.0) on {scorer.label}; ✗ = anything less. The scores are in their own columns."
