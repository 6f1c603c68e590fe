"""Results page cost on a big run: 300 candidates x 500 validation examples, 450 iterations.

Builds a synthetic event log in the documented schema (0/1 scores, children that copy their parent's
answers with a few fixes and regressions, a few merges, rejected, skipped and invalid proposals),
serialises it to JSON lines, then times everything the Results page does with it: parsing, building
the RunView, every figure and every table. Prints each step's median seconds and, last,
``total_seconds=X`` (the median of the repetitions' totals).

    python benchmarks/results_page.py [--repeats 3] [--profile]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from core.analysis import (
    RunView,
    build_run_view,
    category_counts,
    compare_examples,
    filter_examples,
    run_curve,
    what_if,
)
from core.charts import (
    candidates_figure,
    compare_runs_figure,
    front_timeline_figure,
    lineage_figure,
    live_scores_figure,
    score_matrix_figure,
    what_if_figure,
)
from core.events import SCHEMA_VERSION, parse_events

CANDIDATES = 300
VAL_EXAMPLES = 500
OTHER_ITERATIONS = 150
MINIBATCH = 3
PATIENCES = [None, 1, 2, 3, 5, 8, 13]
WORDS = ("river", "mountain", "capital", "seven", "blue", "ancient", "quiet", "harbour", "northern", "eleven")


def synthetic_events(seed: int = 0) -> list[dict[str, Any]]:
    """A finished run's events: CANDIDATES validated candidates, CANDIDATES - 1 accepted proposals
    plus OTHER_ITERATIONS rejected, skipped or invalid ones, interleaved."""
    rng = random.Random(seed)
    examples = [
        {
            "id": i,
            "row": i + 1,
            "inputs": {"question": f"Question {i}: which {rng.choice(WORDS)} is it?"},
            "expected": f"answer {i}",
        }
        for i in range(VAL_EXAMPLES)
    ]
    difficulty = [rng.random() for _ in examples]
    events: list[dict[str, Any]] = []

    def emit(type_: str, **fields: Any) -> None:
        events.append(
            {"v": SCHEMA_VERSION, "seq": len(events), "t": 1_800_000_000.0 + len(events), "type": type_, **fields}
        )

    def outputs_for(scores: list[float]) -> list[str]:
        return [
            example["expected"] if score else f"maybe {rng.choice(WORDS)} {rng.choice(WORDS)}"
            for example, score in zip(examples, scores, strict=True)
        ]

    budget = VAL_EXAMPLES * CANDIDATES + 2 * MINIBATCH * (CANDIDATES + OTHER_ITERATIONS)
    emit(
        "run_started",
        config={"budget": budget, "patience": 0, "minibatch_size": MINIBATCH, "seed": seed},
        models={"provider": "offline", "task_model": "synthetic", "reflection_model": "synthetic"},
        scorer={"kind": "exact_match", "normalization": ["case", "whitespace"]},
        examples=examples,
        train_ids=list(range(VAL_EXAMPLES)),
        val_ids=list(range(VAL_EXAMPLES)),
        baseline={"uri": "prompts:/synthetic/1", "name": "synthetic", "version": 1, "template": "Answer: {{question}}"},
        budget={"budget": budget},
        mlflow={"run_id": "synthetic"},
    )
    scores = [[float(rng.random() > d + 0.3) for d in difficulty]]
    templates = ["Answer: {{question}}"]
    calls = VAL_EXAMPLES
    best = 0

    def validate(iteration: int, parents: list[int]) -> None:
        nonlocal calls, best
        index = len(scores) - 1
        calls += VAL_EXAMPLES
        aggregate = sum(scores[index]) / VAL_EXAMPLES
        emit(
            "validation",
            iteration=iteration,
            candidate=index,
            parents=parents,
            template=templates[index],
            scores=scores[index],
            outputs=outputs_for(scores[index]),
            aggregate=aggregate,
            failed=0,
            metric_calls=calls,
        )
        if aggregate > sum(scores[best]) / VAL_EXAMPLES:
            best = index
        emit("pareto_front", iteration=iteration, front=[index], metric_calls=calls)

    validate(0, [])
    kinds = ["accepted"] * (CANDIDATES - 1) + rng.choices(
        ["rejected", "skipped", "invalid_proposal", "reflection_failed"], weights=[6, 2, 1, 1], k=OTHER_ITERATIONS
    )
    rng.shuffle(kinds)
    for iteration, outcome in enumerate(kinds, start=1):
        parent = max(0, len(scores) - 1 - int(rng.expovariate(0.2)))
        minibatch = rng.sample(range(VAL_EXAMPLES), MINIBATCH)
        before = [scores[parent][i] for i in minibatch]
        calls += MINIBATCH
        emit("budget", iteration=iteration, metric_calls=calls)
        template = templates[parent] + f"\n- Rule {iteration}: prefer the {rng.choice(WORDS)} answer."
        after: list[float] = []
        candidate = None
        parents = [parent]
        if outcome in ("accepted", "rejected"):
            after = [1.0 if outcome == "accepted" else float(rng.random() < 0.3) for _ in minibatch]
            calls += MINIBATCH
            emit("budget", iteration=iteration, metric_calls=calls)
        if outcome == "accepted":
            if len(scores) > 10 and rng.random() < 0.05:
                parents = [parent, rng.randrange(len(scores))]
            child = [
                (1.0 if rng.random() < 0.06 * (1.2 - d) else s) if not s else (0.0 if rng.random() < 0.02 else s)
                for s, d in zip(scores[parent], difficulty, strict=True)
            ]
            scores.append(child)
            templates.append(template)
            candidate = len(scores) - 1
            validate(iteration, parents)
        emit(
            "iteration",
            iteration=iteration,
            outcome=outcome,
            reason=f"synthetic {outcome}",
            parent=parent,
            minibatch=minibatch,
            scores_before=before,
            scores_after=after,
            outputs_before=["x"] * MINIBATCH,
            outputs_after=["y"] * len(after),
            candidate=candidate,
            template=template if outcome in ("accepted", "rejected") else None,
            reflection="The answers were too long." if outcome != "skipped" else None,
            reflection_prompt=None,
            metric_calls=calls,
            best_candidate=best,
            best_score=sum(scores[best]) / VAL_EXAMPLES,
        )
    emit(
        "run_finished",
        status="finished",
        stopped_by="budget",
        best_candidate=best,
        metric_calls=calls,
        final_evaluation=None,
    )
    return events


def results_page_steps(lines: list[str]) -> list[tuple[str, Callable[[], Any]]]:
    """The Results page's work, in order; each step may use what the earlier ones built."""
    built: dict[str, Any] = {}

    def view() -> RunView:
        return built["view"]

    def parse() -> None:
        built["events"] = parse_events(lines)

    def build() -> None:
        built["view"] = build_run_view(built["events"])

    def tables() -> None:
        frame = compare_examples(view())
        category_counts(frame)
        filter_examples(frame, ["fixed", "regressed"], "answer 1")

    def what_if_table() -> None:
        full = view().metric_calls
        budgets = [round(50 + (full - 50) * k / 9) for k in range(10)]
        built["what_if"] = what_if(view(), budgets, PATIENCES)

    def compare_runs() -> None:
        curve = run_curve(view())
        shifted = [(calls + 100, score * 0.95) for calls, score in curve]
        flat = [(calls, min(score, 0.5)) for calls, score in curve]
        compare_runs_figure({"this run": curve, "seed 1": shifted, "seed 2": flat})

    return [
        ("parse_events", parse),
        ("build_run_view", build),
        ("candidates_figure[iteration]", lambda: candidates_figure(view(), "iteration", selected=5)),
        ("candidates_figure[metric_calls]", lambda: candidates_figure(view(), "metric_calls")),
        ("front_timeline_figure", lambda: front_timeline_figure(view())),
        ("lineage_figure", lambda: lineage_figure(view())),
        ("score_matrix_figure", lambda: score_matrix_figure(view())),
        ("compare_examples+counts+filter", tables),
        ("what_if", what_if_table),
        ("what_if_figure", lambda: what_if_figure(built["what_if"])),
        ("compare_runs_figure", compare_runs),
        ("live_scores_figure", lambda: live_scores_figure(view())),
    ]


def run_once(lines: list[str]) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for name, step in results_page_steps(lines):
        started = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one more repetition")
    args = parser.parse_args()
    lines = [json.dumps(event) for event in synthetic_events()]
    size = sum(map(len, lines)) / 1e6
    print(f"log: {len(lines)} events, {size:.1f} MB, {CANDIDATES} candidates x {VAL_EXAMPLES} validation examples")
    run_once(lines[:200])  # warm-up: imports (plotly, pandas) are not the page's per-run cost
    runs = [run_once(lines) for _ in range(args.repeats)]
    for name in runs[0]:
        print(f"{name}: {statistics.median(run[name] for run in runs):.3f} s")
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(run_once, lines)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    print(f"total_seconds={statistics.median(sum(run.values()) for run in runs):.3f}")


if __name__ == "__main__":
    main()
