"""Seconds from a ready Streamlit server to the first page shown (its title visible) in Chromium.

Starts ``streamlit run streamlit_app.py`` with no configuration on a free loopback port, on a home whose
local store exists, waits for its health check, then loads ``/`` in a fresh browser context several
times. The first load of a new server process is reported on its own (it imports the app's modules),
then the median of the loads right after it (while the sidebar's status checks run in their child
processes, sharing the CPU), then the median of loads once they have settled. Before that, one first
start on a brand-new home is timed on its own: it includes making the local store.

    python benchmarks/app_startup.py [--loads 5] [--settle 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from _common import CHROMIUM, CHROMIUM_ARGS, prepare_home, streamlit_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait before the settled loads")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def load(url: str) -> float:
            context = browser.new_context()
            page = context.new_page()
            began = time.perf_counter()
            page.goto(url)
            page.get_by_role("heading", name="GEPA Explorer").wait_for(timeout=120_000)
            seconds = time.perf_counter() - began
            context.close()
            return seconds

        with tempfile.TemporaryDirectory() as home, streamlit_server(home) as (url, _):
            first_start = load(url)  # a brand-new home: the local store is made before the page shows
        with tempfile.TemporaryDirectory() as home:
            prepare_home(home)
            with streamlit_server(home) as (url, ready):
                loads = [load(url) for _ in range(args.loads)]
                time.sleep(args.settle)
                settled = [load(url) for _ in range(args.loads)]
        browser.close()
    print(f"first_start_on_a_new_home_seconds={first_start:.2f} (creates the local store, once)")
    print(f"server_ready_seconds={ready:.2f}")
    print(f"first_page_first_load_seconds={loads[0]:.2f}")
    print(f"first_page_median_later_loads_seconds={statistics.median(loads[1:]):.2f}")
    print(f"first_page_median_loads_after_settling_seconds={statistics.median(settled):.2f}")


if __name__ == "__main__":
    main()
