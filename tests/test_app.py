"""AppTests of every page: the router, Prompts, Optimize (a full run and Stop), Results."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)


def open_page(at: AppTest, page: str) -> AppTest:
    """Run the router once (as a browser does), then go to ``page``."""
    at.run()
    return at.switch_page(page).run()


def shown(elements) -> list[str]:
    """The elements' Markdown as a reader sees it: escaped characters without their backslash."""
    return [re.sub(r"\\(.)", r"\1", str(e.value)) for e in elements]


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "success", "info", "warning", "error", "caption", "title", "header", "subheader"):
        parts.extend(shown(getattr(at, kind)))
    return "\n".join(parts)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_welcome_page_explains_the_loop_and_offers_the_default_run(explorer_home):
    at = app().run()
    no_exception(at)
    assert at.title[0].value == "GEPA Explorer"
    assert "Evaluate" in at.get("graphviz_chart")[0].proto.spec
    assert at.button(key="welcome.start").label == "Run the default optimization"
    assert "simulated" in texts(at)


def test_sidebar_defaults_to_local_store_and_offline_model(explorer_home):
    at = app().run()
    assert at.sidebar.radio(key="sidebar.provider").value == "offline"
    assert str(explorer_home) in at.sidebar.text_input(key="sidebar.tracking_uri").value
    assert "Checking the store and the models" in "\n".join(shown(at.sidebar.caption))
    deadline = time.monotonic() + 90
    while len(at.sidebar.success) < 3:  # checked in the background; a later page load shows the answers
        assert time.monotonic() < deadline, "the status never arrived"
        time.sleep(1)
        at = app().run()  # a fresh session: AppTest drops the sidebar of a session's later runs
    statuses = "\n".join(shown(at.sidebar.success))
    assert "Store: Local SQLite store" in statuses
    assert "Task model: gepa-offline-demo (simulated) answers" in statuses


def test_missing_openai_key_is_explained_in_the_sidebar(explorer_home):
    at = app()
    at.session_state["sidebar.provider"] = "openai"
    at.run()
    no_exception(at)
    assert "OPENAI_API_KEY" in at.sidebar.error[0].value


def test_api_key_field_is_masked(explorer_home):
    at = app()
    at.session_state["sidebar.provider"] = "compatible"
    at.run()
    assert at.sidebar.text_input(key="sidebar.api_key").proto.type == 1  # PASSWORD: masked
    assert "base URL" in at.sidebar.error[0].value


def test_unreachable_store_is_one_line_not_a_traceback(explorer_home):
    at = app()
    at.session_state["sidebar.tracking_uri"] = "http://127.0.0.1:9"
    open_page(at, "app_pages/prompts.py")
    no_exception(at)
    assert "does not answer" in texts(at)


def prompts_page() -> AppTest:
    return open_page(app(), "app_pages/prompts.py")


def test_prompts_page_lists_the_bundled_baselines(explorer_home):
    at = prompts_page()
    no_exception(at)
    table = at.dataframe[0].value
    assert set(table["prompt"]) == {"short-answer-qa", "context-qa"}
    assert any("@baseline" in a for a in table["aliases"])


def test_template_problems_show_before_registering(explorer_home):
    at = prompts_page()
    at.text_area(key="prompts.template").input("Use {{context}} to answer {{question}").run()
    no_exception(at)
    errors = shown(at.error)
    assert any("Malformed placeholder" in e for e in errors)
    assert any("no 'context' field" in e for e in errors)
    assert at.button(key="FormSubmitter:prompts.register_form-Register new version").disabled


def test_register_a_version_then_diff_and_move_alias(explorer_home):
    at = prompts_page()
    at.selectbox(key="prompts.open").select("short-answer-qa").run()
    at.text_area(key="prompts.template").input("Answer briefly, digits for numbers: {{question}}").run()
    assert at.code[-1].value == "Answer briefly, digits for numbers: Who wrote the novel Pride and Prejudice?"
    at.text_input(key="prompts.name").input("short-answer-qa")
    at.text_input(key="prompts.message").input("shorter answers")
    at.text_area(key="prompts.tags").input("author=test")
    at.button(key="FormSubmitter:prompts.register_form-Register new version").click().run()
    no_exception(at)
    assert any("Registered prompts:/short-answer-qa/2" in s for s in shown(at.success))
    at.run()
    assert "words added" in texts(at)  # the diff of v1 -> v2 is shown
    at.text_input(key="prompts.alias").input("production")
    at.selectbox(key="prompts.alias_version").select(2)
    at.button(key="FormSubmitter:prompts.alias_form-Move alias").click().run()
    assert any("@production now points at version 2" in s for s in shown(at.success))


