"""The newcomer path in a real Chromium: start the app with no configuration, open every page, press
Run optimization, wait for Optimization finished, open Results and check its charts render.

Screenshots go to ``test-artifacts/screenshots`` (or ``GEPA_EXPLORER_SCREENSHOTS``) to be looked at.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT, cli_env, free_port, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.browser]

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
SHOTS = Path(os.environ.get("GEPA_EXPLORER_SCREENSHOTS", ROOT / "test-artifacts" / "screenshots"))


@contextmanager
def streamlit_app(home: Path) -> Iterator[str]:
    """``streamlit run streamlit_app.py`` on a free loopback port, with no configuration at all but
    ``GEPA_EXPLORER_HOME``; yields its URL."""
    port = free_port()
    log = (home / "streamlit.log").open("w")
    process = subprocess.Popen(
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
        env=cli_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def app_url(explorer_home: Path):
    """The app on the test's home (its store already made)."""
    with streamlit_app(explorer_home) as url:
        yield url


@pytest.fixture
def cold_app_url(tmp_path: Path):
    """The app on a brand-new home: no store, nothing, as a workshop participant's first start."""
    home = tmp_path / "new-home"
    home.mkdir()
    with streamlit_app(home) as url:
        yield url, home


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (Debian's, never ``playwright install``); each test gets a fresh
    context of its own."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: scripts/test installs it with apt-get install chromium")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 2200}, accept_downloads=True)
    yield context.new_page()
    context.close()


def shot(page, name: str) -> None:
    time.sleep(1.0)  # let charts finish their transition
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def settle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=60_000,
    )


def assert_no_traceback(page) -> None:
    body = page.inner_text("body")
    assert "Traceback" not in body, body[:2000]
    assert page.locator("[data-testid='stException']").count() == 0, body[:2000]


def test_newcomer_path_from_welcome_to_results(app_url, page):
    started = time.monotonic()
    page.goto(app_url)
    page.get_by_role("heading", name="GEPA Explorer").wait_for(timeout=30_000)
    first_paint = time.monotonic() - started
    assert first_paint < 10, f"first page took {first_paint:.1f}s"
    settle(page)
    shot(page, "01-welcome")
    assert_no_traceback(page)

    for path, heading, name in (("/prompts", "Prompts", "02-prompts"), ("/results", "Results", "03-results-empty")):
        page.goto(app_url + path)
        page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=60_000)
        settle(page)
        assert_no_traceback(page)
        shot(page, name)

    page.goto(app_url + "/optimize")
    page.get_by_role("heading", name="Optimize", exact=True).wait_for(timeout=60_000)
    settle(page)
    shot(page, "04-optimize-setup")
    page.get_by_role("button", name="Run optimization", exact=True).click()
    page.get_by_text("metric calls used").first.wait_for(timeout=90_000)
    shot(page, "05-optimize-live")
    page.get_by_text("Optimization finished").wait_for(timeout=240_000)
    settle(page)
    assert_no_traceback(page)
    shot(page, "06-optimize-finished")
    body = page.inner_text("body")
    assert "Registered as a new version" in body
    assert "Test, 30 examples" in body and "Optimized (test)" in body  # the held-out score, at a glance

    page.get_by_role("link", name="Open in Results").click()
    page.get_by_role("heading", name="Results", exact=True).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    settle(page)
    assert_no_traceback(page)
    shot(page, "07-results-candidates")
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 2  # points were drawn
    for tab, name, charts in (
        ("Pareto front", "08-results-front", 1),
        ("Lineage", "09-results-lineage", 1),
        ("Score matrix", "10-results-matrix", 1),
        ("Per example", "11-results-examples", 0),
        ("What if", "12-results-what-if", 2),
    ):
        page.get_by_role("tab", name=tab).click()
        settle(page)
        if charts:
            page.locator(".js-plotly-plot").nth(charts - 1).wait_for(timeout=60_000)
        assert_no_traceback(page)
        assert page.locator(".js-plotly-plot").count() >= charts  # only the open tab is drawn
        shot(page, name)


def test_a_deep_link_to_a_run_goes_through_the_router_on_a_fresh_server(recorded_run, app_url, page):
    page.goto(f"{app_url}/results?run={recorded_run}")
    page.get_by_role("heading", name="Results", exact=True).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    settle(page)
    assert_no_traceback(page)
    navigation = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "Welcome" in navigation and "results views" not in navigation.lower()
    assert "Best (candidate 4)" in page.inner_text("body")  # the linked run, not the newest
    shot(page, "13-results-deep-link")


