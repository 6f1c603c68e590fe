"""Replay: a recorded run, one GEPA iteration at a time, in the order GEPA did it.

:func:`replay_step` tells one iteration as five parts (:data:`STEPS`):

* **select**: the Pareto front when the iteration began, the parent GEPA drew from it and why (the
  validation examples it leads on, and its share of GEPA's draws, :func:`selection_weights`);
* **evaluate**: the training minibatch GEPA drew, each example's input, the parent's output and score;
* **reflect**: what the reflection model was shown (the reflective dataset GEPA built and the
  instruction text around it) and its full reply;
* **improve**: the new prompt as a word diff against its parent, and its minibatch scores;
* **decision**: accepted and validated (with the front's change), or rejected, skipped or discarded,
  and why.

Pure functions of a :class:`~core.analysis.RunView`: nothing calls a model, MLflow or Streamlit.
Logs written before event schema 3 replay with what they have; :attr:`ReplayStep.missing` says,
in sentences for the page, what they lack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.analysis import RunView, best_before, example_inputs_text, front_members_at, kept_because
from core.events import REFLECTION_PROMPT_CAP, Outcome, Proposal, ReflectiveExample
from core.templates import DiffSegment, word_diff

StepName = Literal["select", "evaluate", "reflect", "improve", "decision"]
STEPS: tuple[StepName, ...] = ("select", "evaluate", "reflect", "improve", "decision")
STEP_TITLES: dict[StepName, str] = {
    "select": "Select",
    "evaluate": "Evaluate",
    "reflect": "Reflect",
    "improve": "Improve",
    "decision": "Decision",
}
RECORDED_SHOWN_SINCE = 3
"""The event schema version from which the reflective dataset is in the log."""


@dataclass(frozen=True)
class FrontMember:
    """A candidate on the front when an iteration began. ``leads_on`` are the validation positions where
    it has the top score among the candidates found by then (ties included), ``alone_on`` those where
    no other front member has it (what it alone brings); ``draws`` its weight in GEPA's Pareto selection
    (0: GEPA drops it, since every example it leads on is also led by another kept candidate)."""

    candidate: int
    score: float
    leads_on: tuple[int, ...]
    alone_on: tuple[int, ...]
    draws: int


@dataclass(frozen=True)
class Selection:
    """How the parent was chosen. ``strategy`` is the run's ``pareto`` or ``current_best``; ``best`` the
    best candidate then; ``why`` one sentence for the page."""

    strategy: str
    front: tuple[FrontMember, ...]
    parent: int | None
    best: int | None
    why: str

    @property
    def total_draws(self) -> int:
        return sum(member.draws for member in self.front)

    @property
    def parent_member(self) -> FrontMember | None:
        return next((m for m in self.front if m.candidate == self.parent), None)


@dataclass(frozen=True)
class MinibatchExample:
    """One example of the iteration's minibatch with the parent's and the new prompt's results (None:
    not scored)."""

    example_id: int
    row: int
    inputs: str
    expected: str
    parent_output: str | None
    parent_score: float | None
    new_output: str | None
    new_score: float | None


@dataclass(frozen=True)
class ReflectionShown:
    """What the reflection model was shown and what it replied. ``asked`` is False when GEPA did not
    reflect this iteration (a skipped one). ``examples`` is the reflective dataset (empty in logs
    before schema 3); ``prompt`` the instruction text GEPA sent, ``prompt_chars`` its full length
    (0 when unknown) and ``prompt_cut`` whether the log kept only its first
    :data:`~core.events.REFLECTION_PROMPT_CAP` characters."""

    asked: bool
    examples: tuple[ReflectiveExample, ...]
    prompt: str | None
    prompt_chars: int
    prompt_cut: bool
    reply: str | None


@dataclass(frozen=True)
class Improvement:
    """The new prompt against its parent's: ``diff`` is empty when nothing was proposed. ``parent_total``
    and ``new_total`` are the summed minibatch scores (``new_total`` None when not scored)."""

    parent_template: str
    template: str | None
    diff: tuple[DiffSegment, ...]
    parent_total: float
    new_total: float | None
    size: int


@dataclass(frozen=True)
class Decision:
    """What became of the proposal. ``front_before``/``front_after`` are the front when the iteration
    began and when it ended; ``validation_score`` is the new candidate's (accepted only), beside its
    parent's; ``summary`` says it in one sentence."""

    outcome: Outcome
    reason: str
    candidate: int | None
    validation_score: float | None
    parent_validation_score: float | None
    front_before: tuple[int, ...]
    front_after: tuple[int, ...]
    summary: str

    @property
    def joined(self) -> tuple[int, ...]:
        return tuple(c for c in self.front_after if c not in self.front_before)

    @property
    def left(self) -> tuple[int, ...]:
        return tuple(c for c in self.front_before if c not in self.front_after)


