"""Runs on the Redis queue at class scale: 24 runs at once on 2 workers, the queue's own cost per run, the
submitter's memory, and a worker killed with SIGKILL mid-run.

Everything is real and on this machine: redis-server, PostgreSQL and an ``mlflow server`` on it (from
tests/services.py, on free loopback ports), two ``python -m core worker --queue URL`` commands with home
folders of their own, and the offline demo model with a fixed latency per call.

* **24 runs at once**: one submitting process (``--submitter``, its own process so its memory is its own)
  submits every run through :class:`core.queue.QueueExecutor` and follows them all from Redis until each
  ends; it reports its resident memory before submitting, after submitting, and after all ended.
* **Queueing overhead**: (a) per run of the 24, the dispatch gap: from the moment a worker was free (the
  later of the submission and the end of that worker's previous job) to the job's start, from RQ's own
  records; and the follower's lag (job end to the follower seeing the run's end); (b) one run alone,
  end to end (submit to outcome), through the queue against the same run through today's local warm
  executor (forked from the fork server), median of 3 each.
* **A killed worker**: two slow runs, one on each worker; the whole worker command of one is SIGKILLed
  mid-run (its RQ worker dies with it, its horse follows its parent); seconds until no run of the dead
  worker is RUNNING in MLflow, and whether every follower ended.

    python benchmarks/queue_scale.py [--runs 24] [--delay-ms 200] [--budget 40]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, base_env

sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def config_for(tracking: str, args: argparse.Namespace, seed: int):
    from core.config import OptimizationConfig
    from core.models import ModelConfig

    models = ModelConfig.from_env("offline", simulated_delay_ms=args.delay_ms)
    return OptimizationConfig(
        tracking_uri=tracking, budget=args.budget, patience=0, register=False, seed=seed, models=models
    )


# --------------------------------------------------------------------------------------------------
# The submitting process
# --------------------------------------------------------------------------------------------------


def submitter(args: argparse.Namespace) -> None:
    """Submit ``--runs`` runs at once and follow them all; one JSON line on stdout."""
    from core.queue import QueueExecutor

    executor = QueueExecutor(args.queue)
    executor.conn.ping()
    configs = [config_for(args.tracking, args, seed) for seed in range(args.runs)]
    before = rss_mb()
    handles, submitted = [], {}
    for config in configs:
        handle = executor.submit(config)
        submitted[handle.ref] = time.time()
        handles.append(handle)
    after_submit = rss_mb()
    ended: dict[str, dict] = {}
    while len(ended) < len(handles):
        for handle in handles:
            if handle.ref in ended:
                continue
            outcome = handle.outcome()
            if outcome is not None:
                ended[handle.ref] = {
                    "seen": time.time(),
                    "status": outcome.status,
                    "worker": outcome.summary.get("worker") or handle.worker,
                    "seconds": outcome.summary.get("seconds"),
                }
        time.sleep(0.1)
    runs = [{"ref": ref, "submitted": submitted[ref], **ended[ref]} for ref in submitted]
    print(json.dumps({"rss_before": before, "rss_after_submit": after_submit, "rss_after": rss_mb(), "runs": runs}))


# --------------------------------------------------------------------------------------------------
# The measurements
# --------------------------------------------------------------------------------------------------


def start_worker(url: str, home: Path) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    env = base_env(GEPA_EXPLORER_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    return subprocess.Popen(
        [sys.executable, "-m", "core", "worker", "--queue", url, "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=(home / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def lone_runs(url: str, tracking: str, args: argparse.Namespace, repeats: int = 3) -> dict[str, list[float]]:
    """One run at a time, end to end: through the queue, and through the local warm executor."""
    from core.executors import LocalExecutor
    from core.queue import QueueExecutor
    from core.rundir import RunDir
    from core.store import runs_home

    queue, local = QueueExecutor(url), LocalExecutor(warm=True)
    local.warm_up()
    local.forkserver.wait_ready(120)
    times: dict[str, list[float]] = {"queue": [], "local warm": []}
    for _ in range(repeats):
        config = config_for(tracking, args, 0)
        started = time.perf_counter()
        handle = queue.submit(config)
        outcome = handle.follow(None, poll_ms=200)
        times["queue"].append(time.perf_counter() - started)
        assert outcome.status == "finished", outcome
        started = time.perf_counter()
        folder = RunDir.create(runs_home())
        folder.write_config(config.to_dict())
        handle = local.start(folder, api_key=None)
        while handle.outcome() is None and handle.is_alive():
            time.sleep(0.05)
        times["local warm"].append(time.perf_counter() - started)
        assert handle.outcome() is not None and handle.outcome().status == "finished"
    return times


def dispatch_gaps(url: str, runs: list[dict]) -> tuple[list[float], list[float]]:
    """Per run: seconds from a worker being free to the job's start; job end to the follower seeing it."""
    import redis
    from rq.job import Job

    conn = redis.Redis.from_url(url)
    jobs = {run["ref"]: Job.fetch(run["ref"], connection=conn) for run in runs}
    by_worker: dict[str, list] = {}
    for run in runs:
        by_worker.setdefault(jobs[run["ref"]].worker_name, []).append(run)
    gaps, lags = [], []
    for worker_runs in by_worker.values():
        worker_runs.sort(key=lambda r: jobs[r["ref"]].started_at)
        free = None
        for run in worker_runs:
            job = jobs[run["ref"]]
            began, done = job.started_at.timestamp(), job.ended_at.timestamp()
            ready = run["submitted"] if free is None else max(run["submitted"], free)
            gaps.append(began - ready)
            lags.append(run["seen"] - done)
            free = done
    return gaps, lags


