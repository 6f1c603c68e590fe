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
    assert 'href="results?results.tab=Replay&results.replay_focus=Reflect"' in at.get("graphviz_chart")[0].proto.spec
    links = [link.proto for link in at.get("page_link")]
    replay_links = [link for link in links if "results.replay_focus" in link.query_string]
    assert [link.label for link in replay_links] == ["1. Evaluate", "2. Reflect", "3. Improve", "4. Select"]
    assert at.button(key="welcome.start").label == "Run the default optimization"
    assert "simulated" in texts(at)
    assert texts(at).count("It is not a language model") == 1  # the simulated note, once (the sidebar's)


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
    assert "Store: Local SQLite store answers" in statuses and str(explorer_home) not in statuses  # no long path
    assert at.sidebar.code[0].value.startswith("mlflow ui --backend-store-uri sqlite:///")  # one line, copyable
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
    assert any("'{{question}' is not closed" in e for e in errors)
    assert any("no 'context' field" in e for e in errors)
    assert at.button(key="prompts.register").disabled


def test_register_a_version_then_diff_and_move_alias(explorer_home):
    at = prompts_page()
    at.selectbox(key="prompts.open").select("short-answer-qa").run()
    at.text_area(key="prompts.template").input("Answer briefly, digits for numbers: {{question}}").run()
    assert "Answer briefly, digits for numbers: Who wrote the novel Pride and Prejudice?" in [c.value for c in at.code]
    at.text_input(key="prompts.name").input("short-answer-qa")
    at.text_input(key="prompts.message").input("shorter answers")
    at.text_area(key="prompts.tags").input("author=test")
    at.button(key="prompts.register").click().run()
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


def match_preview(at: AppTest):
    """The "What counts as a match" table."""
    return next(d.value for d in at.dataframe if "match" in d.value.columns)


def test_scorer_preview_follows_the_normalisation(explorer_home):
    at = optimize_page()
    at.text_input(key="optimize.try").input("jane austen.").run()
    first = match_preview(at).iloc[0]
    assert first["match"] == "✗"
    at.checkbox(key="optimize.norm.punctuation").check().run()
    assert match_preview(at).iloc[0]["match"] == "✓"


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
    assert "Registered as a new version: prompts:/short-answer-qa/2." in page
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
    assert any("Registered as a new version: prompts:/short-answer-qa/2" in s for s in shown(at.success))


def test_results_page_rebuilds_a_recorded_run(recorded_run):
    run_id = recorded_run
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/results.py")
    no_exception(at)
    assert at.selectbox[0].value == run_id
    assert at.metric[0].label.startswith("Best (candidate 4) · validation, 40 examples")
    assert len(at.tabs) == 10
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
    assert any("Registered as a new version: prompts:/short-answer-qa/2" in s for s in shown(at.success))
    assert prompts.get_version("short-answer-qa", 1).template == "Answer this question: {{question}}"


