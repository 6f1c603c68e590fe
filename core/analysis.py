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
    EstimateRecord,
    Evaluation,
    Event,
    EventLogError,
    ExampleRecord,
    FinalEvaluation,
    JudgeRef,
    ModelsRef,
    PromptRef,
    Proposal,
    Registered,
    RunFinished,
    RunStarted,
    ScoredOnTest,
    Stage,
    UsageUpdate,
)
from core.pareto import update_front
from core.scorers import ScorerSpec, is_failed_prediction

if TYPE_CHECKING:
    import pandas as pd

    from core.pricing import Cost
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
    usage_updates: tuple[UsageUpdate, ...] = ()

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

    # -- what it spent --------------------------------------------------------------------------
    @property
    def usage(self) -> UsageUpdate | None:
        """Tokens, seconds and calls per model role so far (None for runs recorded before metering)."""
        return self.usage_updates[-1] if self.usage_updates else None

    @property
    def cost(self) -> Cost | None:
        """What the usage so far cost at the run's prices (``total`` None: a price is unknown)."""
        from core.accounting import cost_from

        return cost_from(self.usage, self.started.prices)

    def cost_series(self) -> list[tuple[int, float | None]]:
        """(metric calls, dollars spent by then) at each usage update: the cost-over-budget line."""
        from core.accounting import cost_from

        points = []
        for update in self.usage_updates:
            cost = cost_from(update, self.started.prices)
            points.append((update.metric_calls, cost.total if cost else None))
        return points

    @property
    def estimate(self) -> EstimateRecord | None:
        return self.started.estimate

    @property
    def judge(self) -> JudgeRef | None:
        return self.started.judge

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

    @property
    def participant(self) -> str | None:
        """Who of a class ran it, if anyone (:mod:`core.participants`)."""
        return self.started.config.get("participant") or None

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
    usage: list[UsageUpdate] = []
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
        elif isinstance(event, UsageUpdate):
            usage.append(event)
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
        usage_updates=tuple(usage),
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


STOP_REASONS = {
    "budget": "the budget of metric calls was used up",
    "patience": "several iterations in a row brought no improvement (patience)",
    "perfect": "a candidate scored 100% on the validation set",
    "cancelled": "you pressed Stop",
    "error": "of an error",
}
OUTCOME_LABELS = {
    "accepted": "accepted",
    "rejected": "rejected",
    "skipped": "skipped",
    "reflection_failed": "reflection failed",
    "invalid_proposal": "discarded",
}


def how_it_ended(view: RunView) -> str:
    """How the run ended, in a few words: "finished because the budget ...", "stopped with Stop",
    "failed", "still running"."""
    if view.finished is None:
        return "still running"
    if view.outcome == "cancelled":
        return "stopped with Stop before its end"
    if view.outcome == "failed":
        return "failed"
    return f"finished because {STOP_REASONS.get(view.stopped_by or '', 'it ended')}"


def outcome_counts(view: RunView) -> dict[str, int]:
    """How many iterations had each outcome (:data:`OUTCOME_LABELS`' keys, in that order)."""
    counts = dict.fromkeys(OUTCOME_LABELS, 0)
    for proposal in view.proposals:
        counts[proposal.outcome] = counts.get(proposal.outcome, 0) + 1
    return counts


def proposals_with(view: RunView, outcomes: Collection[str] | None = None) -> list[Proposal]:
    """The run's iterations whose outcome is one of ``outcomes`` (None: all), in iteration order."""
    return [p for p in view.proposals if outcomes is None or p.outcome in outcomes]


def only_baseline_line(view: RunView) -> str | None:
    """One line for an ended run that found no candidate besides the baseline (there is nothing to
    compare), saying what its iterations came to; None when there is another candidate."""
    if view.finished is None or len(view.candidates) != 1:
        return None
    if not view.proposals:
        when = "Stopped before any proposal" if view.outcome == "cancelled" else "No proposal was made"
        baseline = f"only the baseline was scored ({view.candidates[0].aggregate:.1%})"
        return f"{when}: {baseline}, so there is nothing to compare or register."
    counts = outcome_counts(view)
    made = ", ".join(f"{count} {OUTCOME_LABELS[outcome]}" for outcome, count in counts.items() if count)
    return (
        f"The search found no candidate besides the baseline ({view.candidates[0].aggregate:.1%}): of "
        f"{len(view.proposals)} iterations, {made}. There is nothing to compare or register."
    )


