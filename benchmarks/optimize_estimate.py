"""What the pre-run estimate costs the Optimize page on the offline model, in Chromium.

Starts ``streamlit run streamlit_app.py`` on a home whose local store exists and loads ``/optimize`` in a
fresh browser context several times: seconds to the Run optimization button and to the estimate (the
page draws the button first and fills the estimate in after one example has gone through the task model,
in a child process). The first load of a new server pays the reply probe (nothing is cached yet); later
loads read it from ``st.cache_data``, so the estimate should follow the button at once.

    python benchmarks/optimize_estimate.py [--loads 5]
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
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def load(url: str) -> tuple[float, float]:
            context = browser.new_context(viewport={"width": 1440, "height": 2600})
            page = context.new_page()
            began = time.perf_counter()
            page.goto(f"{url}/optimize")
            page.get_by_role("button", name="Run optimization").wait_for(timeout=180_000)
            button = time.perf_counter() - began
            page.get_by_text("model calls (").first.wait_for(timeout=180_000)
            estimate = time.perf_counter() - began
            context.close()
            return button, estimate

        with tempfile.TemporaryDirectory() as home:
            prepare_home(home)
            with streamlit_server(home) as (url, _):
                loads = [load(url) for _ in range(args.loads + 1)]
        browser.close()
    (first_button, first_estimate), later = loads[0], loads[1:]
    print(f"first_load_run_button_seconds={first_button:.2f}")
    print(f"first_load_estimate_after_button_seconds={first_estimate - first_button:.2f} (the reply probe)")
    print(f"later_loads_median_run_button_seconds={statistics.median(b for b, _ in later):.2f}")
    print(f"later_loads_median_estimate_after_button_seconds={statistics.median(e - b for b, e in later):.2f}")


if __name__ == "__main__":
    main()