TAB_CONTENT = {
    "Candidates": lambda at: at.get("plotly_chart") and at.radio(key="results.x") is not None,
    "Pareto front": lambda at: at.get("plotly_chart") and "Why each member of the front" in texts(at),
    "Lineage": lambda at: len(at.get("plotly_chart")) == 1,
    "Score matrix": lambda at: at.get("plotly_chart") and at.radio(key="results.matrix_order") is not None,
    "Per example": lambda at: "✗→✓ fixed" in [m.label for m in at.metric],
    "What if": lambda at: len(at.get("plotly_chart")) == 2,
    "Export": lambda at: len(at.get("download_button")) == 9,
    "Replay": lambda at: (
        any(h.value.startswith("Iteration 1 of") for h in at.subheader) or "nothing to replay" in texts(at)
    ),
    "Proposals": lambda at: (
        any(m.key == "results.proposal_filter" for m in at.multiselect) or "made no proposal" in texts(at)
    ),
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


def replay_of(events_fixture: str, **query: str) -> AppTest:
    """The Results page on the Replay tab of a run recorded from ``events_fixture``."""
    from conftest import fixture_events, record_run

    at = app()
    at.query_params["run"] = record_run(fixture_events(events_fixture))
    for name, value in {"results.tab": "Replay", **query}.items():
        at.query_params[name] = value
    open_page(at, "app_pages/results.py")
    no_exception(at)
    return at


def heading(at: AppTest) -> str:
    return next(h.value for h in at.subheader if h.value.startswith("Iteration "))


def test_replay_steps_through_a_recorded_run_with_previous_next_and_the_slider(explorer_home):
    at = replay_of("run_default_seed0")
    assert heading(at) == "Iteration 1 of 12"
    assert at.button(key="results.replay_previous").disabled
    at.button(key="results.replay_next").click().run()
    no_exception(at)
    assert heading(at) == "Iteration 2 of 12"
    at.button(key="results.replay_next").click().run()
    at.button(key="results.replay_previous").click().run()
    assert heading(at) == "Iteration 2 of 12"
    at.slider(key="results.replay_slider").set_value(7).run()
    no_exception(at)
    assert heading(at) == "Iteration 7 of 12"
    page = texts(at)
    assert "It is not the best candidate (candidate 4 is, 86.7%): a specialist got its turn" in page
    assert [s for s in ("1. Select", "2. Evaluate", "3. Reflect", "4. Improve", "5. Decision") if s in page] == [
        "1. Select",
        "2. Evaluate",
        "3. Reflect",
        "4. Improve",
        "5. Decision",
    ]
    assert "What the reflection model was shown" in page and "The instruction text GEPA sent" in page
    assert any(c.value.startswith("I provided an assistant with the following instructions") for c in at.code)
    assert "Accepted: better on the minibatch" in "\n".join(shown(at.success))
    at.slider(key="results.replay_slider").set_value(12).run()
    assert heading(at) == "Iteration 12 of 12" and at.button(key="results.replay_next").disabled


def test_replay_says_why_a_proposal_was_rejected(explorer_home):
    at = replay_of("run_default_seed0")
    at.slider(key="results.replay_slider").set_value(4).run()
    assert "Rejected: not better on the minibatch than its parent (0 vs 2 correct)" in "\n".join(shown(at.warning))


def test_an_old_schema_1_run_replays_and_says_what_it_lacks(explorer_home):
    at = replay_of("run_short_qa_budget300")
    assert heading(at) == "Iteration 1 of 30"
    notes = "\n".join(shown(at.info))
    assert "This run's log is event schema 1" in notes and "reflective dataset" in notes
    assert any(c.value.startswith("I provided an assistant") for c in at.code)  # what it has is shown


def test_replay_opens_at_a_step_named_in_the_address(explorer_home):
    at = replay_of("run_default_seed0", **{"results.replay_focus": "Decision"})
    assert heading(at) == "Iteration 4 of 12"  # the first rejection
    page = texts(at)
    assert "#### 5. Decision" in page and "#### 1. Select" not in page and "#### 3. Reflect" not in page
    assert "Rejected: not better" in "\n".join(shown(at.warning))
    assert any(
        m.startswith("**1. Select** · parent 2, drawn from a front of 2") for m in (e.value for e in at.markdown)
    )
    at.segmented_control(key="results.replay_focus").set_value("Every step").run()
    no_exception(at)
    assert heading(at) == "Iteration 4 of 12" and "Its full reply" in texts(at)


def test_every_results_tab_has_a_what_to_look_at_note(recorded_run):
    at = app()
    at.query_params["run"] = recorded_run
    open_page(at, "app_pages/results.py")
    for tab in ("Candidates", "Pareto front", "Lineage", "Score matrix", "Per example", "What if", "Export", "Replay"):
        at.session_state["results.tab"] = tab
        at.run()
        no_exception(at)
        assert [e.label for e in at.expander if e.label == "What to look at"] == ["What to look at"], tab


def test_the_live_feed_shows_what_the_reflection_model_was_shown():
    def feed(path: str) -> None:
        from core.analysis import build_run_view
        from core.events import read_events
        from ui.run_panel import render_feed

        render_feed(build_run_view(read_events(__import__("pathlib").Path(path))))

    from conftest import FIXTURES

    at = AppTest.from_function(feed, args=(str(FIXTURES / "run_default_seed0.jsonl"),), default_timeout=60).run()
    no_exception(at)
    assert len(at.expander) == 12
    assert "What the reflection model was shown" in texts(at) and "The instruction text GEPA sent" in texts(at)
    assert len(at.table) == 9  # one per iteration that reflected (12 minus 3 skipped)
    assert any(c.value.startswith("I provided an assistant with the following instructions") for c in at.code)


def test_advanced_settings_say_what_they_do(explorer_home):
    at = optimize_page()
    no_exception(at)
    assert "Pareto front" in at.radio(key="optimize.selection").help
    assert "same run" in at.number_input(key="optimize.seed").help
    assert "parallel" in at.number_input(key="optimize.concurrency").help


def test_a_whole_file_problem_is_one_line_without_a_row_grid(explorer_home):
    at = optimize_page()
    at.selectbox(key="optimize.dataset").select("upload").run()
    at.get("file_uploader")[0].set_value(("mine.csv", b"question,response\nq1,a1\nq2,a2\n", "text/csv")).run()
    no_exception(at)
    errors = shown(at.error)
    assert len(errors) == 1 and "no column holds the expected answer" in errors[0]
    assert "the file's columns are question, response" in errors[0]
    assert not at.dataframe  # no row/field grid of "None | None"


def test_an_unclosed_brace_is_one_message_on_the_prompts_page(explorer_home):
    at = prompts_page()
    at.text_area(key="prompts.template").input("Answer this question: {{question}").run()
    no_exception(at)
    assert shown(at.error) == ["'{{question}' is not closed: write {{question}}."]
    assert not at.warning  # not also "the dataset has question, which this template never uses"


def test_pareto_explanation_counts_examples_no_candidate_solves_apart(recorded_run):
    at = app()
    at.query_params["run"] = recorded_run
    open_page(at, "app_pages/results.py")
    at.session_state["results.tab"] = "Pareto front"
    at.run()
    no_exception(at)
    page = texts(at)
    assert "- **Candidate 4** (95.0%): best alone on" in page
    assert "No candidate scores above 0 on 2 examples (rows 13, 20)" in page


def test_export_tab_says_chart_files_embed_plotly_js(recorded_run):
    at = app()
    at.query_params["run"] = recorded_run
    open_page(at, "app_pages/results.py")
    at.session_state["results.tab"] = "Export"
    at.run()
    no_exception(at)
    assert "Each file embeds plotly.js (about 5 MB), so it opens offline" in texts(at)


def test_a_best_candidate_already_registered_says_which_version_and_run_and_no_new_version(explorer_home):
    from conftest import fixture_events, record_run

    events = fixture_events("run_short_qa_budget300")
    events[-1]["registered"] = {"uri": "prompts:/short-answer-qa/2", "version": 2, "existing": True, "by_run": "r0"}
    run_id = record_run(events)
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/optimize.py")
    no_exception(at)
    page = texts(at)
    assert "Same text as version 2 (prompts:/short-answer-qa/2), registered by run r0; no new version." in page
    assert "Registered as a new version" not in page


def fake_live_run(home, ref: str = "live-here"):
    """A run folder on this machine whose process is alive (a sleeping child standing in for the
    worker) and whose events stop after the baseline's validation; returns (ref, process)."""
    import subprocess

    from conftest import fixture_events

    folder = home / "runs" / ref
    folder.mkdir(parents=True)
    events = fixture_events("run_short_qa_budget300")[:3]  # run_started, the baseline, its front
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    process = subprocess.Popen(["sleep", "300"])
    (folder / "pid").write_text(str(process.pid))
    return ref, process


def test_settings_stay_while_a_run_is_shown_and_after_it_ends(explorer_home):
    ref, process = fake_live_run(explorer_home)
    try:
        at = optimize_page()
        at.number_input(key="optimize.budget").set_value(320).run()
        at.number_input(key="optimize.patience").set_value(0).run()
        at.radio(key="optimize.scorer").set_value("f1").run()
        at.query_params["run"] = ref  # a run is shown: none of the settings is drawn
        at.run()
        no_exception(at)
        assert not at.number_input and "Stop" in [b.label for b in at.button]
        at.run()
    finally:
        process.kill()
        process.wait()
    at.run()  # the run has ended: the set-up is drawn again below it
    no_exception(at)
    assert at.number_input(key="optimize.budget").value == 320
    assert at.number_input(key="optimize.patience").value == 0
    assert at.radio(key="optimize.scorer").value == "f1"


def test_a_run_left_going_for_a_new_set_up_stays_in_view_with_a_link_back(explorer_home):
    ref, process = fake_live_run(explorer_home)
    try:
        at = app()
        at.query_params["run"] = ref
        open_page(at, "app_pages/optimize.py")
        at.button(key="optimize.new").click().run()
        no_exception(at)
        assert "**Your previous run is still going**: iteration 0, 40 of 300 metric calls" in texts(at)
        links = [link.proto for link in at.get("page_link")]
        assert any(link.label == "Back to the running run" and f"run={ref}" in link.query_string for link in links)
        # the new set-up starts from that run's settings
        assert (at.number_input(key="optimize.patience").value, at.number_input(key="optimize.seed").value) == (0, 2)
    finally:
        process.kill()
        process.wait()


def test_set_up_a_new_run_starts_from_that_runs_settings(explorer_home):
    from conftest import fixture_events, record_run

    run_id = record_run(fixture_events("run_context_qa"))
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/optimize.py")
    at.button(key="optimize.new").click().run()
    no_exception(at)
    assert at.selectbox(key="optimize.dataset").value == "context_qa"
    assert at.selectbox(key="optimize.prompt").value == "prompts:/context-qa/1"
    assert (at.number_input(key="optimize.budget").value, at.number_input(key="optimize.patience").value) == (120, 4)
    assert at.number_input(key="optimize.seed").value == 1


def test_an_uploaded_dataset_stays_chosen_after_a_visit_to_another_page(explorer_home):
    at = optimize_page()
    at.selectbox(key="optimize.dataset").select("upload").run()
    rows = b"question,answer\nWho wrote Pride and Prejudice?,Jane Austen\nHow many legs does an insect have?,6\n"
    at.get("file_uploader")[0].set_value(("books.csv", rows, "text/csv")).run()
    at.number_input(key="optimize.budget").set_value(90).run()
    at.switch_page("app_pages/prompts.py").run()
    at.switch_page("app_pages/optimize.py").run()
    no_exception(at)
    assert at.selectbox(key="optimize.dataset").value == "upload"
    assert at.number_input(key="optimize.budget").value == 90
    assert "Using books.csv (2 rows), uploaded earlier in this session" in texts(at)


def cancelled_after_candidates() -> list[dict]:
    """The budget-300 run as if Stop had been pressed after iteration 4 (candidates 0 to 4)."""
    from conftest import fixture_events

    events = [e for e in fixture_events("run_short_qa_budget300") if e["seq"] <= 26]
    reason = "the run was stopped; register the best candidate from the Results page if you want it"
    end = {"v": 2, "seq": 27, "t": events[-1]["t"] + 1, "type": "run_finished", "status": "cancelled"}
    return [*events, end | {"stopped_by": "cancelled", "not_registered_reason": reason}]


def test_a_stop_before_any_proposal_is_one_line_without_an_empty_diff(explorer_home):
    from conftest import fixture_events, record_run

    run_id = record_run(fixture_events("run_cancelled_before_proposals"), explorer_status="cancelled")
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/optimize.py")
    no_exception(at)
    page = texts(at)
    assert "Stopped before any proposal: only the baseline was scored (20.0%)" in page
    assert "Baseline → candidate 0" not in page and "against candidate 0" not in page
    at.switch_page("app_pages/results.py").run()
    no_exception(at)
    assert "stopped with Stop before its end" in texts(at) and "stopped by cancelled" not in texts(at)


def test_registering_after_a_stop_replaces_the_note_that_offered_it(explorer_home):
    from conftest import record_run
    from core import prompts

    prompts.ensure_bundled_prompts()
    run_id = record_run(cancelled_after_candidates(), explorer_status="cancelled")
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/optimize.py")
    assert "Stopped before its end, so nothing was registered" in texts(at)
    at.button(key="optimize.register_best").click().run()
    no_exception(at)
    assert "Registered as a new version: prompts:/short-answer-qa/2." in texts(at)
    at.run()
    page = texts(at)
    assert "After the stop, the best candidate was registered as prompts:/short-answer-qa/2." in page
    assert "if you want it" not in page and "nothing was registered" not in page
    assert not [b for b in at.button if b.key == "optimize.register_best"]


def test_own_data_with_the_simulated_model_says_why_every_score_is_zero(explorer_home):
    from conftest import fixture_events, record_run

    events = fixture_events("run_short_qa_budget300")
    for example in events[0]["examples"]:
        example["inputs"] = {"question": f"What is the name of my cat number {example['id']}?"}
    run_id = record_run(events)
    at = app()
    at.query_params["run"] = run_id
    open_page(at, "app_pages/optimize.py")
    no_exception(at)
    assert "it knows only the bundled questions, 0 of these 40 rows" in texts(at)


def test_an_upload_the_simulated_model_does_not_know_is_said_at_once(explorer_home):
    at = optimize_page()
    at.selectbox(key="optimize.dataset").select("upload").run()
    rows = b"question,answer\nWhat is my cat called?,Tom\nWhere do I live?,Oslo\n"
    at.get("file_uploader")[0].set_value(("mine.csv", rows, "text/csv")).run()
    no_exception(at)
    warnings = shown(at.warning)
    assert any("it knows only the bundled questions, 0 of these 2 rows" in w for w in warnings)
    assert any("choose OpenAI or an OpenAI-compatible endpoint" in w for w in warnings)


def test_the_editor_opens_with_the_name_and_text_of_one_prompt_and_follows_the_opened_one(explorer_home):
    at = prompts_page()
    no_exception(at)
    opened = at.selectbox(key="prompts.open").value
    assert (at.text_input(key="prompts.name").value, opened) == ("short-answer-qa", "short-answer-qa")
    assert at.text_area(key="prompts.template").value == "Answer this question: {{question}}"
    at.selectbox(key="prompts.open").select("context-qa").run()
    assert at.text_input(key="prompts.name").value == "context-qa"
    assert "{{context}}" in at.text_area(key="prompts.template").value
    assert at.selectbox(key="prompts.dataset").value == "context_qa"  # checked against its own data


def test_registering_the_latest_versions_text_again_is_refused(tracking):
    from core import prompts

    at = prompts_page()
    assert "This text is already version 1 of short-answer-qa, its latest" in "\n".join(shown(at.info))
    assert at.button(key="prompts.register").disabled
    with pytest.raises(prompts.PromptError, match="already version 1"):
        prompts.register_typed_version("short-answer-qa", "Answer this question: {{question}}")
    assert [v.version for v in prompts.list_versions("short-answer-qa")] == [1]


def test_a_version_that_drops_a_variable_waits_for_a_confirmation(tracking):
    from core import prompts

    at = prompts_page()
    at.selectbox(key="prompts.open").select("context-qa").run()
    at.text_area(key="prompts.template").input("Answer this question briefly: {{question}}").run()
    no_exception(at)
    assert any("This version drops {{context}}, which version 1 of context-qa uses" in w for w in shown(at.warning))
    assert at.button(key="prompts.register").disabled
    next(c for c in at.checkbox if c.key.startswith("prompts.confirm.")).check().run()
    at.button(key="prompts.register").click().run()
    no_exception(at)
    assert any("Registered prompts:/context-qa/2" in s for s in shown(at.success))
    assert prompts.get_version("context-qa", 2).template == "Answer this question briefly: {{question}}"


def test_another_prompts_text_under_an_existing_name_waits_for_a_confirmation(explorer_home):
    at = prompts_page()
    at.text_input(key="prompts.name").input("context-qa").run()  # the text is short-answer-qa's v1
    no_exception(at)
    warnings = "\n".join(shown(at.warning))
    assert "This text is version 1 of short-answer-qa, another prompt" in warnings
    assert "drops {{context}}" in warnings
    assert at.button(key="prompts.register").disabled


def test_results_tables_put_scores_and_the_input_first(recorded_run):
    at = app()
    at.query_params["run"] = recorded_run
    open_page(at, "app_pages/results.py")
    no_exception(at)
    runs = at.dataframe[0].value
    assert list(runs.columns)[:7] == ["baseline", "best", "test", "scorer", "budget", "patience", "seed"]
    assert at.selectbox[0].format_func(recorded_run).startswith("20% → 95% · budget 300 · patience 0 · seed 2 · ")
    at.session_state["results.tab"] = "Per example"
    at.run()
    table = at.dataframe[-1].value
    assert list(table.columns) == ["row", "question", "expected", "before", "✓ before", "after", "✓ after"]


def test_results_lists_every_proposal_filterable_by_outcome(recorded_run):
    at = app()
    at.query_params["run"] = recorded_run
    open_page(at, "app_pages/results.py")
    assert "Proposals" in [t.label for t in at.tabs]
    at.session_state["results.tab"] = "Proposals"
    at.run()
    no_exception(at)
    iterations = [e.label for e in at.expander if e.label.startswith("Iteration ")]
    assert len(iterations) == 30  # accepted, skipped and discarded: every iteration
    at.multiselect(key="results.proposal_filter").set_value(["invalid_proposal"]).run()
    titles = [e.label for e in at.expander if e.label.startswith("Iteration ")]
    assert len(titles) == 4 and all("discarded" in t for t in titles)
    assert "Proposed prompt" in texts(at) or at.code  # each opens on the whole proposed prompt


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


def test_the_participant_name_comes_from_the_address_and_a_bad_one_is_one_line(explorer_home):
    at = app()
    at.query_params["participant"] = "Alice"
    at.run()
    no_exception(at)
    assert at.text_input(key="participant").value == "Alice"
    assert at.session_state["app.context"].participant == "alice"
    at.text_input(key="participant").input("not a name!").run()
    assert at.session_state["app.context"].participant is None
    assert [e for e in shown(at.sidebar.error) if e.startswith("Your name: 'not a name!' is not a participant name")]


def test_sidebar_prices_reach_the_run_settings_and_a_wrong_price_is_named(explorer_home):
    at = app()
    at.session_state["sidebar.provider"] = "compatible"
    at.session_state["sidebar.base_url"] = "http://127.0.0.1:9/v1"
    at.session_state["sidebar.model"] = "my-model"
    at.session_state["sidebar.price.task"] = "0.15, 0.60"
    at.session_state["sidebar.price.judge"] = "cheap"
    at.run()
    no_exception(at)
    context = at.session_state["app.context"]
    assert context.price_fields() == {"task_price": (0.15, 0.6), "reflection_price": None, "judge_price": None}
    assert any("Judge model price: The price 'cheap' is not two numbers" in e for e in shown(at.sidebar.error))


def estimate_line(at: AppTest) -> str:
    return next(text for text in shown(at.info) if "model calls (" in text)


def test_the_estimate_states_calls_cost_and_time_and_what_the_judge_adds(explorer_home):
    at = optimize_page()
    no_exception(at)
    line = estimate_line(at)
    assert re.search(
        r"About [\d,]+ model calls \([\d,]+ task, \d+ reflection\), nothing \(simulated model\), \d+ s", line
    )
    assert "the time is at 8 model calls at once" in texts(at)
    assert "With the judge" not in line
    at.radio(key="optimize.scorer").set_value("llm_judge").run()
    no_exception(at)
    judged = estimate_line(at)
    assert re.search(r"\d+ judge\)", judged)
    assert re.search(
        r"With the judge: the judge (doubles|triples|adds|multiplies) .* costs nothing \(simulated\)", judged
    )


def test_the_judge_scorer_has_a_judge_model_and_previews_the_simulated_judge(explorer_home):
    at = optimize_page()
    assert "LLM judge" in at.radio(key="optimize.scorer").options
    at.radio(key="optimize.scorer").set_value("llm_judge").run()
    no_exception(at)
    judge = next(t for t in at.text_input if t.label == "Judge model")
    assert judge.disabled and judge.value == "gepa-offline-demo (simulated judge)"
    assert "costs more and takes longer" in texts(at)
    at.text_input(key="optimize.try").input("The novel was written by Jane Austen.").run()
    first = match_preview(at).iloc[0]
    assert (first["match"], first["exact match"]) == ("✓", 0.0)
    assert "states the expected answer" in first["judge's reason"]


def test_a_real_judge_model_is_named_and_an_unreachable_model_leaves_one_line_instead_of_the_estimate(explorer_home):
    at = optimize_page(
        **{"sidebar.provider": "compatible", "sidebar.base_url": "http://127.0.0.1:9/v1", "sidebar.model": "my-model"}
    )
    at.radio(key="optimize.scorer").set_value("llm_judge").run()
    no_exception(at)
    assert at.text_input(key="optimize.judge_model").placeholder == "my-model"
    assert "can only say by being called" in texts(at)
    assert any(w.startswith("No estimate:") for w in shown(at.warning))
    assert not [t for t in shown(at.info) if "model calls (" in t]


def finished_run_page(fixture: str, **edits) -> AppTest:
    from conftest import fixture_events, record_run

    at = app()
    at.query_params["run"] = record_run(fixture_events(fixture))
    return open_page(at, "app_pages/optimize.py")


def test_a_finished_default_run_shows_before_and_after_on_validation_and_test_with_sizes(explorer_home):
    at = finished_run_page("run_default_final")
    no_exception(at)
    page = texts(at)
    assert "Validation, 30 examples" in page and "Test, 30 examples" in page
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Baseline (test)"], metrics["Optimized (test)"]) == ("13.3%", "83.3%")
    assert "On 30 test examples the optimized prompt got 25 right and the baseline 4 (p < 0.0001)" in page
    assert "Estimate against actual" in page
    usage = next(d.value for d in at.dataframe if "tokens in" in d.value.columns)
    assert list(usage["role"]) == ["task", "reflection", "judge"]
    assert "The judge against exact match" not in page


def test_a_finished_judge_run_shows_where_the_judge_and_exact_match_disagree(explorer_home):
    at = finished_run_page("run_judge_budget60")
    no_exception(at)
    page = texts(at)
    assert "The judge against exact match, on the validation outputs of the baseline" in page
    table = next(d.value for d in at.dataframe if "exact match wrong" in d.value.columns)
    assert list(table["judge"]) == ["right", "wrong"] and table["exact match wrong"].iloc[0] == 22
    assert "The judge accepts 22 of 30 outputs that exact match rejects" in page
    assert "The 22 examples they disagree on" in [e.label for e in at.expander]
    assert "identical (output, expected) pairs are judged once" in page


def test_set_up_a_new_run_from_a_judge_run_restores_the_judge_and_its_model(explorer_home):
    from conftest import fixture_events, record_run

    events = fixture_events("run_judge_budget60")
    events[0]["config"]["scorer"]["judge_model"] = "my-judge"
    at = app()
    at.query_params["run"] = record_run(events)
    open_page(at, "app_pages/optimize.py")
    at.button(key="optimize.new").click().run()
    no_exception(at)
    assert at.radio(key="optimize.scorer").value == "llm_judge"
    assert at.session_state["optimize.judge_model"] == "my-judge"
    assert at.radio(key="optimize.repeats").value == 1


def test_the_live_view_shows_tokens_cost_and_pace_beside_the_progress(explorer_home):
    import subprocess
    import sys

    from conftest import fixture_events

    folder = explorer_home / "runs" / "spending-live"
    folder.mkdir(parents=True)
    events = fixture_events("run_default_final")
    last_usage = max(i for i, e in enumerate(events[:60]) if e["type"] == "usage")
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events[: last_usage + 1]))
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # stands for a live worker
    try:
        (folder / "pid").write_text(str(worker.pid))
        at = app()
        at.query_params["run"] = folder.name
        open_page(at, "app_pages/optimize.py")
        no_exception(at)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Cost so far (simulated model)"] == "$0"
        assert int(metrics["Tokens"].replace(",", "")) > 0
        assert metrics["Pace"].endswith("calls/s") and metrics["Time left"].startswith("about ")
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.slow
def test_repeat_with_three_seeds_starts_three_runs_and_follows_each(explorer_home):
    at = optimize_page()
    at.number_input(key="optimize.budget").set_value(60).run()
    at.radio(key="optimize.repeats").set_value(3).run()
    at.button(key="optimize.run").click().run()
    no_exception(at)
    group = at.query_params["group"]
    assert group and "run" not in at.query_params
    refs = at.session_state["optimize.group"]["refs"]
    assert len(refs) == 3 and len(set(refs)) == 3
    links = [link.proto for link in at.get("page_link")]
    assert any(f"group={group}" in link.query_string for link in links)
    wait_until(at, lambda a: "best candidate over 3 seeds" in texts(a))
    page = texts(at)
    assert "Validation (30 examples), best candidate over 3 seeds" in page
    seeds = next(d.value for d in at.dataframe if "seed" in d.value.columns)
    assert sorted(seeds["seed"]) == [0, 1, 2]