def progress_line(view: RunView) -> str:
    """Where a running optimization is, in one line: its stage after the search, else the iteration,
    the budget used and the best score so far against the baseline's."""
    if view.stage is not None:
        return view.stage.message
    calls = f"{view.metric_calls} of {view.budget} metric calls"
    if not view.candidates:
        return f"scoring the baseline, {calls}"
    best, initial = view.final_score or 0.0, view.initial_score or 0.0
    return f"iteration {view.last_iteration}, {calls}, best {best:.1%} (baseline {initial:.1%})"


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


@dataclass(frozen=True)
class JudgeAgreement:
    """The judge against exact match on one candidate's final-evaluation outputs: the 2x2 table, the
    lesson in a sentence, and the examples where they disagree (position, inputs, expected, output,
    the judge's verdict and rationale)."""

    candidate: str
    agreement: Any
    lesson: str
    disagreements: tuple[dict[str, Any], ...]


def judge_agreement(view: RunView) -> list[JudgeAgreement]:
    """For a run scored by the LLM judge, where it and exact match (with the run's normalisation)
    agree on the baseline's and the best candidate's validation outputs; empty otherwise."""
    from core.judges import agreement, agreement_lesson

    evaluation = view.final_evaluation
    if view.scorer.kind != "llm_judge" or evaluation is None:
        return []
    exact = ScorerSpec("exact_match", view.scorer.normalization)
    expected = [e.expected for e in view.val_examples]
    found = []
    for label, scored in (
        ("baseline", evaluation.baseline),
        (f"best (candidate {evaluation.best_candidate})", evaluation.best),
    ):
        exact_scores = [exact.score(o, e) for o, e in zip(scored.outputs, expected, strict=True)]
        table = agreement(list(scored.scores), exact_scores)
        rows = tuple(
            {
                "row": view.val_examples[i].row,
                "input": example_inputs_text(view.val_examples[i]),
                "expected": expected[i],
                "output": scored.outputs[i],
                "judge": "right" if scored.scores[i] >= 0.5 else "wrong",
                "exact match": "right" if exact_scores[i] >= 0.5 else "wrong",
                "judge's reason": scored.rationales[i] if i < len(scored.rationales) else "",
            }
            for i in table.disagreements
        )
        found.append(JudgeAgreement(label, table, agreement_lesson(table, scored.outputs, expected), rows))
    return found


def pace(view: RunView) -> tuple[float | None, float | None]:
    """(metric calls per second so far, seconds left to spend the budget at that pace) of a live run;
    None while there is too little to tell."""
    if not view.usage_updates or view.metric_calls <= 0:
        return None, None
    elapsed = view.usage_updates[-1].t - view.started.t
    if elapsed <= 0:
        return None, None
    rate = view.metric_calls / elapsed
    return rate, max(0.0, (view.budget - view.metric_calls) / rate) if rate else None


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


def best_before(view: RunView, iteration: int) -> int | None:
    """The best candidate when ``iteration`` began: the highest validation aggregate among those
    validated in earlier iterations, the earliest on ties (as :attr:`RunView.best_candidate`); None
    before the baseline is scored."""
    pool = [c for c in view.candidates if c.iteration < iteration]
    return max(pool, key=lambda c: (c.aggregate, -c.index)).index if pool else None


# --------------------------------------------------------------------------------------------------
# What the search showed: the facts a lesson on GEPA points at (benchmarks/demo_search.py judges the
# demo run by them).
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrontAfter:
    """The Pareto front after one iteration: its members, and how many different score vectors they
    hold (candidates with identical scores all stay on the front but show nothing new)."""

    iteration: int
    members: tuple[int, ...]
    distinct: int


@dataclass(frozen=True)
class ParentChoice:
    """An accepted proposal's parent as it was when the iteration began: on the front, and the best?"""

    iteration: int
    parent: int
    child: int
    parent_on_front: bool
    parent_was_best: bool


@dataclass(frozen=True)
class Branching:
    """Parents with two or more children; children proposed from a front member that was not the best
    candidate then; ``met`` when one parent shows both (GEPA explored off the best, and it paid)."""

    parents_with_two_children: tuple[int, ...]
    children_of_non_best_front_members: tuple[int, ...]
    met: bool


@dataclass(frozen=True)
class SearchFacts:
    """One run's search in numbers (:func:`search_facts`). ``outcomes`` counts iterations by outcome;
    ``front2_run`` is the longest run of consecutive iterations after which the front holds two or
    more candidates (``front2_distinct_run``: two or more different score vectors); ``test_score`` is
    the best candidate's test score (None without a test set)."""

    iterations: int
    outcomes: Mapping[str, int]
    candidates: int
    rejections: int
    max_front: int
    front2_run: int
    front2_distinct_run: int
    branching: Branching
    baseline_score: float | None
    best_score: float | None
    test_score: float | None
    metric_calls: int
    stopped_by: str | None


