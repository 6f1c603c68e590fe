"""scripts/workshop: the whole class on one host starts on free ports, runs a queued CLI run end to end,
and Ctrl+C stops everything it started."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from conftest import ROOT, cli_env, free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]

SCRIPT = ROOT / "scripts" / "workshop"
QUICK = ("--budget", "40", "--patience", "0", "--no-register", "--quiet")


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_help_names_every_option():
    result = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--state", "--workers", "--concurrency", "--network", "--app-port", "--redis-port"):
        assert option in result.stdout


def test_network_without_a_class_passcode_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GEPA_EXPLORER_CLASS_PASSCODE"}
    result = subprocess.run(
        [str(SCRIPT), "--network", "--state", str(tmp_path)], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: --network needs GEPA_EXPLORER_CLASS_PASSCODE")
    assert not any(tmp_path.iterdir())  # nothing was started or made


@pytest.fixture
def state(tmp_path: Path):
    """The workshop's state folder, in a folder the postgres user can reach (pytest's are private)."""
    folder = Path(tempfile.mkdtemp(prefix="gepa-workshop-test-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder / "state"
    shutil.rmtree(folder, ignore_errors=True)


def test_the_workshop_runs_a_queued_run_and_ctrl_c_stops_everything(tmp_path, state):
    ports = {name: free_port() for name in ("app", "mlflow", "redis", "postgres")}
    log = tmp_path / "workshop.log"
    command = [str(SCRIPT), "--state", str(state), "--workers", "1"]
    for name, port in ports.items():
        command += [f"--{name}-port", str(port)]
    env = {**os.environ, "GEPA_EXPLORER_HOME": str(tmp_path / "home")}
    env.pop("GEPA_EXPLORER_QUEUE_URL", None)
    with log.open("w") as out:
        workshop = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "Ready." not in log.read_text():
            assert workshop.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        tracking = f"http://127.0.0.1:{ports['mlflow']}"
        queue = f"redis://127.0.0.1:{ports['redis']}/0"
        run = subprocess.run(
            [sys.executable, "-m", "core", "optimize", *QUICK, "--queue", queue, "--tracking-uri", tracking],
            cwd=ROOT,
            env=cli_env(tmp_path / "client"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:] + log.read_text()[-2000:]
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        assert summary["status"] == "finished" and summary["worker"]
        assert mlflow.MlflowClient(tracking).get_run(summary["run_id"]).info.status == "FINISHED"
        stored = list((state / "artifacts").rglob("events.jsonl"))
        assert stored  # artifacts proxied into the workshop's folder
        for _ in range(120):  # the app answers too
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{ports['app']}/_stcore/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the app did not answer: " + log.read_text()[-2000:])
    finally:
        if workshop.poll() is None:
            os.kill(workshop.pid, signal.SIGINT)  # Ctrl+C
        workshop.wait(timeout=90)
    assert "Stopped." in log.read_text()
    for name, port in ports.items():
        assert not listening(port), f"{name} still listens on {port}"
    assert (state / "secrets.env").stat().st_mode & 0o077 == 0  # passwords: the owner's only
