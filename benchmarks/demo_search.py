"""Does the default demo run show what GEPA does? Measured from each run's own event log.

    python benchmarks/demo_search.py [--seeds 0,1,2,3,4] [--budget 300] [--patience 6]

For each seed it runs the real CLI on the offline demo model, on the harness split of the bundled
short-answer set: 30 test rows held out (never given to the run), the other rows, in file order, split
by the CLI itself into train and validation (``--validation-fraction 0.5 --split-seed 0``), exact match
with case and whitespace normalisation, minibatch 3, Pareto selection. Then it reads ``events.jsonl`` in
the run folder and prints, per seed and in total:

* rejected proposals (``iteration`` events with outcome ``rejected``);
* the longest run of consecutive iterations after which the Pareto front holds two or more candidates
  (and two or more *different* score vectors, so ties alone do not count);
* branching: a parent with two accepted children, one of them proposed while that parent was on the
  front but not the best candidate;
* the baseline's and the best validation score, and the run's wall-clock seconds.

Targets: the seed-0 run shows a rejection, a front of 2+ over 2+ consecutive iterations, the branching
above and a best validation score of at least 0.8, in under 30 s; at least four of the five seeds show a
rejection and a front of 2+. The property functions below are pure (events in, numbers out) and
unit-tested in ``tests/test_offline_model.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "sample_data" / "short_answer_qa.jsonl"
PROMPT_URI = "prompts:/short-answer-qa@baseline"
TEST_ROWS = 30
DEFAULT_BUDGET = 300
DEFAULT_PATIENCE = 6
MAX_SECONDS = 30.0
MIN_BEST_SCORE = 0.8

Event = Mapping[str, Any]

# ==================================================================================================
# Search properties: pure functions of a run's events (schema in core/events.py).
# ==================================================================================================


def _of_type(events: Iterable[Event], type_: str) -> list[Event]:
    return [e for e in events if e.get("type") == type_]


def rejections(events: Sequence[Event]) -> int:
    """How many proposals were rejected (not better than their parent on the minibatch)."""
    return sum(1 for e in _of_type(events, "iteration") if e.get("outcome") == "rejected")


def baseline_score(events: Sequence[Event]) -> float | None:
    """Candidate 0's validation score."""
    return next((float(e["aggregate"]) for e in _of_type(events, "validation") if e["candidate"] == 0), None)


def best_score(events: Sequence[Event]) -> float | None:
    """The best validation score of any candidate."""
    scores = [float(e["aggregate"]) for e in _of_type(events, "validation")]
    return max(scores) if scores else None


def _state_before(
    events: Sequence[Event], iteration: int
) -> tuple[dict[int, list[float]], dict[int, float], list[int]]:
    """Per-example scores, aggregates and the front of the candidates validated before ``iteration`` began."""
    scores: dict[int, list[float]] = {}
    aggregates: dict[int, float] = {}
    front: list[int] = []
    for event in events:
        if event.get("type") == "validation" and event["iteration"] < iteration:
            scores[event["candidate"]] = [float(s) for s in event["scores"]]
            aggregates[event["candidate"]] = float(event["aggregate"])
        elif event.get("type") == "pareto_front" and event["iteration"] < iteration:
            front = list(event["front"])
    return scores, aggregates, front


def _best(aggregates: Mapping[int, float]) -> int | None:
    """The best candidate as the engine names it: highest aggregate, lowest index on a tie."""
    return max(aggregates, key=lambda c: (aggregates[c], -c)) if aggregates else None


def fronts_after_iterations(events: Sequence[Event]) -> list[tuple[int, list[int], int]]:
    """For each iteration, in order: (iteration, the front after it, how many different score vectors
    that front holds)."""
    scores: dict[int, tuple[float, ...]] = {}
    front: list[int] = []
    rows = []
    for event in events:
        kind = event.get("type")
        if kind == "validation":
            scores[event["candidate"]] = tuple(float(s) for s in event["scores"])
        elif kind == "pareto_front":
            front = list(event["front"])
        elif kind == "iteration":
            rows.append((int(event["iteration"]), front, len({scores.get(c) for c in front})))
    return rows


