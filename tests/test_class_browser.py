"""The Class page and the class passcode in a real Chromium: the scatter draws a point per run at a
projector's and a desktop's width, a row's link opens that run on Results, following the class draws a
new run by itself, and the passcode keeps the address's page and participant for after it. Screenshots go
where tests/test_browser.py puts them."""

from __future__ import annotations

import pytest
from test_browser import assert_no_traceback, browser, settle, shot, streamlit_app  # noqa: F401 - fixtures
from test_class_page import class_run, record_class

from core.access import PASSCODE_VARIABLE

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def class_url(explorer_home):
    ids = record_class()
    with streamlit_app(explorer_home) as url:
        yield url, ids


@pytest.mark.parametrize("width", [1024, 1440])
def test_the_class_page_draws_every_scored_run_and_fits_the_width(class_url, browser, width):  # noqa: F811
    url, _ = class_url
    context = browser.new_context(viewport={"width": width, "height": 1500})
    page = context.new_page()
    page.goto(f"{url}/class")
    page.get_by_role("heading", name="Class", exact=True).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    settle(page)
    assert_no_traceback(page)
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() == 6  # one per run; legend keys draw none
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert "Runs with patience 0 (no early stop) used 2.7× the metric calls" in page.inner_text("body")
    shot(page, f"class-{width}")
    context.close()


def test_a_rows_link_opens_that_run_on_the_results_page(class_url, browser):  # noqa: F811
    url, ids = class_url
    context = browser.new_context(viewport={"width": 1024, "height": 1500})
    page = context.new_page()
    page.goto(f"{url}/class")
    page.get_by_role("heading", name="Class", exact=True).wait_for(timeout=60_000)
    table = page.locator("[data-testid='stDataFrame']")
    table.wait_for(timeout=60_000)
    all_rows = table.bounding_box()["height"]
    page.get_by_text("Only the best run of each participant").click()  # alice first: 90%
    page.wait_for_function(  # the grid redrawn with one row per participant (a canvas: measured, not read)
        "h => document.querySelector('[data-testid=\"stDataFrame\"]').getBoundingClientRect().height < h",
        arg=all_rows,
        timeout=60_000,
    )
    settle(page)
    grid = table.bounding_box()
    x, y = grid["x"] + 100 + 14, grid["y"] + 35 + 17  # the first row's "open" (after the 100 px name)
    page.mouse.move(x, y)
    with context.expect_page(timeout=30_000) as opened:
        page.mouse.click(x, y)
    results = opened.value
    results.get_by_role("heading", name="Results", exact=True).wait_for(timeout=60_000)
    assert results.url.endswith(f"/results?run={ids['alice-long']}")
    context.close()


def test_following_the_class_draws_a_run_recorded_after_the_page_opened(class_url, browser):  # noqa: F811
    url, _ = class_url
    context = browser.new_context(viewport={"width": 1024, "height": 1500})
    page = context.new_page()
    page.goto(f"{url}/class")
    points = page.locator(".js-plotly-plot .scatterlayer .point")
    points.first.wait_for(timeout=60_000)
    settle(page)
    assert points.count() == 6
    page.get_by_text("Follow the class").click()
    settle(page)
    class_run("erin", 0.8, 200, 200, 3, "short_answer_qa")
    page.wait_for_function(  # no reload, no click: the next tick (15 s, a 10 s cache) draws it
        "() => document.querySelectorAll('.js-plotly-plot .scatterlayer .point').length === 7", timeout=60_000
    )
    assert "erin" in page.locator(".js-plotly-plot .legend").text_content()
    context.close()


def test_the_passcode_comes_before_any_page_and_keeps_the_address(explorer_home, browser, monkeypatch):  # noqa: F811
    monkeypatch.setenv(PASSCODE_VARIABLE, "blue-heron-42")
    with streamlit_app(explorer_home) as url:
        context = browser.new_context(viewport={"width": 1024, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/class?participant=alice")
        page.get_by_role("heading", name="Class passcode").wait_for(timeout=60_000)
        assert page.locator("[data-testid='stSidebar']").count() == 0
        page.fill("input[type=password]", "red-heron")
        page.keyboard.press("Enter")
        page.get_by_text("That is not the class passcode.").wait_for(timeout=30_000)
        shot(page, "class-passcode-wrong")
        page.fill("input[type=password]", "blue-heron-42")
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Class", exact=True).wait_for(timeout=60_000)
        settle(page)
        assert_no_traceback(page)
        assert page.locator("[data-testid='stSidebar'] input").first.input_value() == "alice"
        context.close()