def assert_no_error_box(page) -> None:
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert not errors, errors


def test_a_cold_start_clicking_at_once_runs_cleanly(cold_app_url, page):
    url, home = cold_app_url
    assert not (home / "mlflow.db").exists()
    page.goto(url)
    page.get_by_text("Preparing the local MLflow store, first start only").wait_for(timeout=60_000)
    button = page.get_by_role("button", name="Run the default optimization")
    button.wait_for(timeout=120_000)  # the local store is made first: "first start only"
    button.click()
    page.get_by_text("Optimization finished").wait_for(timeout=240_000)
    settle(page)
    assert_no_traceback(page)
    assert_no_error_box(page)
    shot(page, "14-cold-start-finished")
    for path, heading in (("/prompts", "Prompts"), ("/results", "Results")):
        page.goto(url + path)
        page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=60_000)
        settle(page)
        assert_no_traceback(page)
        assert_no_error_box(page)


@pytest.fixture
def default_run(explorer_home: Path) -> str:
    """The default seed-0 run (event schema 3) recorded in the test's store."""
    from conftest import fixture_events, record_run

    return record_run(fixture_events("run_default_seed0"))


def test_replay_steps_to_iteration_2_and_reads_at_two_widths(default_run, app_url, page):
    page.goto(f"{app_url}/results?run={default_run}&results.tab=Replay")
    page.get_by_role("heading", name="Iteration 1 of 12").wait_for(timeout=60_000)
    settle(page)
    assert_no_traceback(page)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("heading", name="Iteration 2 of 12").wait_for(timeout=60_000)
    settle(page)
    assert_no_traceback(page)
    body = page.inner_text("body")
    for part in ("1. Select", "2. Evaluate", "3. Reflect", "4. Improve", "5. Decision", "What the reflection model"):
        assert part in body, part
    # Streamlit scrolls inside its own container, so a tall viewport is what shows the whole step.
    page.set_viewport_size({"width": 1440, "height": 4000})
    settle(page)
    shot(page, "15-results-replay-iteration-2")
    page.set_viewport_size({"width": 1024, "height": 5200})
    settle(page)
    shot(page, "16-results-replay-iteration-2-1024px")
    page.set_viewport_size({"width": 1440, "height": 4000})
    for iteration in range(3, 8):
        page.get_by_role("button", name="Next").click()
        page.get_by_role("heading", name=f"Iteration {iteration} of 12").wait_for(timeout=60_000)
    settle(page)
    assert "a specialist got its turn" in page.inner_text("body")
    shot(page, "19-results-replay-iteration-7-specialist")


def test_a_step_of_the_welcome_loop_opens_replay_at_that_step(default_run, app_url, page):
    page.goto(app_url)
    page.get_by_role("heading", name="GEPA Explorer").wait_for(timeout=30_000)
    page.locator("[data-testid='stGraphVizChart'] svg a").first.wait_for(timeout=30_000)
    settle(page)
    shot(page, "17-welcome-loop-links")
    page.locator("[data-testid='stGraphVizChart'] svg a").nth(1).click()  # 2. Reflect, as drawn
    page.get_by_role("heading", name="Iteration 1 of 12").wait_for(timeout=60_000)
    settle(page)
    assert_no_traceback(page)
    assert "results.replay_focus=Reflect" in page.url
    page.get_by_role("heading", name="3. Reflect").wait_for(timeout=30_000)
    assert page.get_by_role("heading", name="1. Select").count() == 0  # only the chosen step is open
    shot(page, "18-results-replay-from-welcome-reflect")


# --------------------------------------------------------------------------------------------------
# One server for the checks below: a home with the bundled prompts and one recorded run
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[SimpleNamespace]:
    """The app on a home of its own, with the bundled prompts registered and the budget-300 run
    recorded; for the tests that do not need a fresh server, so the module starts one server for them."""
    from conftest import copy_store, fixture_events, record_run

    home = tmp_path_factory.mktemp("shared") / "home"
    home.mkdir()
    copy_store(empty_store, home)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GEPA_EXPLORER_HOME", str(home))
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        from core import prompts

        run_id = record_run(fixture_events("run_short_qa_budget300"))
        prompts.ensure_bundled_prompts()
    with streamlit_app(home) as url:
        yield SimpleNamespace(url=url, home=home, run_id=run_id)


NO_SKELETON = '() => !document.querySelector(\'[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]\')'


