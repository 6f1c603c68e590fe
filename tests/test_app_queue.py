"""The app on a queue (GEPA_EXPLORER_QUEUE_URL): a run from the Optimize page waits in the queue with its
place and the workers alive said, then a worker takes it and the same live panel follows it to the end."""

from __future__ import annotations

import pytest
from test_app import no_exception, optimize_page, texts, wait_until
from test_queue import start_worker, stop_worker

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_a_run_from_the_app_waits_in_the_queue_then_a_worker_runs_it(
    explorer_home, redis_url, mlflow_postgres_url, monkeypatch, tmp_path
):
    import mlflow

    from core import executors

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_postgres_url)
    monkeypatch.setenv("GEPA_EXPLORER_QUEUE_URL", redis_url)
    monkeypatch.setattr(executors, "_default", None)  # this process's executor: the queue's now
    at = optimize_page()
    at.number_input(key="optimize.budget").set_value(40).run()
    at.number_input(key="optimize.patience").set_value(0).run()
    at.button(key="optimize.run").click().run()
    no_exception(at)
    assert "Waiting in the queue for a worker" in texts(at)
    assert "Queued run: #1 of 1 waiting · 0 workers alive · 0 runs in flight" in texts(at)
    worker = start_worker(redis_url, tmp_path / "worker")
    try:
        wait_until(at, lambda a: "Optimization finished" in texts(a), timeout=300)
    finally:
        stop_worker(worker)
    run_id = next(e for e in at.get("page_link") if "run" in e.proto.query_string).proto.query_string.split("=")[-1]
    tags = mlflow.MlflowClient(mlflow_postgres_url).get_run(run_id).data.tags
    assert tags["gepa_explorer.worker"].split("-")[-2] == str(worker.pid)


def test_two_sessions_queue_their_runs_in_order_and_two_workers_run_both(
    explorer_home, redis_url, mlflow_postgres_url, monkeypatch, tmp_path
):
    import mlflow

    from core import executors

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_postgres_url)
    monkeypatch.setenv("GEPA_EXPLORER_QUEUE_URL", redis_url)
    monkeypatch.setattr(executors, "_default", None)
    sessions = []
    for seed in (1, 2):  # two participants' browsers, each with a run of its own
        at = optimize_page()
        at.number_input(key="optimize.budget").set_value(40).run()
        at.number_input(key="optimize.patience").set_value(0).run()
        at.number_input(key="optimize.seed").set_value(seed).run()
        at.button(key="optimize.run").click().run()
        no_exception(at)
        sessions.append(at)
    sessions[1].run()
    assert "#2 of 2 waiting" in texts(sessions[1])
    workers = [start_worker(redis_url, tmp_path / f"worker-{n}") for n in (1, 2)]  # separate homes
    try:
        for at in sessions:
            wait_until(at, lambda a: "Optimization finished" in texts(a), timeout=300)
    finally:
        for worker in workers:
            stop_worker(worker)
    client = mlflow.MlflowClient(mlflow_postgres_url)
    pids = {str(worker.pid) for worker in workers}
    for at in sessions:
        link = next(e for e in at.get("page_link") if "run" in e.proto.query_string)
        run = client.get_run(link.proto.query_string.split("=")[-1])
        assert run.info.status == "FINISHED"
        assert run.data.tags["gepa_explorer.worker"].split("-")[-2] in pids  # recorded with the worker that ran it
