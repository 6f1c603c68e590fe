"""Runs as processes: progress from the event log, cancel at an iteration boundary, runs side by side."""

import time

import pytest

from core.config import OptimizationConfig
from core.events import Candidate, Proposal, RunFinished, RunStarted, of_type
from core.models import ModelConfig
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
    assert isinstance(first[0], RunStarted)
    outcome = wait_for(handle.outcome)
    assert outcome.status == "finished", outcome
    wait_for(lambda: not handle.is_alive(), timeout=15)
    info = get_run(handle.run_id)
    assert info.status == "FINISHED" and info.explorer_status == "finished"
    events = load_events(info)
    assert isinstance(events[-1], RunFinished)
    assert [r.run_id for r in list_optimization_runs()] == [handle.run_id]


def test_cancel_stops_at_an_iteration_boundary_and_keeps_everything(explorer_home, tracking, endpoint_factory):
    server = endpoint_factory(delay_ms=40)
    handle = start_run(slow_config(server))
    wait_for(lambda: any(isinstance(e, Proposal) for e in handle.read_events()))
    handle.cancel()
    outcome = wait_for(handle.outcome)
    assert outcome.status == "cancelled", outcome
    info = get_run(handle.run_id)
    assert info.status == "KILLED" and info.explorer_status == "cancelled"
    events = load_events(info)  # from the MLflow artifact, the run being over
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.stopped_by == "cancelled"
    assert finished.registered is None and "stopped" in finished.not_registered_reason
    assert max(getattr(e, "metric_calls", 0) for e in events) < 400
    iterations = of_type(events, Proposal)
    assert iterations and iterations[-1].iteration == outcome.summary["iterations"]
    from core import prompts

    assert [v.version for v in prompts.list_versions("short-answer-qa")] == [1]


def test_cancel_can_register_the_best_candidate_so_far(explorer_home, tracking, endpoint_factory):
    server = endpoint_factory(delay_ms=40)
    handle = start_run(slow_config(server))
    wait_for(lambda: any(isinstance(e, Candidate) and e.index >= 1 for e in handle.read_events()))
    handle.cancel(register_best=True)
    outcome = wait_for(handle.outcome)
    assert outcome.status == "cancelled"
    assert outcome.summary["optimized_uri"] == "prompts:/short-answer-qa/2"


def test_two_runs_at_once_do_not_interfere(explorer_home, tracking):
    handles = [start_run(OptimizationConfig(budget=100, seed=seed, register=False)) for seed in (0, 1)]
    outcomes = [wait_for(h.outcome, timeout=300) for h in handles]
    assert [o.status for o in outcomes] == ["finished", "finished"], outcomes
    assert handles[0].run_id != handles[1].run_id
    logs = [load_events(get_run(h.run_id)) for h in handles]
    assert [events[0].config["seed"] for events in logs] == [0, 1]
    assert [events[0].mlflow.run_id for events in logs] == [h.run_id for h in handles]
    assert all(len(of_type(events, RunStarted)) == 1 for events in logs)


def test_bad_config_is_reported_in_the_outcome(explorer_home, tracking, tmp_path):
    handle = start_run(OptimizationConfig(dataset_path=str(tmp_path / "missing.jsonl")))
    outcome = wait_for(handle.outcome)
    assert outcome.status == "rejected" and "no such file" in outcome.error
    assert handle.run_id is None


def test_a_run_whose_process_died_is_salvaged_and_stays_readable(explorer_home, tracking, endpoint_factory):
    import os
    import signal

    from core.runs import orphaned, salvage_if_orphaned

    server = endpoint_factory(delay_ms=40)
    handle = start_run(slow_config(server))
    wait_for(lambda: any(isinstance(e, Proposal) for e in handle.read_events()))
    os.kill(handle.pid, signal.SIGKILL)
    wait_for(lambda: not handle.is_alive(), timeout=20)
    info = get_run(handle.run_id)
    assert info.status == "RUNNING" and orphaned(info)
    info = salvage_if_orphaned(info)
    assert info is not None and info.status == "FAILED" and not orphaned(info)
    assert salvage_if_orphaned(info) is None  # once is enough
    events = load_events(info)  # from the artifact the salvage logged
    assert any(isinstance(e, Proposal) for e in events)


def test_open_run_says_a_run_was_refused_before_it_began(explorer_home, tracking, tmp_path):
    from core.rundir import RunDir, WorkerOutcome
    from core.runs import open_run

    folder = RunDir.create(explorer_home / "runs")
    folder.write_outcome(WorkerOutcome("rejected", "mine.jsonl, row 2: no expected answer"))
    opened = open_run(folder.name)
    assert opened.phase == "rejected" and "row 2: no expected answer" in opened.message
    assert opened.view is None and not opened.is_live


