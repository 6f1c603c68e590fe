"""Runs on the Redis queue, end to end: real redis-server, an mlflow server on PostgreSQL, warm workers
with home folders of their own, and the CLI submitting and following (core/queue.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import redis

from conftest import ROOT, cli_env
from core.config import OptimizationConfig

pytestmark = pytest.mark.services

QUICK = ("--budget", "40", "--patience", "0", "--no-register", "--quiet")
SERVER = OptimizationConfig(tracking_uri="http://127.0.0.1:9")  # never contacted by a submission
SLOW = ("--budget", "300", "--patience", "0", "--no-register", "--offline-delay-ms", "200", "--seed", "3")


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    home: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def start_worker(url: str, home: Path, *, concurrency: int = 1) -> WorkerProcess:
    home.mkdir(parents=True, exist_ok=True)
    log = home / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "worker", "--queue", url, "--concurrency", str(concurrency)],
            cwd=ROOT,
            env=cli_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(process, home, log)


def wait_for(check, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop_worker(worker: WorkerProcess) -> None:
    if worker.process.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.process.wait(timeout=10)


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Two worker commands, each with its own GEPA_EXPLORER_HOME, both registered in Redis."""
    from rq import Worker

    started = [start_worker(redis_url, tmp_path / f"worker-{i}") for i in range(2)]
    conn = redis.Redis.from_url(redis_url)
    try:
        wait_for(lambda: Worker.count(connection=conn) == 2, 90, "two RQ workers")
        yield started
    finally:
        for worker in started:
            stop_worker(worker)


