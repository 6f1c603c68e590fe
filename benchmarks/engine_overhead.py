"""Engine overhead: the whole ``python -m core optimize`` process against a bare ``gepa.optimize`` loop.

Both run as fresh processes on the same OpenAI-compatible endpoint (the offline demo model served
from its own process), the same 40-row dataset, scorer, seed and budget (300 metric calls), in
alternation so machine noise hits both alike. The MLflow store is warmed by one untimed run first
(creating the SQLite schema is a one-off cost, printed separately). The peak resident memory of each
process (``ru_maxrss``) is printed too.

    python benchmarks/engine_overhead.py [--repeats 5] [--budget 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from _common import ROOT, base_env, median, offline_endpoint, timed, timed_with_memory

MODEL = "gepa-offline-demo"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, offline_endpoint() as base_url:
        env = base_env(GEPA_EXPLORER_HOME=home, OPENAI_API_KEY="not-needed")
        env.pop("MLFLOW_TRACKING_URI", None)
        ours = [
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
            "--reflection-model",
            MODEL,
            "--budget",
            str(args.budget),
            "--patience",
            "0",
            "--seed",
            "0",
            "--concurrency",
            str(args.concurrency),
            "--quiet",
        ]
        bare = [
            sys.executable,
            str(ROOT / "benchmarks" / "bare_gepa.py"),
            base_url,
            MODEL,
            str(args.budget),
            str(args.concurrency),
        ]
        started = time.perf_counter()
        timed(ours, env)
        print(f"first run on an empty store (creates the schema): {time.perf_counter() - started:.2f}s")
        bare_times, our_times, bare_memory, our_memory = [], [], [], []
        for i in range(args.repeats):
            seconds, memory = timed_with_memory(bare, env)
            bare_times.append(seconds)
            bare_memory.append(memory)
            seconds, memory = timed_with_memory(ours, env)
            our_times.append(seconds)
            our_memory.append(memory)
            print(
                f"repeat {i + 1}: bare {bare_times[-1]:.2f}s ({bare_memory[-1]:.0f} MB)  "
                f"ours {our_times[-1]:.2f}s ({our_memory[-1]:.0f} MB)"
            )
        b, o = median(bare_times), median(our_times)
        print(f"bare_gepa_median_seconds={b:.2f}")
        print(f"explorer_cli_median_seconds={o:.2f}")
        print(f"ratio={o / b:.2f}")
        print(f"bare_gepa_peak_rss_median_mb={median(bare_memory):.0f}")
        print(f"explorer_cli_peak_rss_median_mb={median(our_memory):.0f}")


if __name__ == "__main__":
    main()
