"""Scoring a template on examples outside GEPA's search, and the traced final evaluation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import tags
from core.datasets import Example
from core.events import Evaluation, FinalEvaluation
from core.models import ModelError, TaskModel
from core.scorers import FAILED_PREDICTION_PREFIX, ScorerSpec, Scoring
from core.templates import render

if TYPE_CHECKING:
    from core.analysis import RunView


def safe_complete(task_model: TaskModel, prompt_text: str) -> str:
    """The model's answer, or a failed-prediction marker (scored 0 and counted as a failure)."""
    try:
        return task_model.complete(prompt_text)
    except ModelError as error:
        return f"{FAILED_PREDICTION_PREFIX}: {error}"


@dataclass(frozen=True)
class _Timed:
    evaluation: Evaluation
    started_ns: int
    ended_ns: int


def _evaluate(
    template: str, examples: Sequence[Example], task_model: TaskModel, scoring: Scoring, concurrency: int
) -> _Timed:
    def one(example: Example) -> tuple[str, float, str, int, int]:
        started = time.time_ns()
        output = safe_complete(task_model, render(template, example.inputs))
        score, rationale = scoring(example.inputs, output, example.expected)
        return output, score, rationale, started, time.time_ns()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        calls = list(pool.map(one, examples))
    scores = tuple(c[1] for c in calls)
    return _Timed(
        Evaluation(
            outputs=tuple(c[0] for c in calls),
            scores=scores,
            aggregate=sum(scores) / len(scores) if scores else 0.0,
            rationales=tuple(c[2] for c in calls),
        ),
        started_ns=min((c[3] for c in calls), default=time.time_ns()),
        ended_ns=max((c[4] for c in calls), default=time.time_ns()),
    )


def final_evaluation(
    view: RunView,
    validation: Sequence[Example],
    test: Sequence[Example],
    task_model: TaskModel,
    scoring: Scoring,
    *,
    concurrency: int,
) -> FinalEvaluation:
    """The run's baseline and best candidate scored once more on the validation examples and on the test
    examples (none: no test set), and recorded as one MLflow trace.

    The trace has a span per example holding its split, inputs, the expected answer, both responses,
    both scores and the normalised forms, so the before/after comparison can be audited in MLflow's UI.
    One span per example, in one trace: MLflow writes each span to the store on its own (about
    25 ms each against SQLite here), so a trace per model call would cost seconds.
    Tracing must be enabled and an MLflow run active.
    """
    best = view.best
    if best is None:
        raise ValueError("The run has no scored candidate to evaluate.")
    scorer = view.scorer
    pairs = {
        split: (
            _evaluate(view.baseline.template, examples, task_model, scoring, concurrency),
            _evaluate(best.template, examples, task_model, scoring, concurrency),
        )
        for split, examples in (("validation", validation), ("test", test))
        if examples
    }
    _record_trace(
        view.baseline.template, best.template, {"validation": validation, "test": test}, pairs, task_model, scorer
    )
    base, top = pairs["validation"]
    test_base, test_top = pairs.get("test", (None, None))
    return FinalEvaluation(
        baseline=base.evaluation,
        best=top.evaluation,
        best_candidate=best.index,
        test_baseline=test_base.evaluation if test_base else None,
        test_best=test_top.evaluation if test_top else None,
    )


def _record_trace(
    baseline_template: str,
    best_template: str,
    examples: dict[str, Sequence[Example]],
    pairs: dict[str, tuple[_Timed, _Timed]],
    task_model: TaskModel,
    scorer: ScorerSpec,
) -> None:
    import mlflow

    started = min(base.started_ns for base, _ in pairs.values())
    ended = max(best.ended_ns for _, best in pairs.values())
    root = mlflow.start_span_no_context(
        name="final evaluation: baseline vs optimized",
        span_type="CHAIN",
        inputs={
            "baseline_template": baseline_template,
            "optimized_template": best_template,
            "task_model": task_model.config.task_model,
            "scorer": scorer.label,
            **{f"{split}_examples": len(examples[split]) for split in pairs},
        },
        tags={tags.ROLE: "final_evaluation"},
        start_time_ns=started,
    )
    for split, (base, best) in pairs.items():
        before, after = base.evaluation, best.evaluation
        for i, example in enumerate(examples[split]):
            span = mlflow.start_span_no_context(
                name=f"{split} row {example.row}",
                span_type="CHAIN",
                parent_span=root,
                inputs=dict(example.inputs),
                attributes={
                    "split": split,
                    "expected_response": example.expected,
                    f"baseline_{scorer.kind}": before.scores[i],
                    f"optimized_{scorer.kind}": after.scores[i],
                    "normalized_expected": scorer.normalized(example.expected),
                    "normalized_baseline": scorer.normalized(before.outputs[i]),
                    "normalized_optimized": scorer.normalized(after.outputs[i]),
                    **(
                        {"baseline_rationale": before.rationales[i], "optimized_rationale": after.rationales[i]}
                        if scorer.needs_model
                        else {}
                    ),
                },
                start_time_ns=base.started_ns,
            )
            span.end(outputs={"baseline": before.outputs[i], "optimized": after.outputs[i]}, end_time_ns=best.ended_ns)
    root.end(
        outputs={
            f"{split}_{role}_{scorer.kind}": evaluation.evaluation.aggregate
            for split, (base, best) in pairs.items()
            for role, evaluation in (("baseline", base), ("optimized", best))
        },
        end_time_ns=ended,
    )


def score_on_test(
    template: str, test: Sequence[Example], task_model: TaskModel, scoring: Scoring, *, concurrency: int
) -> Evaluation:
    """One candidate scored on the test set (untraced: the final evaluation is the audited one)."""
    return _evaluate(template, test, task_model, scoring, concurrency).evaluation