def submit(redis_url: str, tracking: str, home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "core", "optimize", *args, "--queue", redis_url, "--tracking-uri", tracking],
        cwd=ROOT,
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def summary_of(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_six_runs_submitted_at_once_all_finish_on_both_workers(workers, redis_url, mlflow_postgres_url, tmp_path):
    clients = [submit(redis_url, mlflow_postgres_url, tmp_path / "client", *QUICK, "--seed", str(i)) for i in range(6)]
    results = [client.communicate(timeout=300) for client in clients]
    summaries = [summary_of(out) for out, _err in results]
    print("seconds per run:", [s.get("seconds") for s in summaries])
    assert [client.returncode for client in clients] == [0] * 6, [err[-2000:] for _out, err in results]
    assert {s["status"] for s in summaries} == {"finished"}
    names = {s["worker"] for s in summaries}
    pids = {name.split("-")[-2] for name in names}
    assert pids == {str(w.pid) for w in workers}  # both worker commands ran some
    client = mlflow.MlflowClient(mlflow_postgres_url)
    for summary in summaries:
        run = client.get_run(summary["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.tags["gepa_explorer.worker"] == summary["worker"]
        assert "events.jsonl" in {a.path for a in client.list_artifacts(summary["run_id"])}


@pytest.mark.slow
def test_ctrl_c_of_the_follower_cancels_the_run_through_the_queue(workers, redis_url, mlflow_postgres_url, tmp_path):
    client = submit(redis_url, mlflow_postgres_url, tmp_path / "client", *SLOW)
    lines = []
    wait_for(lambda: _read_until(client, lines, "candidate 0 scored"), 120, "the baseline's score")
    client.send_signal(signal.SIGINT)
    out, err = client.communicate(timeout=120)
    summary = summary_of(out)
    assert client.returncode == 0, err[-2000:]
    assert summary["status"] == "cancelled" and summary["stopped_by"] == "cancelled"
    run = mlflow.MlflowClient(mlflow_postgres_url).get_run(summary["run_id"])
    assert run.info.status == "KILLED"
    events = _artifact_events(mlflow_postgres_url, summary["run_id"])
    assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_finished"
    assert events[-1]["status"] == "cancelled"


@pytest.mark.slow
def test_a_killed_worker_fails_its_run_within_a_minute_keeping_its_events_and_a_resume_matches(
    workers, redis_url, mlflow_postgres_url, tmp_path
):
    from rq.job import Job

    client = submit(redis_url, mlflow_postgres_url, tmp_path / "client", *SLOW)
    lines: list[str] = []
    wait_for(lambda: _read_until(client, lines, "iteration 2:"), 180, "two iterations")
    conn = redis.Redis.from_url(redis_url)
    ref = next(line.split()[2].rstrip(";") for line in lines if line.startswith("Queued as"))
    job = Job.fetch(ref, connection=conn)
    from rq import Worker

    holder = Worker.find_by_key(f"rq:worker:{job.worker_name}", connection=conn)
    os.kill(holder.pid, signal.SIGKILL)  # the RQ worker running the run: its horse must follow it
    killed = time.monotonic()
    out, err = client.communicate(timeout=90)
    ended_after = time.monotonic() - killed
    summary = summary_of(out)
    assert ended_after < 60, ended_after
    assert client.returncode == 1
    last = err.strip().splitlines()[-1]
    assert "Run failed: The worker running it" in last and "died" in last, err[-2000:]
    tracking = mlflow.MlflowClient(mlflow_postgres_url)
    run = tracking.get_run(summary["run_id"])
    assert run.info.status == "FAILED"
    events = _artifact_events(mlflow_postgres_url, summary["run_id"])
    assert sum(1 for e in events if e["type"] == "iteration") >= 2
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "failed"
    assert "died" in events[-1]["error"]

    command = ["resume", summary["run_id"], "--queue", redis_url, "--tracking-uri", mlflow_postgres_url, "--quiet"]
    resumed = subprocess.run(
        [sys.executable, "-m", "core", *command],
        cwd=ROOT,
        env=cli_env(tmp_path / "client"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = summary_of(resumed.stdout)
    whole = submit(redis_url, mlflow_postgres_url, tmp_path / "client", *SLOW, "--quiet")
    out, err = whole.communicate(timeout=300)
    uninterrupted = summary_of(out)
    assert tracking.get_run(again["run_id"]).data.tags["gepa_explorer.resumed_from"] == summary["run_id"]
    for key in ("iterations", "candidates", "metric_calls", "final_score"):
        assert again[key] == uninterrupted[key], (key, again, uninterrupted)


def test_an_unreachable_queue_is_one_line_and_exit_2(run_cli):
    result = run_cli("optimize", *QUICK, "--queue", "redis://127.0.0.1:1/0", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("error: cannot reach the queue at redis://127.0.0.1:1/0")
    assert "redis-server" in result.stderr and "Traceback" not in result.stderr


def test_a_queue_password_never_shows_in_the_error(run_cli):
    result = run_cli("optimize", *QUICK, "--queue", "redis://:s3cret@127.0.0.1:1/0", timeout=60)
    assert result.returncode == 2
    assert "s3cret" not in result.stderr and "***" in result.stderr


def test_worker_needs_exactly_one_of_a_run_folder_or_a_queue(run_cli, monkeypatch):
    monkeypatch.delenv("GEPA_EXPLORER_QUEUE_URL", raising=False)
    for args in ((), ("somewhere", "--queue", "redis://127.0.0.1:1/0")):
        result = run_cli("worker", *args, timeout=60)
        assert result.returncode == 2
        assert result.stderr.startswith("error: worker needs exactly one of RUN_DIR or --queue")


def test_a_key_sent_through_the_queue_is_never_in_redis_in_plain_text(redis_url, monkeypatch):
    from cryptography.fernet import Fernet

    from core.queue import QueueExecutor, decrypt_key, secret_key

    monkeypatch.setenv("GEPA_EXPLORER_QUEUE_SECRET", Fernet.generate_key().decode())
    handle = QueueExecutor(redis_url).submit(SERVER, api_key="sk-plain-text-key", ref="r1")
    conn = redis.Redis.from_url(redis_url)
    everything = b"".join(_dump(conn, key) for key in conn.keys("*"))
    assert b"sk-plain-text-key" not in everything
    assert decrypt_key("r1", conn.get(secret_key("r1"))) == "sk-plain-text-key"
    handle.cancel()  # still queued: cancelled at once, its ciphertext dropped
    assert not conn.exists(secret_key("r1"))
    assert handle.outcome().status == "rejected"


def test_a_key_without_the_shared_secret_is_refused(redis_url, monkeypatch):
    from core.errors import InputError
    from core.queue import QueueExecutor

    monkeypatch.delenv("GEPA_EXPLORER_QUEUE_SECRET", raising=False)
    with pytest.raises(InputError, match="GEPA_EXPLORER_QUEUE_SECRET"):
        QueueExecutor(redis_url).submit(SERVER, api_key="sk-x", ref="r2")
    assert not redis.Redis.from_url(redis_url).exists("rq:job:r2")


def test_queue_state_says_the_place_workers_and_runs_in_flight(redis_url):
    from core.queue import QueueExecutor, queue_state

    executor = QueueExecutor(redis_url)
    for ref in ("a", "b", "c"):
        executor.submit(SERVER, ref=ref)
    state = queue_state(executor.conn, "c")
    assert (state.position, state.waiting, state.workers_alive, state.in_flight) == (2, 3, 0, 0)
    assert state.caption() == "Queued run: #3 of 3 waiting · 0 workers alive · 0 runs in flight"


def test_a_queued_run_needs_a_tracking_server_not_a_local_file(redis_url):
    from core.errors import InputError
    from core.queue import QueueExecutor

    with pytest.raises(InputError, match="tracking server its worker can reach"):
        QueueExecutor(redis_url).submit(OptimizationConfig(tracking_uri="sqlite:////tmp/x.db"), ref="r3")


def _dump(conn, key: bytes) -> bytes:
    kind = conn.type(key)
    if kind == b"string":
        return conn.get(key) or b""
    if kind == b"hash":
        return b"".join(k + v for k, v in conn.hgetall(key).items())
    if kind == b"list":
        return b"".join(conn.lrange(key, 0, -1))
    if kind == b"stream":
        return b"".join(b"".join(f.keys()) + b"".join(f.values()) for _, f in conn.xrange(key))
    return b""


def _read_until(process: subprocess.Popen, lines: list[str], needle: str) -> bool:
    line = process.stderr.readline()
    if line:
        lines.append(line.strip())
    if process.poll() is not None and not line:
        raise AssertionError("the client ended early:\n" + "\n".join(lines[-20:]))
    return any(needle in seen for seen in lines)


def _artifact_events(tracking: str, run_id: str) -> list[dict]:
    path = mlflow.MlflowClient(tracking).download_artifacts(run_id, "events.jsonl")
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