def longest_front_run(events: Sequence[Event], *, min_size: int = 2, distinct: bool = False) -> int:
    """The longest run of consecutive iterations after each of which the front holds at least
    ``min_size`` candidates (with ``distinct``: at least ``min_size`` different score vectors)."""
    longest = current = 0
    for _, front, different in fronts_after_iterations(events):
        size = different if distinct else len(front)
        current = current + 1 if size >= min_size else 0
        longest = max(longest, current)
    return longest


def max_front_size(events: Sequence[Event]) -> int:
    return max((len(e["front"]) for e in _of_type(events, "pareto_front")), default=0)


def proposals(events: Sequence[Event]) -> list[dict[str, Any]]:
    """Each accepted proposal: its iteration, parent and child, and whether the parent was on the front
    and was the best candidate when the iteration began."""
    rows = []
    for event in _of_type(events, "iteration"):
        if event.get("outcome") != "accepted" or event.get("candidate") is None or event.get("parent") is None:
            continue
        _, aggregates, front = _state_before(events, int(event["iteration"]))
        parent = int(event["parent"])
        rows.append(
            {
                "iteration": int(event["iteration"]),
                "parent": parent,
                "child": int(event["candidate"]),
                "parent_on_front": parent in front,
                "parent_was_best": parent == _best(aggregates),
            }
        )
    return rows


def children(events: Sequence[Event]) -> dict[int, list[int]]:
    """Parent -> its accepted children, from the validation events' lineage."""
    tree: dict[int, list[int]] = {}
    for event in _of_type(events, "validation"):
        for parent in event.get("parents") or []:
            tree.setdefault(int(parent), []).append(int(event["candidate"]))
    return tree


def branching(events: Sequence[Event]) -> dict[str, Any]:
    """Parents with two or more children, children proposed from a front member that was not the best
    candidate at the time, and whether one parent shows both (``met``)."""
    tree = children(events)
    branched = sorted(p for p, kids in tree.items() if len(kids) >= 2)
    off_best = [row for row in proposals(events) if row["parent_on_front"] and not row["parent_was_best"]]
    met = any(row["parent"] in branched for row in off_best)
    return {
        "parents_with_2_children": branched,
        "children_from_non_best_front_member": [row["child"] for row in off_best],
        "met": met,
    }


def search_properties(events: Sequence[Event]) -> dict[str, Any]:
    """Everything the demo targets are judged on, for one run."""
    iterations = _of_type(events, "iteration")
    outcomes: dict[str, int] = {}
    for event in iterations:
        outcomes[event["outcome"]] = outcomes.get(event["outcome"], 0) + 1
    finished = next(iter(_of_type(events, "run_finished")), {})
    return {
        "iterations": len(iterations),
        "outcomes": outcomes,
        "candidates": len(_of_type(events, "validation")),
        "rejections": rejections(events),
        "max_front": max_front_size(events),
        "front2_run": longest_front_run(events),
        "front2_distinct_run": longest_front_run(events, distinct=True),
        "branching": branching(events),
        "baseline": baseline_score(events),
        "best": best_score(events),
        "metric_calls": finished.get("metric_calls"),
        "stopped_by": finished.get("stopped_by"),
    }


def default_run_ok(props: Mapping[str, Any], seconds: float) -> dict[str, bool]:
    """The targets for the default (seed 0) run."""
    return {
        "rejection": props["rejections"] >= 1,
        "front_2_for_2_iterations": props["front2_run"] >= 2,
        "branching": bool(props["branching"]["met"]),
        "best_at_least_0.8": (props["best"] or 0.0) >= MIN_BEST_SCORE,
        "under_30_s": seconds < MAX_SECONDS,
    }


def seed_shows_search(props: Mapping[str, Any]) -> bool:
    """The target every seed should meet: a rejection and a front of two or more."""
    return props["rejections"] >= 1 and props["max_front"] >= 2


# ==================================================================================================
# The harness: the real CLI on the harness split.
# ==================================================================================================


