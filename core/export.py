"""A recorded run as one JSON document, for notebooks and other tools.

``python -m core export RUN_ID --out FILE`` writes it, and so does the Results page's Export tab.
:func:`export_run` builds a :class:`RunExport` from a :class:`~core.analysis.RunView`;
:meth:`RunExport.to_dict` is the document (plain JSON types) and :meth:`RunExport.from_dict` reads
one back. The schema is versioned (``schema_version``, :data:`EXPORT_SCHEMA_VERSION`) and described
in the README; every key below is always present (``null`` when it does not apply):

* ``schema_version``, ``run_id``, ``config`` (the run's settings, never a key), ``summary`` (the CLI's
  JSON summary of the run; ``null`` while it runs);
* ``examples``: ``id``, ``split`` (``train``, ``validation`` or ``test``; an example a run both trains
  and validates on is ``validation``), ``inputs`` (variable -> text), ``expected``;
* ``candidates``: ``index`` (0 is the baseline), ``parents`` (a list; two for a merge), ``iteration``
  (the one that found it, 0 for the baseline), ``template``, ``validation_scores`` (example id ->
  score; JSON keys are strings), ``validation_score`` (their mean), ``test_scores`` (example id ->
  score when the candidate was scored on the test set: every candidate with ``test_scores`` events,
  otherwise the baseline and the best from the final evaluation; else ``null``);
* ``proposals`` (one per iteration): ``iteration``, ``parent``, ``minibatch`` (example ids),
  ``parent_scores`` and ``child_scores`` (aligned with ``minibatch``; ``child_scores`` empty when
  nothing was scored), ``outcome`` (``accepted``, ``rejected``, ``skipped``, ``reflection_failed`` or
  ``invalid_proposal``), ``reason``, ``candidate`` (its index when accepted), ``template`` (the
  proposed prompt), ``metric_calls`` (used by the end of the iteration) and ``reflection``
  (``null`` when the reflection model was not asked): ``examples`` (the reflective dataset it was
  shown: ``example``, ``inputs``, ``output``, ``expected``, ``score``, ``feedback``; empty for runs
  recorded before event schema 3), ``prompt`` (the instruction text GEPA sent, at most 50,000
  characters), ``prompt_chars`` (its full length; 0 when unknown) and ``reply``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.analysis import RunView
from core.events import Outcome, Proposal, ReflectiveExample

EXPORT_SCHEMA_VERSION = 1

Split = Literal["train", "validation", "test"]


@dataclass(frozen=True)
class ExportedExample:
    id: int
    split: Split
    inputs: Mapping[str, str]
    expected: str


@dataclass(frozen=True)
class ExportedCandidate:
    index: int
    parents: tuple[int, ...]
    iteration: int
    template: str
    validation_scores: Mapping[int, float]
    validation_score: float
    test_scores: Mapping[int, float] | None = None


@dataclass(frozen=True)
class ExportedReflection:
    examples: tuple[ReflectiveExample, ...]
    prompt: str | None
    prompt_chars: int
    reply: str | None


@dataclass(frozen=True)
class ExportedProposal:
    iteration: int
    parent: int | None
    minibatch: tuple[int, ...]
    parent_scores: tuple[float, ...]
    child_scores: tuple[float, ...]
    outcome: Outcome
    reason: str
    candidate: int | None
    template: str | None
    metric_calls: int
    reflection: ExportedReflection | None


@dataclass(frozen=True)
class RunExport:
    """One run as the export document (see the module docstring for every key)."""

    run_id: str | None
    config: Mapping[str, Any]
    summary: Mapping[str, Any] | None
    examples: tuple[ExportedExample, ...]
    candidates: tuple[ExportedCandidate, ...]
    proposals: tuple[ExportedProposal, ...]
    schema_version: int = EXPORT_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The document, in plain JSON types (score maps keyed by the example id as a string)."""
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "config": dict(self.config),
            "summary": dict(self.summary) if self.summary is not None else None,
            "examples": [
                {"id": e.id, "split": e.split, "inputs": dict(e.inputs), "expected": e.expected} for e in self.examples
            ],
            "candidates": [_candidate_dict(c) for c in self.candidates],
            "proposals": [_proposal_dict(p) for p in self.proposals],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunExport:
        """Read a document written by :meth:`to_dict` (or its JSON).

        Raises:
            ValueError: the document is of another schema version, or a key is missing.
        """
        version = data.get("schema_version")
        if version != EXPORT_SCHEMA_VERSION:
            raise ValueError(
                f"This is a run export of schema version {version}; this GEPA Explorer reads version "
                f"{EXPORT_SCHEMA_VERSION}."
            )
        try:
            return cls(
                run_id=data["run_id"],
                config=dict(data["config"]),
                summary=dict(data["summary"]) if data["summary"] is not None else None,
                examples=tuple(
                    ExportedExample(int(e["id"]), e["split"], dict(e["inputs"]), e["expected"])
                    for e in data["examples"]
                ),
                candidates=tuple(_candidate_of(c) for c in data["candidates"]),
                proposals=tuple(_proposal_of(p) for p in data["proposals"]),
                schema_version=version,
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"This run export is incomplete or malformed ({error!r}).") from None


