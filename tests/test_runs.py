"""Runs as processes: progress from the event log, cancel at an iteration boundary, runs side by side."""

import time

import pytest

from core.events import of_type
from core.models import ModelConfig
from core.optimization import OptimizationConfig
from core.runs import get_run, list_optimization_runs, load_events, start_run

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float = 180, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out waiting")


def slow_config(server, **overrides) -> OptimizationConfig:
    models = ModelConfig("openai", model="gepa-offline-demo", base_url=server.base_url, api_key="not-needed")
    return OptimizationConfig(models=models, budget=400, patience=0, **overrides)


def test_run_reports_progress_then_finishes(explorer_home, tracking):
    handle = start_run(OptimizationConfig(budget=100, seed=2))
    first = wait_for(lambda: handle.new_events())
    assert first[0]["type"] == "run_started"
    outcome = wait_for(handle.outcome)
    assert outcome["status"] == "finished", outcome
    wait_for(lambda: not handle.is_alive(), timeout=15)
    info = get_run(handle.run_id)
    assert info.status == "FINISHED" and info.explorer_status == "finished"
    events = load_events(info)
    assert events[-1]["type"] == "run_finished"
    assert [r.run_id for r in list_optimization_runs()] == [handle.run_id]


def test_cancel_stops_at_an_iteration_boundary_and_keeps_everything(explorer_home, tracking, endpoint_factory):
    server = endpoint_factory(delay_ms=40)
    handle = start_run(slow_config(server))
    wait_for(lambda: any(e["type"] == "iteration" for e in handle.read_events()))
    handle.cancel()
    outcome = wait_for(handle.outcome)
    assert outcome["status"] == "cancelled", outcome
    info = get_run(handle.run_id)
    assert info.status == "KILLED" and info.explorer_status == "cancelled"
    events = load_events(info)  # from the MLflow artifact, the run being over
    finished = events[-1]
    assert finished["type"] == "run_finished" and finished["stopped_by"] == "cancelled"
    assert finished["registered"] is None and "stopped" in finished["not_registered_reason"]
    assert finished["metric_calls"] < 400
    iterations = list(of_type(events, "iteration"))
    assert iterations and iterations[-1]["iteration"] == finished["iterations"]
    from core import prompts

    assert [v.version for v in prompts.list_versions("short-answer-qa")] == [1]


def test_cancel_can_register_the_best_candidate_so_far(explorer_home, tracking, endpoint_factory):
    server = endpoint_factory(delay_ms=40)
    handle = start_run(slow_config(server))
    wait_for(lambda: any(e["type"] == "validation" and e["candidate"] >= 1 for e in handle.read_events()))
    handle.cancel(register_best=True)
    outcome = wait_for(handle.outcome)
    assert outcome["status"] == "cancelled"
    assert outcome["summary"]["optimized_uri"] == "prompts:/short-answer-qa/2"


def test_two_runs_at_once_do_not_interfere(explorer_home, tracking):
    handles = [start_run(OptimizationConfig(budget=100, seed=seed, register=False)) for seed in (0, 1)]
    outcomes = [wait_for(h.outcome, timeout=300) for h in handles]
    assert [o["status"] for o in outcomes] == ["finished", "finished"], outcomes
    assert handles[0].run_id != handles[1].run_id
    logs = [load_events(get_run(h.run_id)) for h in handles]
    assert [events[0]["config"]["seed"] for events in logs] == [0, 1]
    assert [events[0]["mlflow"]["run_id"] for events in logs] == [h.run_id for h in handles]
    assert all(sum(1 for e in events if e["type"] == "run_started") == 1 for events in logs)


def test_bad_config_is_reported_in_the_outcome(explorer_home, tracking, tmp_path):
    handle = start_run(OptimizationConfig(dataset_path=str(tmp_path / "missing.jsonl")))
    outcome = wait_for(handle.outcome)
    assert outcome["status"] == "rejected" and "no such file" in outcome["error"]
    assert handle.run_id is None


def test_a_run_whose_process_died_is_salvaged_and_stays_readable(explorer_home, tracking, endpoint_factory):
    import os
    import signal

    from core.runs import orphaned, salvage_if_orphaned

    server = endpoint_factory(delay_ms=40)
    handle = start_run(slow_config(server))
    wait_for(lambda: any(e["type"] == "iteration" for e in handle.read_events()))
    os.kill(handle.pid, signal.SIGKILL)
    wait_for(lambda: not handle.is_alive(), timeout=20)
    info = get_run(handle.run_id)
    assert info.status == "RUNNING" and orphaned(info)
    info = salvage_if_orphaned(info)
    assert info is not None and info.status == "FAILED" and not orphaned(info)
    assert salvage_if_orphaned(info) is None  # once is enough
    events = load_events(info)  # from the artifact the salvage logged
    assert any(e["type"] == "iteration" for e in events)