def open_page(page, url: str, wait_for: str) -> None:
    """Go to ``url`` and wait until ``wait_for`` (a text of the page) shows, the script run ended and
    every element has replaced its loading placeholder."""
    page.goto(url)
    page.get_by_text(wait_for).first.wait_for(timeout=120_000)
    settle(page)
    page.wait_for_function(NO_SKELETON, timeout=60_000)
    assert_no_traceback(page)


def prompt_versions(home: Path) -> int:
    with sqlite3.connect(home / "mlflow.db") as db:
        return db.execute("select count(*) from model_versions").fetchone()[0]


def test_the_toolbar_has_no_deploy_button_and_no_developer_menu(shared, page):
    open_page(page, shared.url, "Start in one click")
    assert page.locator("[data-testid='stAppDeployButton']").count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    menu = page.locator("[data-testid='stMainMenu']")
    if menu.count():  # viewer mode keeps a menu of viewer options only
        menu.click()
        items = page.locator("[data-testid='stMainMenuList']").inner_text()
        assert "Rerun" not in items and "Clear cache" not in items, items


def test_enter_in_the_prompt_fields_registers_nothing_only_the_button_does(shared, page):
    open_page(page, shared.url + "/prompts", "Write and check a template")
    before = prompt_versions(shared.home)
    page.get_by_label("Template", exact=True).fill("Answer in a few words: {{question}}")
    page.get_by_label("Template", exact=True).blur()
    settle(page)
    name = page.get_by_label("Prompt name", exact=True)
    name.fill("short-answer-qa")
    name.press("Enter")
    settle(page)
    tags = page.get_by_label("Tags (one key=value per line)", exact=True)
    tags.fill("author=class")
    tags.press("Control+Enter")
    settle(page)
    time.sleep(2)
    assert prompt_versions(shared.home) == before, "a key press registered a version"
    page.get_by_role("button", name="Register new version").click()
    page.get_by_text("Registered prompts:/short-answer-qa/").wait_for(timeout=60_000)
    assert prompt_versions(shared.home) == before + 1


CUT = """() => [...document.querySelectorAll('[data-testid="stMetricLabel"], [data-testid="stMetricValue"]')]
    .flatMap(el => [el, ...el.querySelectorAll('*')])
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => el.innerText)"""
TABLE_OVERFLOW = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')]
    .map(el => el.scrollWidth - el.clientWidth)"""
HIDDEN_TABS = """() => {
    const list = document.querySelector('[data-testid="stTabs"] [role="tablist"]');
    const box = list.getBoundingClientRect();
    return [...list.querySelectorAll('[role="tab"]')]
        .filter(t => { const r = t.getBoundingClientRect(); return r.right > box.right + 1 || r.left < box.left - 1; })
        .map(t => t.innerText);
}"""
RESULTS_TABS = (
    "Candidates",
    "Pareto front",
    "Lineage",
    "Score matrix",
    "Per example",
    "What if",
    "Cost",
    "Export",
    "Proposals",
    "Replay",
)


def read_at(page, width: int, name: str) -> None:
    """Screenshot the page at ``width`` and check nothing is cut: no metric label or value ends in
    an ellipsis, and the sidebar's mlflow ui command stays on one line."""
    assert not page.evaluate(CUT), f"{name} at {width} px: metrics cut: {page.evaluate(CUT)}"
    command = page.locator("[data-testid='stSidebar'] [data-testid='stCode']")
    if command.count():
        assert command.first.bounding_box()["height"] < 70, f"{name}: the mlflow ui command wraps"
    shot(page, f"{width}-{name}")


@pytest.mark.parametrize("width", [1024, 1440])
def test_every_page_reads_at_projector_and_desktop_width(shared, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900 if width > 1024 else 768})
    page = context.new_page()
    try:
        page.set_viewport_size({"width": width, "height": 2400})  # the whole page in one picture
        for path, wait_for, name in (
            ("", "Start in one click", "welcome"),
            ("/prompts", "Write and check a template", "prompts"),
            ("/optimize", "Budget and patience", "optimize-setup"),
            (f"/optimize?run={shared.run_id}", "Optimization finished", "optimize-finished"),
        ):
            open_page(page, shared.url + path, wait_for)
            read_at(page, width, name)
        for tab in RESULTS_TABS:
            open_page(page, f"{shared.url}/results?run={shared.run_id}&results.tab={tab.replace(' ', '+')}", "Best (")
            if tab in ("Candidates", "Pareto front", "Lineage", "Score matrix", "What if"):
                page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            if tab == "Per example":
                page.locator("[data-testid='stDataFrame']").last.wait_for(timeout=60_000)
                overflow = page.evaluate(TABLE_OVERFLOW)[-1]
                assert overflow <= 1, f"the per-example table needs {overflow} px more at {width} px"
            hidden = page.evaluate(HIDDEN_TABS)
            assert not hidden, f"tabs out of sight at {width} px: {hidden}"
            read_at(page, width, f"results-{tab.lower().replace(' ', '-')}")
    finally:
        context.close()


