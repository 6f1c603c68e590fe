"""Throughput of the engine's evaluation path against a simulated 200 ms model, at 1, 4 and 8 calls at once.

Each setting is a real ``python -m core optimize`` run against the offline demo model served from its own
process with a fixed 200 ms delay per request. Full validations (every validation example scored by one
candidate, through mlflow.genai.optimize_prompts' evaluation, our predict function and the openai client)
are timed from the run's own event log; minibatches (3 examples) cannot use more than 3 calls at once, so
the whole-run rate is printed too, for context.

    python benchmarks/throughput.py [--budget 100]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import base_env, offline_endpoint, timed

MODEL = "gepa-offline-demo"


def validation_batches(events: list[dict], size: int) -> list[float]:
    """Seconds taken by each full-validation batch, from consecutive budget events."""
    budget = [e for e in events if e["type"] == "budget"]
    return [b["t"] - a["t"] for a, b in itertools.pairwise(budget) if b["metric_calls"] - a["metric_calls"] == size]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    args = parser.parse_args()
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as home, offline_endpoint(delay_ms=args.delay_ms) as base_url:
        env = base_env(GEPA_EXPLORER_HOME=home, OPENAI_API_KEY="not-needed")
        for concurrency in (1, 4, 8):
            run_dir = Path(home) / f"run-c{concurrency}"
            cmd = [
                sys.executable,
                "-m",
                "core",
                "optimize",
                "--provider",
                "openai",
                "--base-url",
                base_url,
                "--model",
                MODEL,
                "--budget",
                str(args.budget),
                "--patience",
                "0",
                "--seed",
                "0",
                "--concurrency",
                str(concurrency),
                "--no-register",
                "--quiet",
                "--run-dir",
                str(run_dir),
            ]
            started = time.perf_counter()
            seconds = timed(cmd, env)
            events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
            size = len(events[0]["val_ids"])
            batches = validation_batches(events, size)
            rates[concurrency] = size / statistics.median(batches)
            search = events[-1]["metric_calls"]
            first, last = events[0]["t"], next(e["t"] for e in reversed(events) if e["type"] == "iteration")
            print(
                f"concurrency {concurrency}: full validation of {size} examples {statistics.median(batches):.2f}s "
                f"(median of {len(batches)}) = {rates[concurrency]:.1f} calls/s; whole search {search} calls in "
                f"{last - first:.1f}s = {search / (last - first):.1f} calls/s; process {seconds:.1f}s "
                f"(wall {time.perf_counter() - started:.1f}s)"
            )
    ideal = 1000.0 / args.delay_ms
    for concurrency, rate in rates.items():
        efficiency = rate / (concurrency * rates[1])
        print(f"efficiency_at_{concurrency}={efficiency:.2f} (ideal rate {concurrency * ideal:.1f} calls/s)")


if __name__ == "__main__":
    main()