def killed_worker(url: str, tracking: str, args: argparse.Namespace, workers: list[subprocess.Popen]) -> dict:
    import mlflow
    import redis
    from rq import Worker

    env = base_env(MLFLOW_DISABLE_TELEMETRY="true")
    slow = ["--budget", "400", "--patience", "0", "--no-register", "--offline-delay-ms", str(args.delay_ms)]
    where = ["--queue", url, "--tracking-uri", tracking]
    followers = [
        subprocess.Popen(
            [sys.executable, "-m", "core", "optimize", *slow, "--seed", str(i), *where],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    conn = redis.Redis.from_url(url)
    busy_workers = lambda: sum(1 for w in Worker.all(connection=conn) if w.get_current_job_id())  # noqa: E731
    wait_for(lambda: busy_workers() == 2, 300, "two busy workers")
    victim = workers[0]
    busy = [w for w in Worker.all(connection=conn) if w.name.split("-")[-2] == str(victim.pid)]
    ref = busy[0].get_current_job_id()
    from core.queue import events_key

    def iterations() -> int:
        return sum(1 for _, f in conn.xrange(events_key(ref)) if b'"type": "iteration"' in f.get(b"event", b""))

    wait_for(lambda: iterations() >= 2, 300, "two iterations of the victim's run")  # mid-run
    os.killpg(victim.pid, signal.SIGKILL)  # the worker command and its RQ worker: a machine gone
    killed = time.monotonic()
    client = mlflow.MlflowClient(tracking)
    run_id, follower_ended = None, None
    while True:
        if follower_ended is None and any(f.poll() is not None for f in followers):
            follower_ended = time.monotonic() - killed
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"tags.`gepa_explorer.queue_ref` = '{ref}'",
        )
        if runs:
            run_id = runs[0].info.run_id
            if runs[0].info.status != "RUNNING":
                break
        if time.monotonic() - killed > 120:
            break
        time.sleep(0.5)
    not_running_after = time.monotonic() - killed
    while follower_ended is None and time.monotonic() - killed < 120:
        if any(f.poll() is not None for f in followers):
            follower_ended = time.monotonic() - killed
        time.sleep(0.2)
    ends = []
    for follower in followers:
        try:
            _out, err = follower.communicate(timeout=600)
            ends.append((follower.returncode, err.strip().splitlines()[-1][:160] if err.strip() else ""))
        except subprocess.TimeoutExpired:
            follower.kill()
            ends.append((None, "still following after 600 s"))
    status = client.get_run(run_id).info.status if run_id else None
    return {
        "seconds_until_not_running": round(not_running_after, 1),
        "follower_ended_after": round(follower_ended, 1) if follower_ended is not None else None,
        "iterations_before_kill": iterations(),
        "status": status,
        "followers": ends,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--submitter", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--tracking", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.submitter:
        submitter(args)
        return
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from services import running_mlflow_on_postgres, running_postgres, running_redis

    with (
        tempfile.TemporaryDirectory() as scratch,
        running_redis() as redis_server,
        running_postgres() as postgres,
        running_mlflow_on_postgres(postgres.url) as mlflow_server,
    ):
        os.environ["GEPA_EXPLORER_HOME"] = str(Path(scratch) / "client")
        url, tracking = redis_server.url, mlflow_server.url
        print(f"redis {url} · mlflow {tracking} (PostgreSQL) · offline model at {args.delay_ms:.0f} ms", flush=True)
        from core.optimization import prepare_run

        started = time.perf_counter()
        prepare_run(config_for(tracking, args, 0))  # registers the bundled prompts once, as a class's first run does
        print(f"first use of the new store (registers the bundled prompts): {time.perf_counter() - started:.1f} s")
        workers = [start_worker(url, Path(scratch) / f"worker-{i}") for i in range(2)]
        try:
            import redis
            from rq import Worker

            conn = redis.Redis.from_url(url)
            wait_for(lambda: Worker.count(connection=conn) == 2, 120, "two workers")
            lone = lone_runs(url, tracking, args)
            q, loc = statistics.median(lone["queue"]), statistics.median(lone["local warm"])
            print(
                f"one run alone, end to end (median of 3): queue {q:.2f} s, local warm {loc:.2f} s, "
                f"difference {q - loc:+.2f} s  [{', '.join(f'{t:.2f}' for t in lone['queue'])} | "
                f"{', '.join(f'{t:.2f}' for t in lone['local warm'])}]",
                flush=True,
            )
            env = base_env(MLFLOW_DISABLE_TELEMETRY="true", GEPA_EXPLORER_HOME=str(Path(scratch) / "submitter"))
            command = [sys.executable, __file__, "--submitter", "--queue", url, "--tracking", tracking]
            command += ["--runs", str(args.runs), "--delay-ms", str(args.delay_ms), "--budget", str(args.budget)]
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-3000:])
            report = json.loads(done.stdout.strip().splitlines()[-1])
            runs = report["runs"]
            finished = sum(1 for r in runs if r["status"] == "finished")
            used = sorted({r["worker"] for r in runs})
            gaps, lags = dispatch_gaps(url, runs)
            said = f"{finished}/{len(runs)} finished in {wall:.1f} s; workers {used}"
            print(f"{args.runs} runs at once on 2 workers: {said}")
            both = [gap + lag for gap, lag in zip(gaps, lags, strict=True)]
            print(
                f"queueing overhead per run: dispatch gap median {statistics.median(gaps):.3f} s, "
                f"max {max(gaps):.3f} s; follower lag median {statistics.median(lags):.3f} s, max {max(lags):.3f} s; "
                f"both median {statistics.median(both):.3f} s, max {max(both):.3f} s"
            )
            print(
                f"submitting process RSS: {report['rss_before']:.1f} MB before, {report['rss_after_submit']:.1f} MB "
                f"after submitting {args.runs}, {report['rss_after']:.1f} MB after following all to the end"
            )
            kill = killed_worker(url, tracking, args, workers)
            print(
                f"worker SIGKILLed mid-run (after {kill['iterations_before_kill']} iterations of its run): its run "
                f"not RUNNING after {kill['seconds_until_not_running']} s (MLflow status {kill['status']}), its "
                f"follower ended after {kill['follower_ended_after']} s; every follower's exit and last line: "
                f"{kill['followers']}"
            )
        finally:
            for worker in workers:
                try:
                    os.killpg(worker.pid, signal.SIGTERM)
                    worker.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(worker.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


if __name__ == "__main__":
    main()
