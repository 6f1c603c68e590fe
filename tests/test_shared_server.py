"""Shared use: the CLI against a real ``mlflow server`` started by the test."""

import time
from pathlib import Path

import pytest

from conftest import running_mlflow_server, stop_process_group
from core.analysis import build_run_view
from core.events import read_events

pytestmark = [pytest.mark.slow, pytest.mark.server]


def test_cli_runs_against_a_real_mlflow_server(run_cli, mlflow_server, tmp_path):
    result = run_cli("optimize", "--tracking-uri", mlflow_server, "--budget", "100", "--seed", "0")
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert summary["optimized_uri"] is not None

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["gepa_explorer.kind"] == "optimization"
    path = client.download_artifacts(summary["run_id"], "events.jsonl", str(tmp_path))
    view = build_run_view(read_events(Path(path)))
    assert view.finished is not None and view.final_score == summary["final_score"]
    name, version = summary["optimized_uri"].removeprefix("prompts:/").split("/")
    registered = client.get_prompt_version(name, version)
    assert registered.template == view.best.template


def test_unreachable_server_is_one_line(run_cli):
    result = run_cli("optimize", "--tracking-uri", "http://127.0.0.1:9", "--budget", "100")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_a_server_lost_during_the_run_is_one_line_and_the_event_log_is_kept(run_cli, tmp_path, explorer_home):
    import subprocess
    import sys
    import threading

    from conftest import ROOT, cli_env

    with running_mlflow_server(tmp_path) as (url, server):
        run_dir = tmp_path / "run"
        args = ["--tracking-uri", url, "--budget", "150", "--patience", "0", "--offline-delay-ms", "30"]
        cli = subprocess.Popen(
            [sys.executable, "-m", "core", "optimize", *args, "--no-register", "--run-dir", str(run_dir)],
            cwd=ROOT,
            env=cli_env(explorer_home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(cli.communicate(timeout=300)))
        reader.start()
        events = run_dir / "events.jsonl"
        deadline = time.monotonic() + 120
        while not (events.exists() and '"type": "validation"' in events.read_text()):
            assert time.monotonic() < deadline and cli.poll() is None, "the run never scored its baseline"
            time.sleep(0.2)
        stop_process_group(server)  # the store goes away while the search runs
        reader.join(timeout=300)
    stdout, stderr = out
    assert cli.returncode == 2, stderr
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "could not record the run's end" in error and str(events) in error
    assert "Traceback" not in stderr and stdout == ""
    assert '"type": "run_finished"' in events.read_text()  # nothing recorded is lost
