"""Does the default demo run show what GEPA does? Measured from each run's own event log.

    python benchmarks/demo_search.py [--seeds 0,1,2,3,4]

For each seed it runs the real default CLI run on a fresh home whose store is made before the clock
starts:

    python -m core optimize --seed S --quiet --no-register --run-dir DIR

(the bundled short-answer set with its declared 30 train / 30 validation / 30 test split, the offline
demo model, budget 300, patience 6, minibatch 3, Pareto selection), reads ``events.jsonl`` back with
:func:`core.events.read_events` and prints what :func:`core.analysis.search_facts` finds in it:

* rejected proposals;
* the longest run of consecutive iterations after which the Pareto front holds two or more candidates
  (and two or more *different* score vectors, so ties alone do not count);
* branching: a parent with two children, one of them proposed while that parent was on the front but
  not the best candidate;
* the baseline's and the best validation score, the best candidate's test score, and the run's
  wall-clock seconds.

Targets: the seed-0 run shows a rejection, a front of 2+ over 2+ consecutive iterations, the branching
above, a best validation score of at least 0.8 and a test score, in under 30 s; at least four of the
five seeds show a rejection and a front of 2+. The facts are unit-tested on a recorded seed-0 run in
``tests/test_analysis.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _common import ROOT, base_env, prepare_home

sys.path.insert(0, str(ROOT))

from core.analysis import SearchFacts, build_run_view, search_facts
from core.events import read_events

MAX_SECONDS = 30.0
MIN_BEST_SCORE = 0.8


def run_default(seed: int, home: Path) -> tuple[SearchFacts, dict, float]:
    """The default CLI run with ``seed``: its facts, its JSON summary line and its seconds."""
    run_dir = home / f"seed{seed}"
    cmd = [sys.executable, "-m", "core", "optimize", "--seed", str(seed), "--quiet", "--no-register"]
    cmd += ["--run-dir", str(run_dir)]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=base_env(GEPA_EXPLORER_HOME=str(home)), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"seed {seed}: the CLI failed ({done.returncode}):\n{done.stderr[-3000:]}")
    facts = search_facts(build_run_view(read_events(run_dir / "events.jsonl")))
    return facts, json.loads(done.stdout.strip().splitlines()[-1]), seconds


def default_run_ok(facts: SearchFacts, seconds: float) -> dict[str, bool]:
    """The targets for the default (seed 0) run."""
    return {
        "rejection": facts.rejections >= 1,
        "front_2_for_2_iterations": facts.front2_run >= 2,
        "branching": facts.branching.met,
        "best_at_least_0.8": (facts.best_score or 0.0) >= MIN_BEST_SCORE,
        "test_score_reported": facts.test_score is not None,
        "under_30_s": seconds < MAX_SECONDS,
    }


def shows_search(facts: SearchFacts) -> bool:
    """The target every seed should meet: a rejection and a front of two or more."""
    return facts.rejections >= 1 and facts.max_front >= 2


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def describe(seed: int, facts: SearchFacts, seconds: float) -> str:
    branch = facts.branching
    return (
        f"seed {seed}: {seconds:5.1f} s  iterations {facts.iterations} {dict(facts.outcomes)}  "
        f"candidates {facts.candidates}  rejections {facts.rejections}  max front {facts.max_front}  "
        f"front>=2 run {facts.front2_run} (distinct {facts.front2_distinct_run})  "
        f"parents with 2+ children {list(branch.parents_with_two_children)}  "
        f"children of a non-best front member {list(branch.children_of_non_best_front_members)}  "
        f"branching met {branch.met}  baseline {_fmt(facts.baseline_score)}  best {_fmt(facts.best_score)}  "
        f"test {_fmt(facts.test_score)}  metric calls {facts.metric_calls}  stopped by {facts.stopped_by}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    print("python -m core optimize --seed S --quiet --no-register (defaults: budget 300, patience 6, 30/30/30)")
    results: dict[int, tuple[SearchFacts, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        prepare_home(str(home))
        for seed in seeds:
            facts, summary, seconds = run_default(seed, home)
            results[seed] = (facts, seconds)
            print(describe(seed, facts, seconds))
            if summary["final_score"] != facts.best_score:
                print(f"  note: the CLI's final_score {_fmt(summary['final_score'])} differs from the events' best")
    print()
    ok = True
    if 0 in results:
        facts, seconds = results[0]
        checks = default_run_ok(facts, seconds)
        ok &= all(checks.values())
        print("seed 0 targets: " + ", ".join(f"{name}={value}" for name, value in checks.items()))
    showing = [seed for seed, (facts, _) in results.items() if shows_search(facts)]
    needed = max(1, (4 * len(results) + 4) // 5)
    ok &= len(showing) >= needed
    print(f"seeds with a rejection and a front of 2+: {len(showing)} of {len(results)} (need {needed}): {showing}")
    print(
        f"total: {sum(f.rejections for f, _ in results.values())} rejections, "
        f"{sum(f.iterations for f, _ in results.values())} iterations, "
        f"{sum(s for _, s in results.values()):.1f} s"
    )
    print(f"meets_targets={ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