def test_open_run_of_a_dead_process_that_never_reached_mlflow_is_failed_with_what_it_wrote(explorer_home, tracking):
    import json
    import subprocess
    import sys

    from conftest import fixture_events
    from core.rundir import RunDir
    from core.runs import open_run

    folder = RunDir.create(explorer_home / "runs")
    folder.events_path.write_text("".join(json.dumps(e) + "\n" for e in fixture_events("run_short_qa_seed0")[:5]))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder.write_pid(gone.pid)
    opened = open_run(folder.name)
    assert opened.phase == "failed" and "ended unexpectedly" in opened.message
    assert opened.view is not None and len(opened.view.candidates) >= 1


def test_open_run_of_a_finished_run_reads_its_mlflow_artifact(explorer_home, tracking):
    from conftest import fixture_events, record_run
    from core.runs import open_run

    run_id = record_run(fixture_events("run_short_qa_seed0"))
    opened = open_run(run_id)
    assert opened.phase == "finished" and opened.view.best_candidate == 3 and opened.info.run_id == run_id


# --------------------------------------------------------------------------------------------------
# Warm workers: runs forked from the fork server (core.forkserver), the default executor's way
# --------------------------------------------------------------------------------------------------


def parent_pid(pid: int) -> int:
    from pathlib import Path

    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def forked_warm(handle) -> bool:
    """Whether the run's process is a child of this process's fork server (the warm path)."""
    from core.executors import default_executor

    server = default_executor().forkserver
    return server.pid is not None and parent_pid(handle.pid) == server.pid


def test_a_warm_worker_killed_mid_run_is_salvaged(explorer_home, tracking, endpoint_factory):
    import os
    import signal

    from core.runs import open_run

    server = endpoint_factory(delay_ms=40)
    handle = start_run(slow_config(server))
    assert forked_warm(handle)
    wait_for(lambda: any(isinstance(e, Proposal) for e in handle.read_events()))
    assert get_run(handle.run_id).tags["gepa_explorer.pid"] == str(handle.pid)
    os.kill(handle.pid, signal.SIGKILL)
    wait_for(lambda: not handle.is_alive(), timeout=20)
    opened = open_run(handle.run_dir.name)
    assert opened.phase == "failed" and opened.salvaged and "ended unexpectedly" in opened.message
    assert opened.info.status == "FAILED" and any(isinstance(e, Proposal) for e in opened.events)
    assert any(isinstance(e, Proposal) for e in load_events(get_run(handle.run_id)))  # the salvaged artifact


def test_baseline_progress_is_written_before_its_first_validation_event(explorer_home, tracking, endpoint_factory):
    from core.analysis import build_run_view
    from core.events import BaselineProgress

    server = endpoint_factory(delay_ms=30)
    handle = start_run(slow_config(server, concurrency=1))
    wait_for(lambda: any(isinstance(e, Candidate) for e in handle.read_events()))
    handle.cancel()
    events = handle.read_events()
    first = next(i for i, e in enumerate(events) if isinstance(e, Candidate))
    progress = [e for e in events[:first] if isinstance(e, BaselineProgress)]
    assert isinstance(events[0], RunStarted) and isinstance(events[1], BaselineProgress)
    assert progress[0].scored == 0 and progress[0].total == 30
    assert any(0 < e.scored < 30 for e in progress), progress  # 30 calls of 30 ms: seen on the way
    assert [e.scored for e in progress] == sorted(e.scored for e in progress)
    assert not any(isinstance(e, BaselineProgress) for e in events[first:])
    assert build_run_view(events[:first]).baseline_progress == progress[-1]
    assert build_run_view(events).baseline_progress is None
    assert wait_for(handle.outcome).status == "cancelled"


def test_the_api_key_never_reaches_a_file_or_a_workers_command_line(explorer_home, tracking, endpoint_factory):
    from pathlib import Path

    from core.executors import default_executor

    key = "sk-warm-test-0123456789abcdef"
    server = endpoint_factory(api_key=key)  # refuses any other key: the run finishing proves it had it
    models = ModelConfig("openai", model="gepa-offline-demo", base_url=server.base_url, api_key=key)
    handle = start_run(OptimizationConfig(models=models, budget=100, patience=0))
    assert forked_warm(handle)
    for pid in (handle.pid, default_executor().forkserver.pid):
        for part in ("cmdline", "environ"):
            assert key.encode() not in Path(f"/proc/{pid}/{part}").read_bytes(), (pid, part)
    outcome = wait_for(handle.outcome)
    assert outcome.status == "finished", outcome
    leaks = [str(p) for p in explorer_home.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaks == []


def test_with_warm_workers_off_a_run_is_a_fresh_worker_process(explorer_home, tracking, tmp_path, monkeypatch):
    import os

    from core.executors import LocalExecutor
    from core.rundir import RunDir

    monkeypatch.setenv("GEPA_EXPLORER_WARM_WORKERS", "0")
    executor = LocalExecutor()
    assert not executor.warm
    folder = RunDir.create(explorer_home / "runs")
    folder.write_config(OptimizationConfig(dataset_path=str(tmp_path / "missing.jsonl")).to_dict())
    handle = executor.start(folder, api_key=None)
    assert parent_pid(handle.pid) == os.getpid() and folder.pid() == handle.pid
    outcome = wait_for(handle.outcome)
    assert outcome.status == "rejected" and "no such file" in outcome.error