def _scores_dict(scores: Mapping[int, float] | None) -> dict[str, float] | None:
    return None if scores is None else {str(k): v for k, v in scores.items()}


def _scores_of(data: Mapping[str, Any] | None) -> dict[int, float] | None:
    return None if data is None else {int(k): float(v) for k, v in data.items()}


def _candidate_dict(candidate: ExportedCandidate) -> dict[str, Any]:
    return {
        "index": candidate.index,
        "parents": list(candidate.parents),
        "iteration": candidate.iteration,
        "template": candidate.template,
        "validation_scores": _scores_dict(candidate.validation_scores),
        "validation_score": candidate.validation_score,
        "test_scores": _scores_dict(candidate.test_scores),
    }


def _candidate_of(data: Mapping[str, Any]) -> ExportedCandidate:
    return ExportedCandidate(
        index=int(data["index"]),
        parents=tuple(int(p) for p in data["parents"]),
        iteration=int(data["iteration"]),
        template=data["template"],
        validation_scores=_scores_of(data["validation_scores"]) or {},
        validation_score=float(data["validation_score"]),
        test_scores=_scores_of(data["test_scores"]),
    )


def _example_dict(example: ReflectiveExample) -> dict[str, Any]:
    return {
        "example": example.example,
        "inputs": dict(example.inputs),
        "output": example.output,
        "expected": example.expected,
        "score": example.score,
        "feedback": example.feedback,
    }


def _proposal_dict(proposal: ExportedProposal) -> dict[str, Any]:
    reflection = proposal.reflection
    return {
        "iteration": proposal.iteration,
        "parent": proposal.parent,
        "minibatch": list(proposal.minibatch),
        "parent_scores": list(proposal.parent_scores),
        "child_scores": list(proposal.child_scores),
        "outcome": proposal.outcome,
        "reason": proposal.reason,
        "candidate": proposal.candidate,
        "template": proposal.template,
        "metric_calls": proposal.metric_calls,
        "reflection": None
        if reflection is None
        else {
            "examples": [_example_dict(e) for e in reflection.examples],
            "prompt": reflection.prompt,
            "prompt_chars": reflection.prompt_chars,
            "reply": reflection.reply,
        },
    }


