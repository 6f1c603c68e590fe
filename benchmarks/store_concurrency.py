"""Many CLI runs at once on one SQLite store: on a store that does not exist yet, and on one that does.

    python benchmarks/store_concurrency.py [--new-store-runs 16] [--runs 32] [--delay-ms 200]

1. ``--new-store-runs`` ``python -m core optimize`` processes start together on a brand-new home (its
   SQLite file does not exist): how many exit 0 (target: all).
2. One run alone on an existing store, then ``--runs`` runs at once on that store with the offline
   model slowed to ``--delay-ms`` per call: how many finish, how many mention a locked database, the
   total wall time against the run alone, and the peak memory (max RSS) of each run's process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, base_env


def start(home: str, index: int, delay_ms: float) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "core", "optimize", "--seed", str(index), "--no-register", "--quiet"]
    if delay_ms:
        cmd += ["--offline-delay-ms", str(delay_ms)]
    env = base_env(GEPA_EXPLORER_HOME=home)
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_together(home: str, count: int, delay_ms: float) -> tuple[list[tuple[int, str, float]], float]:
    """Start ``count`` runs at once; wait for all with ``os.wait4`` to read each one's peak memory."""
    started = time.perf_counter()
    processes = {p.pid: p for p in (start(home, i, delay_ms) for i in range(count))}
    outputs: dict[int, tuple[str, str]] = {}
    readers = []
    for pid, process in processes.items():

        def read(process: subprocess.Popen = process, pid: int = pid) -> None:
            outputs[pid] = (process.stdout.read(), process.stderr.read())

        thread = threading.Thread(target=read)
        thread.start()
        readers.append(thread)
    results: dict[int, tuple[int, float]] = {}
    while len(results) < count:
        pid, status, usage = os.wait4(-1, 0)
        if pid in processes:
            results[pid] = (os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024)
            processes[pid].returncode = results[pid][0]
    for thread in readers:
        thread.join()
    seconds = time.perf_counter() - started
    return [(code, outputs[pid][1], peak) for pid, (code, peak) in results.items()], seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--new-store-runs", type=int, default=16)
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        assert not (Path(home) / "mlflow.db").exists()
        results, seconds = run_together(home, args.new_store_runs, 0.0)
        new_ok = sum(1 for code, _, _ in results if code == 0)
        print(f"new_store_runs={args.new_store_runs}")
        print(f"new_store_exit_0={new_ok}")
        print(f"new_store_wall_seconds={seconds:.1f}")
        for code, stderr, _ in results:
            if code != 0:
                print(f"  failed ({code}): {stderr.strip().splitlines()[-1][:300] if stderr.strip() else ''}")

        alone, alone_seconds = run_together(home, 1, args.delay_ms)
        print(f"one_run_alone_seconds={alone_seconds:.1f} (exit {alone[0][0]}, peak {alone[0][2]:.0f} MB)")
        results, seconds = run_together(home, args.runs, args.delay_ms)
        ok = sum(1 for code, _, _ in results if code == 0)
        locked = sum(1 for _, stderr, _ in results if "locked" in stderr.lower())
        peaks = [peak for _, _, peak in results]
        print(f"concurrent_runs={args.runs} (offline model at {args.delay_ms:g} ms a call)")
        print(f"concurrent_finished={ok}")
        print(f"concurrent_reporting_a_locked_database={locked}")
        print(f"concurrent_wall_seconds={seconds:.1f}")
        print(f"peak_rss_mb_per_run median={statistics.median(peaks):.0f} max={max(peaks):.0f}")
        for code, stderr, _ in results:
            if code != 0:
                print(f"  failed ({code}): {stderr.strip().splitlines()[-1][:300] if stderr.strip() else ''}")
            for line in stderr.splitlines():
                if "locked" in line.lower():
                    print(f"  said: {line.strip()[:400]}")
        print(f"meets_targets={new_ok == args.new_store_runs and ok == args.runs and locked == 0}")


if __name__ == "__main__":
    main()