@dataclass(frozen=True)
class ReplayStep:
    """One iteration told in GEPA's order (see the module docstring). ``position`` counts finished
    iterations from 1 to ``count``; ``missing`` lists what this run's log lacks for the step."""

    position: int
    count: int
    proposal: Proposal
    select: Selection
    evaluate: tuple[MinibatchExample, ...]
    reflect: ReflectionShown
    improve: Improvement
    decision: Decision
    missing: tuple[str, ...]

    @property
    def iteration(self) -> int:
        return self.proposal.iteration

    @property
    def heading(self) -> str:
        return f"Iteration {self.iteration} of {self.count}"


def replay_count(view: RunView) -> int:
    """How many iterations can be replayed (the finished ones)."""
    return len(view.proposals)


def replay_step(view: RunView, position: int) -> ReplayStep:
    """Finished iteration number ``position`` (1-based) of the run, told step by step.

    Raises:
        ValueError: ``position`` is not between 1 and :func:`replay_count`.
    """
    count = replay_count(view)
    if not 1 <= position <= count:
        raise ValueError(f"Iteration {position} cannot be replayed: choose one of 1 to {count}.")
    proposal = view.proposals[position - 1]
    return ReplayStep(
        position=position,
        count=count,
        proposal=proposal,
        select=_selection(view, proposal),
        evaluate=_minibatch(view, proposal),
        reflect=_reflection(proposal),
        improve=_improvement(view, proposal),
        decision=_decision(view, proposal),
        missing=missing_records(proposal),
    )


def first_position_showing(view: RunView, step: StepName) -> int:
    """The first iteration (a position, 1 if none fits) where ``step`` has something to show: a choice
    between two or more front members for select, a reflection for reflect, a new prompt for
    improve, a rejection for decision; the first iteration for evaluate."""
    for position, proposal in enumerate(view.proposals, start=1):
        if step == "select" and len(front_members_at(view, proposal.iteration - 1)) >= 2:
            return position
        if step == "reflect" and (proposal.reflection or proposal.reflection_prompt):
            return position
        if step == "improve" and proposal.template:
            return position
        if step == "decision" and proposal.outcome == "rejected":
            return position
    return 1


# --------------------------------------------------------------------------------------------------
# Select
# --------------------------------------------------------------------------------------------------


def selection_weights(view: RunView, iteration: int) -> dict[int, int]:
    """Each candidate's draws in GEPA's Pareto selection when ``iteration`` began, as
    ``gepa.gepa_utils.select_program_candidate_from_pareto_front`` computes them: per validation
    example, the candidates with its top score (ties included); candidates are dropped, lowest
    validation score first, while every example one leads on is also led by another candidate still
    kept; a kept candidate's weight is the number of examples it leads on. GEPA draws the parent at
    random with these weights. Candidates not listed have no draws. Empty before the baseline.
    """
    count = sum(1 for c in view.candidates if c.iteration < iteration)
    if count == 0:
        return {}
    pool = view.val_scores[:count]
    top = pool.max(axis=0)
    # Sets built in candidate order and copied, as GEPA's state keeps them, so that ties in score
    # are broken in the same (set iteration) order as GEPA's.
    fronts = [set([int(c) for c in range(count) if pool[c, j] == top[j]]) for j in range(pool.shape[1])]
    fronts = [set(front) for front in fronts]
    frequency: dict[int, int] = {}
    for front in fronts:
        for candidate in front:
            frequency[candidate] = frequency.get(candidate, 0) + 1
    scores = {c: view.candidates[c].aggregate for c in frequency}
    programs = sorted(frequency, key=lambda c: scores[c])
    dropped: set[int] = set()
    changed = True
    while changed:
        changed = False
        for candidate in programs:
            if candidate in dropped:
                continue
            others = set(programs) - {candidate} - dropped
            if all(front & others for front in fronts if candidate in front):
                dropped.add(candidate)
                changed = True
                break
    return {c: sum(1 for front in fronts if c in front) for c in programs if c not in dropped}


