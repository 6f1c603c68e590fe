"""Scoring a template on examples outside GEPA's search, and the traced final evaluation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.datasets import Example
from core.models import ModelError, TaskModel
from core.scorers import FAILED_PREDICTION_PREFIX, ScorerSpec
from core.templates import render


def safe_complete(task_model: TaskModel, prompt_text: str) -> str:
    """The model's answer, or a failed-prediction marker (scored 0 and counted as a failure)."""
    try:
        return task_model.complete(prompt_text)
    except ModelError as error:
        return f"{FAILED_PREDICTION_PREFIX}: {error}"


def evaluate_template(
    template: str,
    examples: Sequence[Example],
    task_model: TaskModel,
    scorer: ScorerSpec,
    *,
    concurrency: int = 8,
) -> dict[str, Any]:
    """Score ``template`` on ``examples``: ``outputs``, ``scores`` and ``aggregate``, in example order,
    plus the wall-clock span of the calls (``started_ns``, ``ended_ns``)."""

    def one(example: Example) -> tuple[str, float, int, int]:
        started = time.time_ns()
        output = safe_complete(task_model, render(template, example.inputs))
        return output, scorer.score(output, example.expected), started, time.time_ns()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        calls = list(pool.map(one, examples))
    scores = [score for _, score, _, _ in calls]
    return {
        "outputs": [output for output, _, _, _ in calls],
        "scores": scores,
        "aggregate": sum(scores) / len(scores) if scores else 0.0,
        "started_ns": min((c[2] for c in calls), default=time.time_ns()),
        "ended_ns": max((c[3] for c in calls), default=time.time_ns()),
    }


def final_evaluation(
    *,
    baseline_template: str,
    best_template: str,
    examples: Sequence[Example],
    task_model: TaskModel,
    scorer: ScorerSpec,
    concurrency: int,
    tag_prefix: str,
) -> dict[str, Any]:
    """Baseline and best scored once more on the validation set, and recorded as one MLflow trace.

    The trace has a span per example holding its inputs, the expected answer, both responses, both
    scores and the normalised forms, so the before/after comparison can be audited in MLflow's UI.
    One span per example, in one trace: MLflow writes each span to the store on its own (about
    25 ms each against SQLite here), so a trace per model call would cost seconds.
    Tracing must be enabled and an MLflow run active.
    """
    base = evaluate_template(baseline_template, examples, task_model, scorer, concurrency=concurrency)
    best = evaluate_template(best_template, examples, task_model, scorer, concurrency=concurrency)
    _record_trace(baseline_template, best_template, examples, base, best, task_model, scorer, tag_prefix)
    for part in (base, best):
        del part["started_ns"], part["ended_ns"]
    return {"baseline": base, "best": best}


def _record_trace(
    baseline_template: str,
    best_template: str,
    examples: Sequence[Example],
    base: dict[str, Any],
    best: dict[str, Any],
    task_model: TaskModel,
    scorer: ScorerSpec,
    tag_prefix: str,
) -> None:
    import mlflow

    root = mlflow.start_span_no_context(
        name="final evaluation: baseline vs optimized",
        span_type="CHAIN",
        inputs={
            "baseline_template": baseline_template,
            "optimized_template": best_template,
            "task_model": task_model.config.task_model,
            "scorer": scorer.label,
            "examples": len(examples),
        },
        tags={tag_prefix + "role": "final_evaluation"},
        start_time_ns=base["started_ns"],
    )
    for i, example in enumerate(examples):
        span = mlflow.start_span_no_context(
            name=f"row {example.row}",
            span_type="CHAIN",
            parent_span=root,
            inputs=dict(example.inputs),
            attributes={
                "expected_response": example.expected,
                f"baseline_{scorer.kind}": base["scores"][i],
                f"optimized_{scorer.kind}": best["scores"][i],
                "normalized_expected": scorer.normalized(example.expected),
                "normalized_baseline": scorer.normalized(base["outputs"][i]),
                "normalized_optimized": scorer.normalized(best["outputs"][i]),
            },
            start_time_ns=base["started_ns"],
        )
        span.end(
            outputs={"baseline": base["outputs"][i], "optimized": best["outputs"][i]},
            end_time_ns=best["ended_ns"],
        )
    root.end(
        outputs={f"baseline_{scorer.kind}": base["aggregate"], f"optimized_{scorer.kind}": best["aggregate"]},
        end_time_ns=best["ended_ns"],
    )