def harness_rows(n: int, test_rows: int = TEST_ROWS) -> tuple[list[int], list[int]]:
    """(test rows, the other rows in file order): the default three-way split's held-out third."""
    order = list(range(n))
    random.Random(0).shuffle(order)
    test = sorted(order[:test_rows])
    held_out = set(test)
    return test, [i for i in range(n) if i not in held_out]


def write_rest(dataset: Path, target: Path) -> tuple[list[int], list[int]]:
    lines = [line for line in dataset.read_text(encoding="utf-8").splitlines() if line.strip()]
    test, rest = harness_rows(len(lines))
    target.write_text("".join(lines[i] + "\n" for i in rest), encoding="utf-8")
    return test, rest


def run_cli(seed: int, rest_file: Path, home: Path, budget: int, patience: int) -> tuple[list[dict], dict, float]:
    run_dir = home / f"seed{seed}"
    cmd = [
        sys.executable,
        "-m",
        "core",
        "optimize",
        "--provider",
        "offline",
        "--dataset",
        str(rest_file),
        "--prompt-uri",
        PROMPT_URI,
        "--validation-fraction",
        "0.5",
        "--split-seed",
        "0",
        "--scorer",
        "exact_match",
        "--normalize",
        "case,whitespace",
        "--minibatch",
        "3",
        "--selection",
        "pareto",
        "--budget",
        str(budget),
        "--patience",
        str(patience),
        "--seed",
        str(seed),
        "--quiet",
        "--run-dir",
        str(run_dir),
        "--no-register",
    ]
    env = {**os.environ, "GEPA_EXPLORER_HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env["PYTHONPATH"] = str(ROOT)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"seed {seed}: the CLI failed ({done.returncode}):\n{done.stderr[-3000:]}")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    return events, json.loads(done.stdout.strip().splitlines()[-1]), seconds


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    parser.add_argument("--patience", type=int, default=DEFAULT_PATIENCE)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    print(f"budget={args.budget} patience={args.patience} minibatch=3 selection=pareto exact_match(case,whitespace)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        test, rest = write_rest(args.dataset, home / "rest.jsonl")
        print(f"dataset: {len(test) + len(rest)} rows; {len(test)} test rows held out; {len(rest)} rows to the run")
        for seed in seeds:
            events, summary, seconds = run_cli(seed, home / "rest.jsonl", home, args.budget, args.patience)
            props = search_properties(events)
            results[seed] = (props, seconds)
            branch = props["branching"]
            print(
                f"seed {seed}: {seconds:5.1f} s  iterations {props['iterations']} {props['outcomes']}  "
                f"candidates {props['candidates']}  rejections {props['rejections']}  max front {props['max_front']}  "
                f"front>=2 run {props['front2_run']} (distinct {props['front2_distinct_run']})  "
                f"parents with 2+ children {branch['parents_with_2_children']}  "
                f"children of a non-best front member {branch['children_from_non_best_front_member']}  "
                f"branching met {branch['met']}  baseline {_fmt(props['baseline'])}  best {_fmt(props['best'])}  "
                f"metric calls {props['metric_calls']}  stopped by {props['stopped_by']}  "
                f"(CLI: initial_score {_fmt(summary['initial_score'])}, final_score {_fmt(summary['final_score'])})"
            )
    print()
    ok = True
    if 0 in results:
        props, seconds = results[0]
        checks = default_run_ok(props, seconds)
        ok &= all(checks.values())
        print("seed 0 targets: " + ", ".join(f"{name}={value}" for name, value in checks.items()))
    showing = [seed for seed, (props, _) in results.items() if seed_shows_search(props)]
    needed = max(1, (4 * len(results) + 4) // 5)
    ok &= len(showing) >= needed
    print(f"seeds with a rejection and a front of 2+: {len(showing)} of {len(results)} (need {needed}): {showing}")
    total_seconds = sum(s for _, s in results.values())
    print(
        f"total: {sum(p['rejections'] for p, _ in results.values())} rejections, "
        f"{sum(p['iterations'] for p, _ in results.values())} iterations, {total_seconds:.1f} s"
    )
    print(f"meets_targets={ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