def _selection(view: RunView, proposal: Proposal) -> Selection:
    before = proposal.iteration - 1
    weights = selection_weights(view, proposal.iteration)
    members = front_members_at(view, before)
    leads = {member: kept_because(view, member, before) for member in members}
    front = tuple(
        FrontMember(
            candidate=member,
            score=view.candidates[member].aggregate,
            leads_on=tuple(leads[member]),
            alone_on=tuple(p for p in leads[member] if not any(p in leads[o] for o in members if o != member)),
            draws=weights.get(member, 0),
        )
        for member in members
    )
    strategy = str(view.started.config.get("selection") or "pareto")
    best = best_before(view, proposal.iteration)
    return Selection(strategy, front, proposal.parent, best, _why(view, strategy, front, proposal.parent, best))


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _why(view: RunView, strategy: str, front: tuple[FrontMember, ...], parent: int | None, best: int | None) -> str:
    if parent is None:
        return "The recording does not say which candidate GEPA chose as the parent."
    score = _pct(view.candidates[parent].aggregate) if parent < len(view.candidates) else "?"
    if strategy == "current_best":
        return (
            f"With current-best selection GEPA always continues from the best candidate so far: "
            f"candidate {parent} ({score} on validation)."
        )
    member = next((m for m in front if m.candidate == parent), None)
    total = sum(m.draws for m in front)
    width = len(view.val_examples)
    if member is not None and len(front) == 1:
        return (
            f"The Pareto front holds one candidate, {parent} ({score}): it has the top score on every validation "
            "example so far, so GEPA draws it."
        )
    if member is None:
        return (
            f"GEPA chose candidate {parent} ({score}); by this run's validation scores it was not on the "
            "front then, so the recording and the front computed here disagree."
        )
    sentence = (
        f"GEPA draws the parent at random from the Pareto front, each member weighted by the validation "
        f"examples it leads on. Candidate {parent} ({score}) leads on {len(member.leads_on)} of {width}"
    )
    if member.alone_on:
        sentence += f" ({len(member.alone_on)} of them alone)"
    if total:
        sentence += f", so it had {member.draws} of {total} draws"
    best_score = view.candidates[best].aggregate if best is not None else None
    if best is not None and best != parent and best_score is not None:
        if best_score > view.candidates[parent].aggregate:
            sentence += (
                f". It is not the best candidate (candidate {best} is, {_pct(best_score)}): a specialist got its turn"
            )
        else:
            sentence += f"; it ties with candidate {best} for the best score"
    elif len(front) > 1:
        sentence += "; it is also the best candidate so far"
    return sentence + "."


# --------------------------------------------------------------------------------------------------
# Evaluate, reflect, improve, decide
# --------------------------------------------------------------------------------------------------


def _at(values: tuple, index: int):
    return values[index] if index < len(values) else None


def _minibatch(view: RunView, proposal: Proposal) -> tuple[MinibatchExample, ...]:
    by_id = {example.id: example for example in view.examples}
    rows = []
    for index, example_id in enumerate(proposal.minibatch):
        example = by_id.get(example_id)
        rows.append(
            MinibatchExample(
                example_id=example_id,
                row=example.row if example else 0,
                inputs=example_inputs_text(example) if example else f"example {example_id}",
                expected=example.expected if example else "",
                parent_output=_at(proposal.outputs_before, index),
                parent_score=_at(proposal.scores_before, index),
                new_output=_at(proposal.outputs_after, index),
                new_score=_at(proposal.scores_after, index),
            )
        )
    return tuple(rows)


def _reflection(proposal: Proposal) -> ReflectionShown:
    asked = bool(proposal.reflection_prompt or proposal.reflection or proposal.reflective_dataset)
    asked = asked or proposal.outcome == "reflection_failed"
    return ReflectionShown(
        asked=asked,
        examples=proposal.reflective_dataset,
        prompt=proposal.reflection_prompt,
        prompt_chars=proposal.reflection_prompt_chars or len(proposal.reflection_prompt or ""),
        prompt_cut=proposal.reflection_prompt_cut,
        reply=proposal.reflection,
    )