def _proposal_of(data: Mapping[str, Any]) -> ExportedProposal:
    shown = data["reflection"]
    return ExportedProposal(
        iteration=int(data["iteration"]),
        parent=data["parent"],
        minibatch=tuple(int(i) for i in data["minibatch"]),
        parent_scores=tuple(float(s) for s in data["parent_scores"]),
        child_scores=tuple(float(s) for s in data["child_scores"]),
        outcome=data["outcome"],
        reason=data["reason"],
        candidate=data["candidate"],
        template=data["template"],
        metric_calls=int(data["metric_calls"]),
        reflection=None
        if shown is None
        else ExportedReflection(
            examples=tuple(
                ReflectiveExample(
                    example=e["example"],
                    inputs=dict(e["inputs"]),
                    output=e["output"],
                    expected=e["expected"],
                    score=float(e["score"]),
                    feedback=e["feedback"],
                )
                for e in shown["examples"]
            ),
            prompt=shown["prompt"],
            prompt_chars=int(shown["prompt_chars"]),
            reply=shown["reply"],
        ),
    )


# --------------------------------------------------------------------------------------------------
# From a run
# --------------------------------------------------------------------------------------------------


def export_run(view: RunView, *, run_id: str | None = None) -> RunExport:
    """The export document of a run, complete or still going (then ``summary`` is None). ``run_id`` is
    the MLflow run it was found as (default: the id the run recorded for itself)."""
    from core.summary import RunSummary

    return RunExport(
        run_id=run_id or view.run_id,
        config=dict(view.started.config),
        summary=RunSummary.of(view).cli_dict() if view.finished is not None else None,
        examples=_examples(view),
        candidates=tuple(_candidate(view, c.index) for c in view.candidates),
        proposals=tuple(_proposal(p) for p in view.proposals),
    )


def _examples(view: RunView) -> tuple[ExportedExample, ...]:
    started = view.started
    split: dict[int, Split] = {}
    for ids, name in ((started.train_ids, "train"), (started.val_ids, "validation"), (started.test_ids, "test")):
        split.update(dict.fromkeys(ids, name))
    return tuple(ExportedExample(e.id, split[e.id], dict(e.inputs), e.expected) for e in view.examples if e.id in split)


def _candidate(view: RunView, index: int) -> ExportedCandidate:
    candidate = view.candidates[index]
    val_ids = [e.id for e in view.val_examples]
    return ExportedCandidate(
        index=candidate.index,
        parents=tuple(candidate.parents),
        iteration=candidate.iteration,
        template=candidate.template,
        validation_scores=dict(zip(val_ids, candidate.scores, strict=False)),
        validation_score=candidate.aggregate,
        test_scores=_test_scores(view, index),
    )


def _test_scores(view: RunView, index: int) -> dict[int, float] | None:
    test_ids = [e.id for e in view.test_examples]
    if not test_ids:
        return None
    if index in view.on_test:
        return dict(zip(test_ids, view.on_test[index].scores, strict=False))
    evaluation = view.final_evaluation
    if evaluation is None:
        return None
    if index == 0 and evaluation.test_baseline is not None:
        return dict(zip(test_ids, evaluation.test_baseline.scores, strict=False))
    if index == evaluation.best_candidate and evaluation.test_best is not None:
        return dict(zip(test_ids, evaluation.test_best.scores, strict=False))
    return None


def _proposal(proposal: Proposal) -> ExportedProposal:
    asked = bool(proposal.reflection_prompt or proposal.reflection or proposal.reflective_dataset)
    return ExportedProposal(
        iteration=proposal.iteration,
        parent=proposal.parent,
        minibatch=tuple(proposal.minibatch),
        parent_scores=tuple(proposal.scores_before),
        child_scores=tuple(proposal.scores_after),
        outcome=proposal.outcome,
        reason=proposal.reason,
        candidate=proposal.candidate,
        template=proposal.template,
        metric_calls=proposal.metric_calls,
        reflection=ExportedReflection(
            examples=tuple(proposal.reflective_dataset),
            prompt=proposal.reflection_prompt,
            prompt_chars=proposal.reflection_prompt_chars,
            reply=proposal.reflection,
        )
        if asked
        else None,
    )