def optimize_page(**state) -> AppTest:
    at = app()
    for key, value in state.items():
        at.session_state[key] = value
    return open_page(at, "app_pages/optimize.py")


def test_optimize_page_shows_rows_preview_and_budget_preflight(explorer_home):
    at = optimize_page()
    no_exception(at)
    assert at.selectbox(key="optimize.prompt").value == "prompts:/short-answer-qa/1"
    assert "300 metric calls allow 8 to 45 proposals" in texts(at)
    at.number_input(key="optimize.budget").set_value(20).run()
    assert "does not even cover" in shown(at.error)[0]
    assert at.button(key="optimize.run").disabled


def test_scorer_preview_follows_the_normalisation(explorer_home):
    at = optimize_page()
    at.text_input(key="optimize.try").input("jane austen.").run()
    first = at.dataframe[-1].value.iloc[0]
    assert first["match"] == "✗"
    at.checkbox(key="optimize.norm.punctuation").check().run()
    assert at.dataframe[-1].value.iloc[0]["match"] == "✓"


def test_bad_upload_lists_row_errors(explorer_home):
    at = optimize_page()
    at.selectbox(key="optimize.dataset").select("upload").run()
    bad = b'{"question": "q1", "answer": "a"}\n{"question": "q2"}\nnot json\n'
    at.get("file_uploader")[0].set_value(("mine.jsonl", bad, "application/json")).run()
    no_exception(at)
    assert "mine.jsonl cannot be used" in shown(at.error)[0]
    problems = at.dataframe[0].value
    assert list(problems["row"]) == [2, 3]


def test_upload_that_fits_no_prompt_says_so(explorer_home):
    at = optimize_page()
    at.selectbox(key="optimize.dataset").select("upload").run()
    rows = b"topic,answer\nrivers,Nile\n"
    at.get("file_uploader")[0].set_value(("topics.csv", rows, "text/csv")).run()
    no_exception(at)
    assert "No registered prompt fits this dataset (its fields: topic)" in shown(at.error)[0]
    assert at.button(key="optimize.run").disabled