def results_of(run_id: str | None = None, **query: str) -> AppTest:
    at = app()
    if run_id:
        at.query_params["run"] = run_id
    for name, value in query.items():
        at.query_params[name] = value
    open_page(at, "app_pages/results.py")
    no_exception(at)
    return at


def test_the_results_header_names_each_split_with_its_size_and_the_test_sentence(explorer_home):
    from conftest import fixture_events, record_run

    at = results_of(record_run(fixture_events("run_default_seed0")))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Best (candidate 4) · validation, 30 examples"] == "86.7%"
    assert metrics["Its score · test, 30 examples"] == "83.3%"
    assert metrics["Time"] == "32 s" and metrics["Cost"] == "unknown"  # recorded before costs were counted
    assert "On 30 test examples the optimized prompt got 25 right and the baseline 4 (p < 0.0001)" in texts(at)
    assert "scorer Exact match (case, whitespace)" in texts(at)


def test_a_priced_run_shows_its_cost_in_the_header_and_a_cost_line(explorer_home):
    from conftest import fixture_events, record_run

    at = results_of(record_run(fixture_events("run_judge_priced")))
    assert {m.label: m.value for m in at.metric}["Cost"] == "$0.0240"
    assert "scorer LLM judge (gepa-offline-demo, simulated)" in texts(at)
    at.session_state["results.tab"] = "Cost"
    at.run()
    no_exception(at)
    assert "**Cost**: $0.0240 (task $0.0036, reflection $0.0122, judge $0.0082)" in texts(at)
    assert len(at.get("plotly_chart")) == 1  # dollars over metric calls (core.charts.cost_figure)
    assert "The judge accepts 22 of 30 outputs that exact match rejects" in texts(at)