def test_an_exported_chart_draws_in_the_colours_of_the_chart_in_the_app_offline(shared, browser, page, tmp_path):
    open_page(page, f"{shared.url}/results?run={shared.run_id}", "Best (")
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    drawn = "() => { const gd = document.querySelector('.js-plotly-plot'); return gd._fullLayout.colorway }"
    in_app = page.evaluate(drawn)
    page.get_by_role("tab", name="Export").click()
    settle(page)
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="candidates.html").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    offline = browser.new_context(offline=True)  # the file embeds plotly.js: no network needed
    try:
        exported = offline.new_page()
        exported.goto(path.as_uri())
        exported.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for(timeout=60_000)
        assert exported.evaluate(drawn) == in_app
        assert not any(color.startswith("#0000") for color in exported.evaluate(drawn))
    finally:
        offline.close()


def test_a_live_run_a_new_set_up_beside_it_and_its_stop_read_at_both_widths(shared, page):
    open_page(page, shared.url + "/optimize", "Budget and patience")
    budget = page.get_by_label("Budget (metric calls)", exact=True)
    budget.fill("290")
    budget.press("Enter")
    settle(page)
    page.get_by_text("Simulate a slower or flaky model").click()  # slower, so the run is seen going
    page.get_by_role("slider", name="Latency per call (ms)").focus()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    settle(page)
    page.get_by_role("button", name="Run optimization", exact=True).click()
    page.get_by_text("metric calls used").first.wait_for(timeout=90_000)
    for width in (1440, 1024):
        page.set_viewport_size({"width": width, "height": 2400})
        read_at(page, width, "optimize-live")
    page.get_by_role("button", name="Set up a new run").click()
    page.get_by_text("Your previous run is still going").wait_for(timeout=60_000)
    for width in (1024, 1440):
        page.set_viewport_size({"width": width, "height": 2400})
        read_at(page, width, "optimize-new-set-up-beside-a-live-run")
    page.get_by_role("link", name="Back to the running run").click()
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("early because you pressed Stop").wait_for(timeout=180_000)
    settle(page)
    assert_no_traceback(page)
    # the set-up below the stopped run shows the choices it was started with, in the browser too
    assert page.get_by_label("Budget (metric calls)", exact=True).input_value() == "290"
    assert page.get_by_label("ignore case", exact=True).is_checked()
    for width in (1440, 1024):
        page.set_viewport_size({"width": width, "height": 2400})
        read_at(page, width, "optimize-stopped")


def test_the_results_splits_candidates_and_seeds_read_at_both_widths(explorer_home, browser):
    """A group of three seeds with a test set: the header, the test rows of Per example, validation
    against test in Candidates, and the Seeds view, each whole at 1024 and 1440 px."""
    from conftest import fixture_events, record_run

    run_id, *_ = [
        record_run(fixture_events(name), tags={"gepa_explorer.group": "g1"})
        for name in ("run_default_seed0", "run_default_seed1", "run_default_seed2")
    ]
    with streamlit_app(explorer_home) as url:
        for width in (1024, 1440):
            context = browser.new_context(viewport={"width": width, "height": 2400})
            page = context.new_page()
            try:
                open_page(page, f"{url}/results?run={run_id}", "Its score · test, 30 examples")
                page.locator(".js-plotly-plot").nth(1).wait_for(timeout=120_000)  # validation against test
                assert "no clear sign of overfitting" in page.inner_text("body")
                read_at(page, width, "results-splits-candidates")
                open_page(page, f"{url}/results?run={run_id}&results.tab=Per+example", "Examples from")
                page.get_by_text("test (30)", exact=True).click()
                page.get_by_text("30 of 30 test examples").wait_for(timeout=120_000)
                settle(page)
                assert page.evaluate(TABLE_OVERFLOW)[-1] <= 1, "the per-example table is cut"
                read_at(page, width, "results-per-example-test")
                open_page(page, f"{url}/results?group=g1", "best candidate over 3 seeds")
                page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
                assert all(overflow <= 1 for overflow in page.evaluate(TABLE_OVERFLOW)), "the seeds table is cut"
                read_at(page, width, "results-seeds")
            finally:
                context.close()