def rejections(view: RunView) -> int:
    """How many proposals were rejected (not better than their parent on the minibatch)."""
    return sum(1 for p in view.proposals if p.outcome == "rejected")


def fronts_after_iterations(view: RunView) -> list[FrontAfter]:
    """The front after each finished iteration, in order."""
    rows = []
    for proposal in view.proposals:
        members = front_members_at(view, proposal.iteration)
        distinct = len({view.candidates[m].scores for m in members})
        rows.append(FrontAfter(proposal.iteration, members, distinct))
    return rows


def longest_front_run(view: RunView, *, min_size: int = 2, distinct: bool = False) -> int:
    """The longest run of consecutive iterations after each of which the front holds at least
    ``min_size`` candidates (with ``distinct``: at least ``min_size`` different score vectors)."""
    longest = current = 0
    for row in fronts_after_iterations(view):
        size = row.distinct if distinct else len(row.members)
        current = current + 1 if size >= min_size else 0
        longest = max(longest, current)
    return longest


def parent_choices(view: RunView) -> list[ParentChoice]:
    """Each accepted proposal's parent, and whether it was on the front and the best when the iteration began."""
    rows = []
    for proposal in view.proposals:
        if proposal.outcome != "accepted" or proposal.candidate is None or proposal.parent is None:
            continue
        front = front_members_at(view, proposal.iteration - 1)
        rows.append(
            ParentChoice(
                iteration=proposal.iteration,
                parent=proposal.parent,
                child=proposal.candidate,
                parent_on_front=proposal.parent in front,
                parent_was_best=proposal.parent == best_before(view, proposal.iteration),
            )
        )
    return rows


def children(view: RunView) -> dict[int, list[int]]:
    """Parent -> its validated children, in the order they were found (a merge counts for both parents)."""
    tree: dict[int, list[int]] = {}
    for candidate in view.candidates:
        for parent in candidate.parents:
            tree.setdefault(parent, []).append(candidate.index)
    return tree


def branching(view: RunView) -> Branching:
    """Where the lineage branches, and whether a branch grew from a front member that was not the best."""
    branched = tuple(sorted(p for p, kids in children(view).items() if len(kids) >= 2))
    off_best = [c for c in parent_choices(view) if c.parent_on_front and not c.parent_was_best]
    return Branching(
        parents_with_two_children=branched,
        children_of_non_best_front_members=tuple(c.child for c in off_best),
        met=any(c.parent in branched for c in off_best),
    )


def best_test_score(view: RunView) -> float | None:
    """The best candidate's test score: its ``test_scores`` event, else the final evaluation's; None
    without a test set or before the run's end."""
    if view.best_candidate in view.on_test:
        return view.on_test[view.best_candidate].aggregate
    evaluation = view.final_evaluation
    return evaluation.test_best.aggregate if evaluation and evaluation.test_best else None


def search_facts(view: RunView) -> SearchFacts:
    """What the run's search showed: rejections, fronts, branching and scores (see :class:`SearchFacts`)."""
    outcomes: dict[str, int] = {}
    for proposal in view.proposals:
        outcomes[proposal.outcome] = outcomes.get(proposal.outcome, 0) + 1
    return SearchFacts(
        iterations=len(view.proposals),
        outcomes=outcomes,
        candidates=len(view.candidates),
        rejections=rejections(view),
        max_front=view.max_front_size,
        front2_run=longest_front_run(view),
        front2_distinct_run=longest_front_run(view, distinct=True),
        branching=branching(view),
        baseline_score=view.initial_score,
        best_score=view.final_score,
        test_score=best_test_score(view),
        metric_calls=view.metric_calls,
        stopped_by=view.stopped_by,
    )


@dataclass(frozen=True)
class FrontReason:
    """Why one member is on the front: validation *positions* where it alone has the top score
    (``alone``), and where it shares the top score with other candidates (``tied``); both only where
    that top score is above 0."""

    candidate: int
    alone: tuple[int, ...]
    tied: tuple[int, ...]


@dataclass(frozen=True)
class FrontExplanation:
    """Why each member of a front is kept, and the positions no candidate scores above 0 on
    (``unsolved``): GEPA's per-example best sets keep ties there for every candidate, so they explain
    nothing and are counted on their own."""

    members: tuple[FrontReason, ...]
    unsolved: tuple[int, ...]