def test_per_example_shows_the_test_rows_when_the_split_filter_says_test(explorer_home):
    from conftest import fixture_events, record_run

    at = results_of(record_run(fixture_events("run_default_seed0")))
    at.session_state["results.tab"] = "Per example"
    at.run()
    assert "30 of 30 validation examples" in texts(at)
    at.segmented_control(key="results.ex_split").set_value("test").run()
    no_exception(at)
    assert "30 of 30 test examples" in texts(at)
    assert at.selectbox(key="results.ex_candidate.test").format_func(4) == "Candidate 4 (best) · test 83.3%"
    test_rows = {e.row for e in fixture_view("run_default_seed0").test_examples}
    assert set(at.dataframe[-1].value["row"]) == test_rows
    titles = [e.label for e in at.expander if e.label.startswith("Row ")]
    assert len(titles) == 30 and all(" · test · " in t for t in titles)


def test_per_example_of_a_judge_run_gives_the_judges_reason(explorer_home):
    from conftest import fixture_events, record_run

    at = results_of(record_run(fixture_events("run_judge_priced")))
    at.session_state["results.tab"] = "Per example"
    at.run()
    no_exception(at)
    assert "The judge's reason: The answer 'Jane Austen' gives the expected answer 'Jane Austen'." in texts(at)


