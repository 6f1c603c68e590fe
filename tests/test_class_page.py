"""AppTests of the Class page: the class's runs on one dataset as a table, a scatter and one sentence."""

from __future__ import annotations

import json
import re

from streamlit.testing.v1 import AppTest

from conftest import ROOT, record_run

CLASS_PAGE = "app_pages/class_view.py"


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)


def class_page() -> AppTest:
    at = app().run()
    at.switch_page(CLASS_PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "info", "warning", "error", "caption", "title"):
        parts.extend(re.sub(r"\\(.)", r"\1", str(e.value)) for e in getattr(at, kind))
    return "\n".join(parts)


def class_run(who: str | None, score: float, calls: int, budget: int, patience: int, dataset: str) -> str:
    """A finished optimization run in the test's store, tagged and logged as the engine does (who started
    it, its dataset, scorer, budget, patience, best validation score, metric calls, cost, seconds)."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    from core.store import configure_mlflow, ensure_experiment

    configure_mlflow()
    client = mlflow.MlflowClient()
    run_id = client.create_run(ensure_experiment(), run_name=f"short-answer-qa v1 · budget {budget}").info.run_id
    run_tags = {
        "gepa_explorer.kind": "optimization",
        "gepa_explorer.status": "finished",
        "gepa_explorer.dataset": dataset,
        "gepa_explorer.scorer": "exact match (case, whitespace)",
        "gepa_explorer.stopped_by": "budget",
    } | ({"gepa_explorer.participant": who} if who else {})
    params = {"budget": budget, "patience": patience, "seed": 0, "scorer": "exact_match"}
    metrics = {"initial_eval_score": 0.2, "final_eval_score": score, "metric_calls": calls, "cost_usd": 0.0}
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), 0, 0) for k, v in (metrics | {"seconds": 9.0}).items()],
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in run_tags.items()],
    )
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def record_class() -> dict[str, str]:
    """Three participants and a nameless run on the bundled set, one run on another dataset."""
    return {
        label: class_run(*run)
        for label, *run in [
            ("alice-long", "alice", 0.90, 305, 300, 0, "short_answer_qa"),
            ("alice-short", "alice", 0.70, 102, 100, 3, "short_answer_qa"),
            ("bob-long", "bob", 0.85, 252, 250, 0, "short_answer_qa"),
            ("bob-short", "bob", 0.60, 64, 60, 3, "short_answer_qa"),
            ("carol", "carol", 0.75, 150, 150, 3, "short_answer_qa"),
            ("nameless", None, 0.50, 90, 200, 3, "short_answer_qa"),
            ("other-set", "dave", 0.40, 120, 120, 3, "context_qa"),
        ]
    }


def test_the_class_page_says_there_are_no_runs_yet(explorer_home):
    at = class_page()
    assert at.title[0].value == "Class"
    assert "No optimization runs in this store yet" in texts(at)
    assert not at.dataframe and not at.get("plotly_chart")


def test_every_participants_runs_on_the_most_used_dataset_as_a_table_a_scatter_and_a_sentence(explorer_home):
    ids = record_class()
    at = class_page()
    assert at.selectbox(key="class.dataset").value == "short_answer_qa"
    table = at.dataframe[0].value
    assert sorted(table["participant"]) == ["(no name)", "alice", "alice", "bob", "bob", "carol"]
    alice_long = table[table["results"] == f"results?run={ids['alice-long']}"].iloc[0]
    assert alice_long["best validation"] == 90 and alice_long["metric calls"] == 305
    assert (alice_long["budget"], alice_long["patience"]) == (300, 0)
    assert table[table["best of participant"]]["participant"].tolist().count("alice") == 1
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    drawn = [t["name"] for t in spec["data"] if t.get("customdata")]
    assert drawn == ["alice", "bob", "carol", "(no name)"]
    assert spec["layout"]["yaxis"]["tickformat"] == ".0%"
    assert "Runs with patience 0 (no early stop) used 2.7× the metric calls of runs with a patience" in texts(at)
    assert "No run here has a participant name yet" not in texts(at)


def test_the_dataset_picker_and_the_best_only_toggle_change_the_rows(explorer_home):
    record_class()
    at = class_page()
    at.toggle(key="class.best_only").set_value(True).run()
    assert sorted(at.dataframe[0].value["participant"]) == ["(no name)", "alice", "bob", "carol"]
    at.selectbox(key="class.dataset").set_value("context_qa").run()
    assert not at.exception
    assert at.dataframe[0].value["participant"].tolist() == ["dave"]
    assert "Runs with patience 0" not in texts(at)  # one run: nothing to compare, so nothing is said


def test_runs_without_names_are_listed_and_the_page_says_how_to_set_one(explorer_home):
    record_run(None)
    record_run(None)
    at = class_page()
    assert at.dataframe[0].value["participant"].tolist() == ["(no name)", "(no name)"]
    note = texts(at)
    assert "No run here has a participant name yet" in note and "Your name" in note and "?participant=" in note
