"""Seconds from a click on "Run optimization" to the first progress on screen, and to "Optimization
finished", for the default demo run in a real browser; and the memory of the run's process.

Starts ``streamlit run streamlit_app.py`` with no configuration on a home whose local store exists,
loads the Optimize page in Chromium and waits until the sidebar says the store and the models answer
and ``--settle`` seconds more (the app starts its warm workers with the first page; a class opens
the app well before anyone clicks). Then, ``--runs`` times, each in a fresh browser session: a click
on "Run optimization" with the page's defaults (the default demo run: offline model, budget 300,
patience 6, the bundled 30/30/30 split, every candidate scored on test at the end), the time until
the live view shows progress ("Scoring the baseline: ..." or "... metric calls used") and until it
says "Optimization finished".

Memory, sampled every 50 ms from ``/proc/PID/smaps_rollup`` of the run's process (the pid in its run
folder) while it runs: its peak RSS, and its peak USS (Private_Clean + Private_Dirty: the pages only
this process holds, what the run adds on top of the warm worker it was forked from, whose pages it
shares) and PSS (its shared pages split among the processes sharing them). Also the RSS of the
process it was forked from (the fork server; for a cold ``python -m core worker``, its parent is the
app's server itself, not counted).

    python benchmarks/app_run_latency.py [--runs 3] [--settle 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from _common import CHROMIUM, CHROMIUM_ARGS, prepare_home, streamlit_server

FIRST_PROGRESS = ("Scoring the baseline", "metric calls used")


def smaps(pid: int) -> dict[str, int]:
    """kB figures of ``/proc/PID/smaps_rollup`` (Rss, Pss, Private_Clean, ...); empty once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return {}
    figures = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            figures[name.strip()] = int(rest.split()[0])
    return figures


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class MemorySampler(threading.Thread):
    """Peak RSS, USS and PSS (MB) of the run whose folder is ``folder``, once its pid file appears."""

    def __init__(self, runs: Path, known: set[str]):
        super().__init__(daemon=True)
        self.runs, self.known = runs, known
        self.stop = threading.Event()
        self.peak = {"rss": 0.0, "uss": 0.0, "pss": 0.0}
        self.parent_rss = 0.0
        self.pid: int | None = None

    def run(self) -> None:
        while not self.stop.is_set() and self.pid is None:
            for folder in self.runs.glob("*/pid"):
                if folder.parent.name not in self.known and folder.read_text().strip().isdigit():
                    self.pid = int(folder.read_text())
            time.sleep(0.01)
        parent = parent_of(self.pid) if self.pid else None
        while not self.stop.is_set():
            figures = smaps(self.pid)
            if not figures:
                break
            uss = figures.get("Private_Clean", 0) + figures.get("Private_Dirty", 0)
            for key, value in (("rss", figures.get("Rss", 0)), ("uss", uss), ("pss", figures.get("Pss", 0))):
                self.peak[key] = max(self.peak[key], value / 1024)
            if parent is not None:
                self.parent_rss = max(self.parent_rss, smaps(parent).get("Rss", 0) / 1024)
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between the settled page and the clicks")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    firsts, ends, memory = [], [], []
    with tempfile.TemporaryDirectory() as home, sync_playwright() as playwright:
        prepare_home(home)
        runs = Path(home) / "runs"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with streamlit_server(home) as (url, _):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{url}/optimize")
            page.get_by_text("Task model:").wait_for(timeout=180_000)  # the sidebar's checks are in
            time.sleep(args.settle)
            context.close()
            for attempt in range(args.runs):
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{url}/optimize")
                button = page.get_by_role("button", name="Run optimization")
                button.wait_for(timeout=120_000)
                page.wait_for_timeout(500)  # the page has settled: the click is not lost in a rerun
                known = {p.name for p in runs.iterdir()} if runs.exists() else set()
                sampler = MemorySampler(runs, known)
                sampler.start()
                clicked = time.perf_counter()
                button.click()
                progress = page.get_by_text(FIRST_PROGRESS[0]).or_(page.get_by_text(FIRST_PROGRESS[1]))
                progress.first.wait_for(timeout=120_000)
                first = time.perf_counter() - clicked
                page.get_by_text("Optimization finished").wait_for(timeout=300_000)
                end = time.perf_counter() - clicked
                sampler.stop.set()
                sampler.join(timeout=5)
                context.close()
                firsts.append(first)
                ends.append(end)
                memory.append((sampler.peak, sampler.parent_rss))
                peak = sampler.peak
                print(
                    f"run {attempt + 1}: first progress {first:.2f}s, finished {end:.2f}s; run process peak "
                    f"RSS {peak['rss']:.0f} MB, USS {peak['uss']:.0f} MB, PSS {peak['pss']:.0f} MB "
                    f"(forked from a process of {sampler.parent_rss:.0f} MB RSS)",
                    flush=True,
                )
        browser.close()
    print(f"click_to_first_progress_median_seconds={statistics.median(firsts):.2f}")
    print(f"click_to_finished_median_seconds={statistics.median(ends):.2f}")
    for key in ("rss", "uss", "pss"):
        print(f"run_process_peak_{key}_median_mb={statistics.median(m[key] for m, _ in memory):.0f}")
    print(f"forked_from_rss_median_mb={statistics.median(p for _, p in memory):.0f}")


if __name__ == "__main__":
    main()