def fixture_view(name: str):
    from conftest import fixture_events
    from core.analysis import build_run_view
    from core.events import decode_event

    return build_run_view([decode_event(e) for e in fixture_events(name)])


def test_mine_shows_only_the_sidebar_names_runs_and_everyone_shows_all(explorer_home):
    from conftest import fixture_events, record_run

    alice = record_run(fixture_events("run_default_seed0"), tags={"gepa_explorer.participant": "alice"})
    bob = record_run(fixture_events("run_short_qa_seed0"), tags={"gepa_explorer.participant": "bob"})
    at = results_of(participant="alice")
    assert at.segmented_control(key="results.whose").value == "mine"
    picker = at.selectbox[0]
    assert picker.value == alice and len(picker.options) == 1 and " · by alice · " in picker.options[0]
    at.segmented_control(key="results.whose").set_value("everyone").run()
    no_exception(at)
    options = at.selectbox[0].options
    assert len(options) == 2 and {o.split(" · by ")[1].split(" · ")[0] for o in options} == {"alice", "bob"}
    at.selectbox[0].set_value(bob).run()
    assert at.query_params["run"] == [bob] or at.query_params["run"] == bob
    nobody = results_of(participant="carol")
    assert "No runs by carol in this store yet" in texts(nobody) and not nobody.selectbox


