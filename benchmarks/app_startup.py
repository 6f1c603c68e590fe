"""Seconds from a ready Streamlit server to the first page shown (its title visible) in Chromium.

Starts ``streamlit run streamlit_app.py`` with no configuration on a free loopback port, waits for its
health check, then loads ``/`` in a fresh browser context several times. The first load of a new server
process is reported on its own (it imports the app's modules), then the median of the loads right after
it (while the sidebar's status checks run in their child processes, sharing the CPU), then the median
of loads once they have settled.

    python benchmarks/app_startup.py [--loads 5] [--settle 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from _common import ROOT, base_env, free_port

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait before the settled loads")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env=base_env(GEPA_EXPLORER_HOME=home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.05)
            ready = time.perf_counter() - started
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)

                def load() -> float:
                    context = browser.new_context()
                    page = context.new_page()
                    began = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{port}/")
                    page.get_by_role("heading", name="GEPA Explorer").wait_for(timeout=60_000)
                    seconds = time.perf_counter() - began
                    context.close()
                    return seconds

                loads = [load() for _ in range(args.loads)]
                time.sleep(args.settle)
                settled = [load() for _ in range(args.loads)]
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=15)
    print(f"server_ready_seconds={ready:.2f}")
    print(f"first_page_first_load_seconds={loads[0]:.2f}")
    print(f"first_page_median_later_loads_seconds={statistics.median(loads[1:]):.2f}")
    print(f"first_page_median_loads_after_settling_seconds={statistics.median(settled):.2f}")


if __name__ == "__main__":
    main()
