"""Shared helpers for the benchmark scripts: an offline endpoint and the app in their own processes,
timing, medians."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def offline_endpoint(delay_ms: float = 0.0):
    """``python -m core serve-offline`` in its own process; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "serve-offline", "--port", str(port), "--delay-ms", str(delay_ms)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the offline endpoint did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    return timed_with_memory(cmd, env)[0]


def timed_with_memory(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, float]:
    """Seconds the command took, and its process's peak resident memory in MB (``ru_maxrss``)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({process.returncode}):\n{tail}")
    return seconds, usage.ru_maxrss / 1024


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def median(values: list[float]) -> float:
    return statistics.median(values)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def streamlit_server(home: str, log: Path | None = None):
    """``streamlit run streamlit_app.py`` with no configuration but ``GEPA_EXPLORER_HOME=home``, on a
    free loopback port; yields (its URL, seconds until its health check answered)."""
    port = free_port()
    started = time.perf_counter()
    env = base_env(GEPA_EXPLORER_HOME=home)
    env.pop("MLFLOW_TRACKING_URI", None)
    output = log.open("w") if log else subprocess.DEVNULL
    flags = ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", *flags],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("streamlit did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", time.perf_counter() - started
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def prepare_home(home: str) -> None:
    """Make the home's local store (what the app's first start does), so a benchmark times what it means to."""
    code = "from core.store import prepare_store; prepare_store()"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base_env(GEPA_EXPLORER_HOME=home), check=True)