def test_a_group_link_opens_the_seeds_view_with_mean_and_spread(explorer_home):
    from conftest import fixture_events, record_run

    for name in ("run_default_seed0", "run_default_seed1", "run_default_seed2"):
        record_run(fixture_events(name), tags={"gepa_explorer.group": "g1"})
    record_run(fixture_events("run_short_qa_seed0"))  # not of the group
    at = results_of(group="g1")
    assert "Seeds" in [t.label for t in at.tabs]
    page = texts(at)
    assert "This run is one of 3 runs of the same settings with different seeds" in page
    assert "**Validation (30 examples)**, best candidate over 3 seeds: mean 86.7%, standard deviation 0.0%" in page
    assert "**Test (30 examples)**, best candidate over 3 seeds: mean 83.3%, standard deviation 0.0%" in page
    assert sorted(at.dataframe[-1].value["seed"]) == [0, 1, 2]
    assert len(at.get("plotly_chart")) == 2  # every seed's best-so-far curve; what if over the group
    at.session_state["results.tab"] = "What if"
    at.run()
    no_exception(at)
    assert at.multiselect(key="results.compare_groups").value == ["g1"]  # its own group, as a distribution
    compared = at.dataframe[-1].value
    assert list(compared["seeds"]) == [3] and list(compared["test mean"]) == pytest.approx([25 / 30])


