"""The workshop's default run, twice on a fresh store: its numbers, its time, and whether it repeats.

    python -m core optimize --provider offline --budget 150 --patience 4 --seed 0

Must reach: baseline exact match <= 30%, best >= 80%, >= 4 candidates, a Pareto front of >= 2 candidates
at some iteration, under 90 s; the same seed gives the same candidates and scores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, base_env


def run(home: str, run_dir: Path) -> tuple[dict, float, list]:
    cmd = [
        sys.executable,
        "-m",
        "core",
        "optimize",
        "--provider",
        "offline",
        "--budget",
        "150",
        "--patience",
        "4",
        "--seed",
        "0",
        "--quiet",
        "--run-dir",
        str(run_dir),
    ]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=base_env(GEPA_EXPLORER_HOME=home), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    candidates = [(e["template"], e["scores"]) for e in events if e["type"] == "validation"]
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds, candidates


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        first, first_seconds, first_candidates = run(home, Path(home) / "first")
        _, second_seconds, second_candidates = run(home, Path(home) / "second")
    for key in ("initial_score", "final_score", "candidates", "max_pareto_front_size", "metric_calls", "stopped_by"):
        print(f"{key}={first[key]}")
    print(f"seconds_first_run_empty_store={first_seconds:.1f}")
    print(f"seconds_second_run={second_seconds:.1f}")
    print(f"same_candidates_and_scores={first_candidates == second_candidates}")
    ok = (
        first["initial_score"] <= 0.30
        and first["final_score"] >= 0.80
        and first["candidates"] >= 4
        and first["max_pareto_front_size"] >= 2
        and max(first_seconds, second_seconds) < 90
        and first_candidates == second_candidates
    )
    print(f"meets_targets={ok}")


if __name__ == "__main__":
    main()