def explain_front(view: RunView, iteration: int | None = None) -> FrontExplanation:
    """The front after ``iteration`` (the latest when None), member by member, among the candidates
    validated by then: see :class:`FrontExplanation`. Empty before the baseline is scored."""
    count = _validated_by(view, iteration)
    members = front_members_at(view, view.last_iteration if iteration is None else iteration)
    if not count:
        return FrontExplanation((), ())
    pool = view.val_scores[:count]
    top = pool.max(axis=0)
    at_top = pool == top
    solved = top > 0
    alone = solved & (at_top.sum(axis=0) == 1)
    reasons = tuple(
        FrontReason(
            member,
            tuple(np.flatnonzero(at_top[member] & alone).tolist()),
            tuple(np.flatnonzero(at_top[member] & solved & ~alone).tolist()),
        )
        for member in members
        if member < count
    )
    return FrontExplanation(reasons, tuple(np.flatnonzero(~solved).tolist()))


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
    return inputs_text(example.inputs)


def inputs_text(inputs: Mapping[str, str]) -> str:
    """Template inputs as one readable string (see :func:`example_inputs_text`)."""
    if len(inputs) == 1:
        return next(iter(inputs.values()))
    return "\n".join(f"{name}: {value}" for name, value in inputs.items())


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
    """How a candidate is named in pickers: index, role and score, short enough for half a 1024 px
    screen (the iteration that found it is in the Candidates tab)."""
    candidate = view.candidates[index]
    tags = ["baseline"] if index == 0 else []
    if index == view.best_candidate:
        tags.append("best")
    suffix = f" ({', '.join(tags)})" if tags else ""
    return f"Candidate {index}{suffix} · {candidate.aggregate:.1%}"


def example_table(frame: pd.DataFrame, *, with_scores: bool = False, input_label: str = "input") -> pd.DataFrame:
    """The columns of :func:`compare_examples` a person reads, in reading order and narrow enough for a
    1024 px screen: the row, its input (named ``input_label``), the expected answer, then each side's
    output with its mark right after it (the columns :data:`EXAMPLE_MARK_COLUMNS`). A mark is ✓ for a
    full score and ✗ for anything less; ``with_scores`` (for scorers whose scores are not just 0 or 1)
    writes a partial score itself instead, "0.67". The two marks say the category (✗ then ✓: fixed)."""
    table = frame[["row", "inputs", "expected", "against_output", "against_score"]].copy()
    table["against_score"] = [_mark(s, with_scores) for s in frame["against_score"]]
    table["candidate_output"] = frame["candidate_output"]
    table["candidate_score"] = [_mark(s, with_scores) for s in frame["candidate_score"]]
    return table.rename(
        columns={
            "inputs": input_label,
            "against_output": "before",
            "against_score": EXAMPLE_MARK_COLUMNS[0],
            "candidate_output": "after",
            "candidate_score": EXAMPLE_MARK_COLUMNS[1],
        }
    )


EXAMPLE_MARK_COLUMNS = ("✓ before", "✓ after")


def _mark(score: float, with_scores: bool) -> str:
    if score == 1.0:
        return "✓"
    return f"{score:.2f}" if with_scores and score > 0 else "✗"


def input_label(view: RunView) -> str:
    """What the per-example tables call a row's input: the template's one variable ("question"),
    or "inputs" for several."""
    fields = view.started.dataset.fields
    return fields[0] if len(fields) == 1 else "inputs"


def mark_meaning(scorer: ScorerSpec) -> str:
    """What ✓ means for a run's scorer, said next to every table of marks."""
    if scorer.kind == "exact_match":
        return f"✓ = exact match after normalising ({', '.join(scorer.normalization) or 'none'})"
    return f"✓ = full score (1.0) on {scorer.label}, ✗ = 0, and a partial score is written as it is (0.67)."


def example_rationales(view: RunView, index: int, split: Split = "validation") -> tuple[str, ...]:
    """The judge's reason for each of candidate ``index``'s verdicts on ``split``, aligned with that
    split's examples; empty when the run has no judge or the candidate was not scored there.

    Validation reasons are the search's own; test reasons come from scoring every candidate on the
    test set, or for the baseline and the best from the final evaluation."""
    if not 0 <= index < len(view.candidates):
        return ()
    if split == "validation":
        return tuple(view.candidates[index].rationales)
    if index in view.on_test:
        return tuple(view.on_test[index].rationales)
    scored = test_scores_of(view, index)
    return tuple(scored.rationales) if scored is not None else ()


VALIDATION_TEST_COLUMNS = ("candidate", "iteration", "validation", "test", "gap", "chance", "best")