def test_the_estimate_says_unknown_not_zero_for_a_model_without_a_price(explorer_home, endpoint_factory):
    server = endpoint_factory()
    at = optimize_page(
        **{"sidebar.provider": "compatible", "sidebar.base_url": server.base_url, "sidebar.model": "gepa-offline-demo"}
    )
    no_exception(at)
    line = estimate_line(at)
    assert "an unknown amount (a model has no price)" in line and "$0" not in line
    roles = next(d.value for d in at.dataframe if "cost" in d.value.columns and "role" in d.value.columns)
    assert set(roles["cost"]) == {"unknown"}


def test_the_runs_overlay_names_each_run_by_its_scorer_when_scorers_differ(explorer_home):
    from conftest import fixture_events, record_run
    from core import tags

    exact = record_run(fixture_events("run_default_seed0"), tags={tags.SCORER: "exact_match"})
    judge = record_run(fixture_events("run_default_seed0"), tags={tags.SCORER: "llm_judge"})
    at = app()
    at.query_params["run"] = exact
    at.query_params["results.tab"] = "What if"
    open_page(at, "app_pages/results.py")
    no_exception(at)
    compare = at.multiselect(key="results.compare")
    assert "judge" in compare.format_func(judge).lower() and compare.options == [compare.format_func(judge)]