def wait_until(at: AppTest, predicate, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        no_exception(at)
        if predicate(at):
            return
        time.sleep(1)
    raise AssertionError(f"timed out; page says:\n{texts(at)[-2000:]}")


@pytest.mark.slow
def test_complete_run_on_the_offline_model_reaches_optimization_finished(explorer_home):
    at = optimize_page()
    at.button(key="optimize.run").click().run()
    no_exception(at)
    ref = at.query_params["run"]
    assert ref  # the run is found again through the URL after a reload
    wait_until(at, lambda a: "Optimization finished" in texts(a))
    page = texts(at)
    assert "Registered as a new version: `prompts:/short-answer-qa/2`" in page
    assert "the budget of metric calls was used up" in page or "patience" in page
    scores = at.dataframe[0].value
    assert scores["scorer"].iloc[0].startswith("Exact match")
    reloaded = app()
    reloaded.query_params["run"] = ref
    open_page(reloaded, "app_pages/optimize.py")
    assert "Optimization finished" in texts(reloaded)


@pytest.mark.slow
def test_stop_mid_run_keeps_everything_and_offers_registration(explorer_home, endpoint_factory):
    server = endpoint_factory(delay_ms=40)
    at = optimize_page(
        **{
            "sidebar.provider": "compatible",
            "sidebar.base_url": server.base_url,
            "sidebar.model": "gepa-offline-demo",
        }
    )
    at.number_input(key="optimize.budget").set_value(600).run()
    at.number_input(key="optimize.patience").set_value(0).run()
    at.button(key="optimize.run").click().run()
    events = explorer_home / "runs" / at.query_params["run"] / "events.jsonl"
    deadline = time.monotonic() + 120
    while not (events.exists() and '"candidate": 1,' in events.read_text()):  # an accepted proposal
        assert time.monotonic() < deadline, "no candidate was accepted in time"
        time.sleep(0.5)
    at.run()
    at.button(key="optimize.stop").click().run()
    wait_until(at, lambda a: "early because you pressed Stop" in texts(a))
    assert "you pressed Stop" in texts(at)
    register = at.button(key="optimize.register_best")
    register.click().run()
    assert any("Registered prompts:/short-answer-qa/2" in s for s in shown(at.success))


def test_results_page_rebuilds_a_recorded_run(recorded_run):
    run_id = recorded_run
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/results.py")
    no_exception(at)
    assert at.selectbox[0].value == run_id
    assert "Best (candidate" in at.metric[1].label
    assert len(at.tabs) == 7
    at.session_state["results.tab"] = "Per example"  # as a click on the tab does
    at.run()
    no_exception(at)
    assert [m.label for m in at.metric if "→" in m.label] == [
        "✗→✓ fixed",
        "✓→✗ regressed",
        "✗→✗ still failing",
        "✓→✓ always right",
    ]


def test_results_page_without_runs_points_to_optimize(explorer_home):
    at = open_page(app(), "app_pages/results.py")
    no_exception(at)
    assert "No optimization runs" in texts(at)


def test_unknown_run_id_in_the_url_is_explained(recorded_run):
    at = app()
    at.query_params["run"] = "nope"
    open_page(at, "app_pages/results.py")
    no_exception(at)
    assert "No optimization run 'nope'" in texts(at)


@pytest.mark.slow
def test_two_browser_sessions_run_at_once_without_seeing_each_other(explorer_home):
    sessions = [optimize_page(), optimize_page()]
    for session, seed in zip(sessions, (0, 1), strict=True):
        session.number_input(key="optimize.budget").set_value(100).run()
        session.number_input(key="optimize.seed").set_value(seed).run()
        session.button(key="optimize.run").click().run()
    refs = [s.query_params["run"] for s in sessions]
    assert refs[0] != refs[1]
    for session in sessions:
        wait_until(session, lambda a: "Optimization finished" in texts(a))
    run_ids = [(explorer_home / "runs" / ref / "run_id").read_text() for ref in refs]
    for session, own, other in ((sessions[0], *run_ids), (sessions[1], *reversed(run_ids))):
        page = texts(session)
        assert own in page and other not in page


def test_results_page_registers_a_chosen_candidate(recorded_run):
    from core import prompts

    prompts.ensure_bundled_prompts()
    at = app()
    at.query_params["run"] = recorded_run
    open_page(at, "app_pages/results.py")
    button = next(b for b in at.button if b.label.startswith("Register candidate 4"))
    button.click().run()
    no_exception(at)
    assert any("Registered prompts:/short-answer-qa/2" in s for s in shown(at.success))
    assert prompts.get_version("short-answer-qa", 1).template == "Answer this question: {{question}}"


TAB_CONTENT = {
    "Candidates": lambda at: at.get("plotly_chart") and at.radio(key="results.x") is not None,
    "Pareto front": lambda at: at.get("plotly_chart") and "is best on" in texts(at),
    "Lineage": lambda at: len(at.get("plotly_chart")) == 1,
    "Score matrix": lambda at: at.get("plotly_chart") and at.radio(key="results.matrix_order") is not None,
    "Per example": lambda at: "✗→✓ fixed" in [m.label for m in at.metric],
    "What if": lambda at: len(at.get("plotly_chart")) == 2,
    "Export": lambda at: len(at.get("download_button")) == 8,
}


@pytest.mark.parametrize("fixture", ["run_short_qa_budget300", "run_context_qa", "run_cancelled_before_proposals"])
def test_results_page_opens_every_tab(explorer_home, fixture):
    from conftest import fixture_events, record_run

    run_id = record_run(fixture_events(fixture))
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/results.py")
    for tab, has_content in TAB_CONTENT.items():
        at.session_state["results.tab"] = tab
        at.run()
        no_exception(at)
        assert has_content(at), f"{fixture}: the {tab} tab shows nothing of its own:\n{texts(at)[-800:]}"


def test_results_page_explains_a_run_that_ended_before_the_baseline_was_scored(explorer_home):
    from conftest import fixture_events, record_run

    started = fixture_events("run_cancelled_before_proposals")[0]
    finished = {"v": 1, "seq": 1, "t": started["t"] + 1, "type": "run_finished", "status": "failed"}
    finished |= {"stopped_by": "error", "error": "AuthenticationError: the key <b>sk-…</b> was refused"}
    run_id = record_run([started, finished], status="FAILED", explorer_status="failed")
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/results.py")
    no_exception(at)
    page = texts(at)
    assert "ended before the baseline was scored" in page
    assert "the key <b>sk-…</b> was refused" in page  # shown as typed, not as markup
    assert not at.tabs


def test_results_page_shows_a_run_still_scoring_its_baseline(explorer_home):
    from conftest import fixture_events, record_run

    live = explorer_home / "runs" / "live-run"
    live.mkdir(parents=True)
    (live / "events.jsonl").write_text(json.dumps(fixture_events("run_short_qa_seed0")[0]) + "\n")
    tags = {"gepa_explorer.live_dir": str(live), "gepa_explorer.host": "elsewhere.example"}
    record_run(None, status="RUNNING", explorer_status="running", tags=tags)
    at = open_page(app(), "app_pages/results.py")
    no_exception(at)
    assert "The baseline is still being scored" in texts(at)


def test_optimize_page_explains_a_run_going_on_another_machine(explorer_home):
    from conftest import record_run

    tags = {"gepa_explorer.host": "elsewhere.example"}
    run_id = record_run(None, status="RUNNING", explorer_status="running", tags=tags)
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/optimize.py")
    no_exception(at)
    assert "still going in a process on another machine (elsewhere.example)" in texts(at)


def test_optimize_page_explains_a_finished_run_without_events(explorer_home):
    from conftest import record_run

    run_id = record_run(None)
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/optimize.py")
    no_exception(at)
    assert f"Run {run_id} has no events.jsonl artifact" in "\n".join(shown(at.error))


def test_optimize_page_keeps_the_run_in_the_address_when_it_comes_from_the_session(recorded_run):
    at = app()
    at.query_params["run"] = recorded_run
    open_page(at, "app_pages/optimize.py")
    at.switch_page("app_pages/results.py").run()
    at.query_params.clear()  # moving between pages drops the query, as in a browser
    at.switch_page("app_pages/optimize.py").run()
    no_exception(at)
    assert at.query_params["run"] == recorded_run  # a reload now finds it again
    assert "Optimization finished" in texts(at)


def test_optimize_page_offers_the_split_choices_and_says_the_sizes(explorer_home):
    at = optimize_page()
    no_exception(at)
    assert at.radio(key="optimize.test_mode").value == "declared"
    assert "Train 30 · validation 30 · test 30 rows" in texts(at)
    assert "on the 30 test examples" in texts(at)  # the budget preflight states the extra calls
    at.radio(key="optimize.test_mode").set_value("share").run()
    at.slider(key="optimize.test_share").set_value(0.2).run()
    assert "Train 36 · validation 36 · test 18 rows" in texts(at)
    at.radio(key="optimize.test_mode").set_value("none").run()
    at.checkbox(key="optimize.split").uncheck().run()
    no_exception(at)
    assert "Train 90 · validation 90 (the training rows) · test 0 rows" in texts(at)


@pytest.mark.slow
def test_a_warm_run_outlives_the_session_that_started_it_and_a_new_session_finds_it(explorer_home):
    from core.executors import default_executor
    from core.rundir import RunDir

    at = optimize_page()
    at.button(key="optimize.run").click().run()
    no_exception(at)
    ref = at.query_params["run"]
    pid = RunDir(explorer_home / "runs" / ref).pid()
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert parent == default_executor().forkserver.pid  # forked from the warm fork server
    del at  # the starting session ends; the run does not
    later = app()
    later.query_params["run"] = ref
    open_page(later, "app_pages/optimize.py")
    no_exception(later)
    wait_until(later, lambda a: "Optimization finished" in texts(a))
    assert "Registered as a new version" in texts(later)


def test_the_live_view_shows_the_baseline_being_scored(explorer_home):
    import subprocess
    import sys

    from conftest import fixture_events

    folder = explorer_home / "runs" / "scoring-the-baseline"
    folder.mkdir(parents=True)
    started = fixture_events("run_short_qa_seed0")[0]
    progress = {"v": 2, "seq": 1, "t": started["t"] + 1, "type": "baseline_progress", "scored": 12, "total": 30}
    lines = [started, progress | {"metric_calls": 12}]
    (folder / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # stands for a live worker
    try:
        (folder / "pid").write_text(str(worker.pid))
        at = app()
        at.query_params["run"] = folder.name
        open_page(at, "app_pages/optimize.py")
        no_exception(at)
        assert "Scoring the baseline: 12 of 30 validation examples" in texts(at)
        assert at.button(key="optimize.stop")
    finally:
        worker.kill()
        worker.wait()