def validation_vs_test(view: RunView) -> pd.DataFrame | None:
    """One row per candidate with its validation and test scores, when every candidate was scored on
    the test set; None otherwise (only the baseline and the best were, or there is no test set).

    ``gap`` is validation - test; ``chance`` is the gap two independent samples of these sizes would
    exceed about one time in twenty for this candidate (twice the standard error of the difference of
    the two means, from the per-example scores); ``best`` marks the validation best, the run's pick.
    """
    import pandas as pd

    if not view.candidates or not view.test_examples or any(c.index not in view.on_test for c in view.candidates):
        return None
    rows = []
    for c in view.candidates:
        val, test = np.asarray(c.scores, dtype=float), np.asarray(view.on_test[c.index].scores, dtype=float)
        chance = 2 * float(np.sqrt(val.var() / max(1, val.size) + test.var() / max(1, test.size)))
        test_score = view.on_test[c.index].aggregate
        rows.append(
            (
                c.index,
                c.iteration,
                c.aggregate,
                test_score,
                c.aggregate - test_score,
                chance,
                c.index == view.best_candidate,
            )
        )
    return pd.DataFrame(rows, columns=list(VALIDATION_TEST_COLUMNS))


def divergence_line(table: pd.DataFrame) -> str:
    """Where validation and test part ways, in one sentence, from a :func:`validation_vs_test` table:
    whether the validation best is also the test best, and the candidate whose validation score runs
    furthest above its test score, called overfitting only when that gap is beyond ``chance``."""
    chosen = table[table["best"]].iloc[0]
    on_test = table.loc[table["test"].idxmax()]  # idxmax: the earliest on ties
    if on_test["test"] <= chosen["test"]:
        said = (
            f"The validation best, candidate {int(chosen['candidate'])}, is also the best on test "
            f"({chosen['test']:.1%})"
        )
    else:
        said = (
            f"Validation picks candidate {int(chosen['candidate'])} ({chosen['test']:.1%} on test), but "
            f"candidate {int(on_test['candidate'])} does better on test ({on_test['test']:.1%})"
        )
    widest = table.loc[table["gap"].idxmax()]
    if widest["gap"] <= 0:
        return f"{said}; no candidate scores higher on validation than on test: no sign of overfitting."
    where = (
        f"they diverge most at candidate {int(widest['candidate'])}: validation {widest['validation']:.1%}, "
        f"test {widest['test']:.1%} ({widest['gap'] * 100:+.1f} points"
    )
    if widest["gap"] > widest["chance"]:
        return (
            f"{said}; {where}, more than the {widest['chance'] * 100:.0f} points chance gives at these sizes): "
            "the search fitted the validation examples (overfitting)."
        )
    return (
        f"{said}; {where}, within the {widest['chance'] * 100:.0f} points chance gives at these sizes): "
        "no clear sign of overfitting."
    )


def what_if_on_test(view: RunView, table: pd.DataFrame) -> pd.DataFrame | None:
    """A :func:`what_if` table with ``test_score``: the test score of the candidate each stop would
    have ended with, beside its validation ``best_score``; None unless every candidate was scored on
    the test set."""
    if validation_vs_test(view) is None:
        return None
    scored = table.copy()
    scored["test_score"] = [view.on_test[int(i)].aggregate for i in scored["best_candidate"]]
    return scored


def examples_export(view: RunView) -> pd.DataFrame:
    """The per-example download: the best candidate against the baseline on every split they were both
    scored on (validation, then test), one row per example with its ``split`` (see
    :func:`compare_examples`)."""
    return compare_examples(view, candidate=view.best_candidate, against=0, splits=("validation", "test"))


@dataclass(frozen=True)
class CurveBand:
    """Best-so-far curves of several runs (a group of seeds) summed up at each metric-call count where
    any of them changes: the mean, lowest and highest best validation score, over ``runs[i]`` runs
    (those that had a score by then; a run that ended keeps its last best)."""

    metric_calls: tuple[int, ...]
    mean: tuple[float, ...]
    lowest: tuple[float, ...]
    highest: tuple[float, ...]
    runs: tuple[int, ...]


def curve_band(curves: Sequence[Sequence[tuple[int, float]]]) -> CurveBand:
    """The :class:`CurveBand` of :func:`run_curve` curves (step functions: a score holds until the
    next point). Empty curves are ignored."""
    curves = [list(c) for c in curves if c]
    xs = sorted({at for curve in curves for at, _ in curve})
    mean, lowest, highest, runs = [], [], [], []
    for x in xs:
        values = [max(score for at, score in curve if at <= x) for curve in curves if curve[0][0] <= x]
        mean.append(float(np.mean(values)))
        lowest.append(min(values))
        highest.append(max(values))
        runs.append(len(values))
    return CurveBand(tuple(xs), tuple(mean), tuple(lowest), tuple(highest), tuple(runs))