def _template(view: RunView, candidate: int | None) -> str:
    if candidate is not None and 0 <= candidate < len(view.candidates):
        return view.candidates[candidate].template
    return view.baseline.template


def _improvement(view: RunView, proposal: Proposal) -> Improvement:
    parent_template = _template(view, proposal.parent)
    template = proposal.template
    return Improvement(
        parent_template=parent_template,
        template=template,
        diff=tuple(word_diff(parent_template, template)) if template else (),
        parent_total=sum(proposal.scores_before),
        new_total=sum(proposal.scores_after) if proposal.scores_after else None,
        size=len(proposal.minibatch),
    )


_OUTCOME_WORDS: dict[str, str] = {
    "accepted": "Accepted",
    "rejected": "Rejected",
    "skipped": "Skipped",
    "reflection_failed": "No proposal: the reflection model failed",
    "invalid_proposal": "Discarded",
}


def _decision(view: RunView, proposal: Proposal) -> Decision:
    before = front_members_at(view, proposal.iteration - 1)
    after = front_members_at(view, proposal.iteration)
    candidate = proposal.candidate
    validated = candidate is not None and 0 <= candidate < len(view.candidates)
    score = view.candidates[candidate].aggregate if validated else None
    parent_score = None
    if proposal.parent is not None and 0 <= proposal.parent < len(view.candidates):
        parent_score = view.candidates[proposal.parent].aggregate
    summary = f"{_OUTCOME_WORDS.get(proposal.outcome, proposal.outcome)}: {proposal.reason or 'no reason recorded'}."
    if validated:
        summary += f" Candidate {candidate} scored {_pct(score)} on the {len(view.val_examples)} validation examples"
        summary += f" (its parent: {_pct(parent_score)})." if parent_score is not None else "."
        summary += " " + _front_change(before, after, candidate)
    elif proposal.outcome == "accepted":
        summary += " Its validation is not in the recording yet."
    else:
        summary += " The front is unchanged."
    return Decision(
        outcome=proposal.outcome,
        reason=proposal.reason,
        candidate=candidate,
        validation_score=score,
        parent_validation_score=parent_score,
        front_before=before,
        front_after=after,
        summary=summary,
    )


def _names(candidates: tuple[int, ...]) -> str:
    return ", ".join(str(c) for c in candidates) or "none"


def _front_change(before: tuple[int, ...], after: tuple[int, ...], newcomer: int) -> str:
    if before == after:
        return f"The front stays {{{_names(before)}}}."
    left = tuple(c for c in before if c not in after)
    sentence = f"The front goes from {{{_names(before)}}} to {{{_names(after)}}}"
    if newcomer in after and newcomer not in before:
        sentence += f": {newcomer} joined"
    if left:
        them = "it" if len(left) == 1 else "them"
        sentence += (
            f"; {_names(left)} left, since candidate {newcomer} matches or beats {them} on every example and "
            f"beats {them} on at least one"
        )
    return sentence + "."


def missing_records(proposal: Proposal) -> tuple[str, ...]:
    """Sentences saying what the log lacks about what the reflection model was shown for ``proposal``:
    the reflective dataset in logs before schema 3, an instruction text never recorded or one cut at
    :data:`~core.events.REFLECTION_PROMPT_CAP`. Empty when nothing is missing."""
    notes = []
    asked = bool(proposal.reflection_prompt or proposal.reflection)
    if asked and proposal.schema_version < RECORDED_SHOWN_SINCE:
        where = (
            " The instruction text below contains the same examples, as GEPA wrote them."
            if proposal.reflection_prompt
            else ""
        )
        notes.append(
            f"This run's log is event schema {proposal.schema_version}, from before GEPA Explorer recorded the "
            f"reflective dataset (schema {RECORDED_SHOWN_SINCE}), so the examples with their feedback are not "
            f"listed on their own.{where}"
        )
    if asked and not proposal.reflection_prompt:
        notes.append("The instruction text GEPA sent to the reflection model was not recorded.")
    if proposal.reflection_prompt_cut:
        notes.append(
            f"The instruction text is cut at {REFLECTION_PROMPT_CAP:,} of its {proposal.reflection_prompt_chars:,} "
            "characters, as the event log keeps it."
        )
    return tuple(notes)
