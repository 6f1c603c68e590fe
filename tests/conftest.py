"""Shared fixtures: an isolated GEPA Explorer home and MLflow store, loopback endpoints, CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["services"]  # real Redis, PostgreSQL and mlflow-on-PostgreSQL fixtures (tests/services.py)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow SQLite file, made once: creating the schema takes seconds,
    copying it takes milliseconds."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    code = f"from core.store import prepare_store; prepare_store('sqlite:///{path}')"
    env = {**os.environ, "MLFLOW_LOGGING_LEVEL": "ERROR", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
    return path


def copy_store(empty: Path, folder: Path) -> Path:
    """A copy of a prepared store (with its readiness marker) in ``folder``."""
    shutil.copy(empty, folder / "mlflow.db")
    shutil.copy(empty.with_name("mlflow.db.ready"), folder / "mlflow.db.ready")
    return folder / "mlflow.db"


@pytest.fixture
def explorer_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> Path:
    """A fresh GEPA_EXPLORER_HOME with its own (empty) SQLite store, for one test."""
    home = tmp_path / "home"
    home.mkdir()
    copy_store(empty_store, home)
    monkeypatch.setenv("GEPA_EXPLORER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return home


@pytest.fixture
def tracking(explorer_home: Path) -> str:
    """MLflow pointed at the test's own SQLite store."""
    from core.store import configure_mlflow

    return configure_mlflow().tracking_uri


@pytest.fixture(scope="session")
def offline_server():
    """The offline demo model on a free loopback port, for the whole session."""
    from core.offline_model.server import OfflineServer

    with OfflineServer() as server:
        yield server


@pytest.fixture
def endpoint_factory():
    """Start offline endpoints with injected faults; all are stopped at the end of the test."""
    from core.offline_model.server import OfflineConfig, OfflineServer

    servers = []

    def start(**config) -> OfflineServer:
        server = OfflineServer(OfflineConfig(**config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update(GEPA_EXPLORER_HOME=str(home), PYTHONPATH=str(ROOT), LITELLM_LOCAL_MODEL_COST_MAP="True")
    env.update(extra)
    return env


class CliResult:
    def __init__(self, completed: subprocess.CompletedProcess):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    @property
    def summary(self) -> dict:
        lines = self.stdout.strip().splitlines()
        assert lines, f"no stdout; stderr:\n{self.stderr[-3000:]}"
        return json.loads(lines[-1])


@pytest.fixture
def run_cli(explorer_home: Path):
    """Run ``python -m core ...`` in a subprocess against the test's home."""

    def run(*args: str, timeout: float = 240, **env: str) -> CliResult:
        completed = subprocess.run(
            [sys.executable, "-m", "core", *args],
            cwd=ROOT,
            env=cli_env(explorer_home, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliResult(completed)

    return run


@pytest.fixture
def write_file(tmp_path: Path):
    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


def rows_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def short_qa() -> Path:
    return SAMPLE / "short_answer_qa.jsonl"


@pytest.fixture
def context_qa() -> Path:
    return SAMPLE / "context_qa.jsonl"


def iter_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file():
            yield path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(
    url: str, timeout: float = 120, *, process: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    """Wait until ``url`` answers; when ``process`` (the server) exits first, fail at once with the
    end of its ``log``."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
                raise RuntimeError(f"the server for {url} exited with status {process.returncode}:\n{tail}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@contextmanager
def running_mlflow_server(
    root: Path, *, backend_store_uri: str | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real ``mlflow server`` on a free loopback port with its artifacts in ``root / "artifacts"``
    (proxied) and its store in ``root`` (or at ``backend_store_uri``, a PostgreSQL URL say); yields
    its URL and process, and stops it on exit (if the test has not already)."""
    port = free_port()
    log = root / "server.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend_store_uri or f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", process=process, log=log)
        yield url, process
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session`` and everything it started (a server's workers)."""
    import signal

    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` for the whole session."""
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as (url, _):
        yield url


FIXTURES = Path(__file__).parent / "fixtures"


def record_run(
    events: list[dict[str, Any]] | None,
    *,
    status: str = "FINISHED",
    explorer_status: str = "finished",
    tags: dict[str, str] | None = None,
) -> str:
    """An optimization run in the current store carrying ``events`` as its ``events.jsonl`` artifact
    (None: no artifact), ended with MLflow ``status`` (RUNNING: left open). Returns its run id."""
    import tempfile

    import mlflow

    from core.store import configure_mlflow, ensure_experiment

    configure_mlflow()
    client = mlflow.MlflowClient()
    run = client.create_run(ensure_experiment(), run_name="fixture run")
    run_id = run.info.run_id
    for key, value in {
        "gepa_explorer.kind": "optimization",
        "gepa_explorer.status": explorer_status,
        "gepa_explorer.dataset": "short_answer_qa",
        "gepa_explorer.stopped_by": "budget",
        **(tags or {}),
    }.items():
        client.set_tag(run_id, key, value)
    for key, value in {"baseline_uri": "prompts:/short-answer-qa/1", "budget": 300, "patience": 0, "seed": 2}.items():
        client.log_param(run_id, key, value)
    client.log_metric(run_id, "initial_eval_score", 0.2)
    client.log_metric(run_id, "final_eval_score", 0.95)
    if events is not None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "events.jsonl"
            path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
            client.log_artifact(run_id, str(path))
    if status != "RUNNING":
        client.set_terminated(run_id, status=status)
    return run_id


def fixture_events(name: str) -> list[dict[str, Any]]:
    with open(FIXTURES / f"{name}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
def recorded_run(explorer_home: Path) -> str:
    """A finished optimization run in the test's store, recorded from a real run (fixture events)."""
    return record_run(fixture_events("run_short_qa_budget300"))
