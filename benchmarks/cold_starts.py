"""Cold starts of the app as a workshop's newcomers meet it: a brand-new home each time, no configuration.

    python benchmarks/cold_starts.py [--starts 20]

Each start launches ``streamlit run streamlit_app.py`` on a new, empty ``GEPA_EXPLORER_HOME`` and opens
it in Chromium. Even starts press **Run the default optimization** as soon as it shows; odd ones hop
Prompts → Optimize → Results → Welcome first. A start is *clean* when no page it showed had an error
box or a traceback; it *finished* when the run reached "Optimization finished". Target: all clean,
all finished.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import CHROMIUM, CHROMIUM_ARGS, streamlit_server

HOPS = (("/prompts", "Prompts"), ("/optimize", "Optimize"), ("/results", "Results"), ("/", "GEPA Explorer"))


def problems_on(page) -> list[str]:
    found = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    if page.locator("[data-testid='stException']").count() or "Traceback" in page.inner_text("body"):
        found.append("a traceback")
    return [" ".join(text.split())[:200] for text in found]


def settle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=120_000,
    )


def one_start(browser, hop: bool) -> tuple[list[str], bool, float]:
    """(problems seen, finished, seconds from opening the app to "Optimization finished")."""
    seen: list[str] = []
    with tempfile.TemporaryDirectory() as home, streamlit_server(home, Path(home) / "streamlit.log") as (url, _):
        context = browser.new_context(viewport={"width": 1280, "height": 1600})
        page = context.new_page()
        began = time.perf_counter()
        page.goto(url)
        page.get_by_role("heading", name="GEPA Explorer").wait_for(timeout=120_000)
        if hop:
            for path, heading in HOPS:
                page.goto(url + path)
                page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=120_000)
                settle(page)
                seen += problems_on(page)
        page.get_by_role("button", name="Run the default optimization").click()
        finished = True
        try:
            page.get_by_text("Optimization finished").wait_for(timeout=300_000)
            settle(page)
        except Exception:  # noqa: BLE001 - a run that never finishes is what this counts
            finished = False
        seconds = time.perf_counter() - began
        seen += problems_on(page)
        context.close()
    return seen, finished, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    clean = finished = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for start in range(args.starts):
            hop = start % 2 == 1
            problems, done, seconds = one_start(browser, hop)
            clean += not problems
            finished += done
            how = "hopped between pages first" if hop else "clicked at once"
            print(
                f"start {start + 1:2d} ({how}): {problems or 'clean'}, "
                f"{'finished' if done else 'NOT finished'} in {seconds:.1f}s",
                flush=True,
            )
        browser.close()
    print(f"cold_starts={args.starts}")
    print(f"clean={clean}")
    print(f"runs_finished={finished}")
    print(f"meets_targets={clean == finished == args.starts}")


if __name__ == "__main__":
    main()
