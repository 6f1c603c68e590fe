"""Shared use: the CLI against a real ``mlflow server`` started by the test."""

import json

import pytest

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
    with open(path) as handle:
        events = [json.loads(line) for line in handle]
    assert events[-1]["type"] == "run_finished" and events[-1]["final_score"] == summary["final_score"]
    name, version = summary["optimized_uri"].removeprefix("prompts:/").split("/")
    registered = client.get_prompt_version(name, version)
    best = next(e for e in events if e["type"] == "validation" and e["candidate"] == events[-1]["best_candidate"])
    assert registered.template == best["template"]


def test_unreachable_server_is_one_line(run_cli):
    result = run_cli("optimize", "--tracking-uri", "http://127.0.0.1:9", "--budget", "100")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
