"""core.participants and core.charts.class_scatter_figure: the Class page's table, its one sentence and its
scatter, from runs as MLflow lists them."""

from __future__ import annotations

import itertools

import pytest

from core.participants import NO_NAME, best_of_each, class_datasets, class_finding, class_table, named_participants
from core.runs import RunInfo

EXACT = "exact match (case, whitespace)"
_ids = itertools.count()


def run(
    who: str | None,
    *,
    score: float | None = 0.8,
    calls: int = 100,
    budget: int = 100,
    patience: int = 3,
    dataset: str = "short_answer_qa",
    scorer: str = EXACT,
    status: str = "finished",
    test: float | None = None,
) -> RunInfo:
    number = next(_ids)
    metrics = {"metric_calls": float(calls), "cost_usd": 0.0, "seconds": 7.5}
    if score is not None:
        metrics |= {"initial_eval_score": 0.2, "final_eval_score": score}
    if test is not None:
        metrics["test_best_score"] = test
    run_tags = {
        "gepa_explorer.kind": "optimization",
        "gepa_explorer.status": status,
        "gepa_explorer.dataset": dataset,
        "gepa_explorer.scorer": scorer,
    }
    if who:
        run_tags["gepa_explorer.participant"] = who
    return RunInfo(
        run_id=f"run{number:04d}",
        name=f"short-answer-qa v1 · budget {budget}",
        experiment_id="1",
        status="RUNNING" if status == "running" else "FINISHED",
        start_ms=1_790_000_000_000 - number * 60_000,
        end_ms=None,
        params={"budget": str(budget), "patience": str(patience), "seed": "0", "scorer": "exact_match"},
        tags=run_tags,
        metrics=metrics,
    )


@pytest.fixture
def class_runs() -> list[RunInfo]:
    """Three participants and one nameless run on the bundled set, two runs on another dataset."""
    return [
        run("alice", score=0.70, calls=102, budget=100, patience=3, test=0.66),
        run("alice", score=0.90, calls=305, budget=300, patience=0, test=0.8),
        run("bob", score=0.60, calls=64, budget=60, patience=3),
        run("bob", score=0.85, calls=252, budget=250, patience=0),
        run("carol", score=0.75, calls=150, budget=150, patience=3),
        run(None, score=0.5, calls=90, budget=200, patience=3),
        run("alice", score=0.4, calls=120, budget=120, dataset="context_qa"),
        run("dave", score=None, calls=10, budget=120, dataset="context_qa", status="running"),
    ]


def test_the_datasets_are_listed_most_used_first(class_runs):
    assert class_datasets(class_runs) == [("short_answer_qa", 6), ("context_qa", 2)]


def test_the_class_table_has_one_row_per_run_of_the_chosen_dataset(class_runs):
    table = class_table(class_runs, dataset="short_answer_qa")
    assert list(table["participant"]) == ["alice", "alice", "bob", "bob", "carol", NO_NAME]
    first = table.iloc[0]
    assert first["best validation"] == 0.70 and first["test"] == 0.66 and first["metric calls"] == 102
    assert (first["budget"], first["patience"], first["seed"]) == (100, 3, 0)
    assert first["scorer"] == EXACT and first["status"] == "finished" and first["seconds"] == 7.5
    assert first["run id"] == class_runs[0].run_id
    assert table["test"].isna().sum() == 4  # only alice's runs had a test set


def test_runs_still_going_are_listed_with_their_status_and_no_score(class_runs):
    table = class_table(class_runs, dataset="context_qa")
    assert list(table["status"]) == ["finished", "running"]
    assert table["best validation"].isna().tolist() == [False, True]


def test_the_best_run_of_each_participant_is_marked_once(class_runs):
    table = class_table(class_runs, dataset="short_answer_qa")
    best = best_of_each(table)
    assert list(best["participant"]) == ["alice", "bob", "carol", NO_NAME]
    assert list(best["best validation"]) == [0.90, 0.85, 0.75, 0.5]
    assert table["best of participant"].sum() == 4


def test_a_tie_goes_to_the_run_with_fewer_metric_calls():
    table = class_table([run("alice", score=0.8, calls=300), run("alice", score=0.8, calls=120)])
    assert best_of_each(table)["metric calls"].tolist() == [120]


def test_runs_without_a_name_are_not_a_participant_name(class_runs):
    assert named_participants(class_table(class_runs)) == ["alice", "bob", "carol", "dave"]
    assert named_participants(class_table([run(None), run("")])) == []


def test_the_sentence_compares_patience_0_with_a_patience_from_the_runs(class_runs):
    table = class_table(class_runs, dataset="short_answer_qa")
    # patience 0: alice 305 calls 0.90, bob 252 calls 0.85; with one: 102/0.70, 64/0.60, 150/0.75, 90/0.50
    without, with_one = (305 + 252) / 2, (102 + 64 + 150 + 90) / 4
    points = round(((0.90 + 0.85) / 2 - (0.70 + 0.60 + 0.75 + 0.50) / 4) * 100)
    assert class_finding(table) == (
        f"Runs with patience 0 (no early stop) used {without / with_one:.1f}× the metric calls of runs with a "
        f"patience, for +{points} points of best validation score on average (2 runs against 4)."
    )
    assert "2.7×" in class_finding(table) and "+24 points" in class_finding(table)


def test_without_two_patiences_the_sentence_compares_budgets():
    runs = [
        run("a", score=0.6, calls=60, budget=60),
        run("b", score=0.7, calls=100, budget=100),
        run("c", score=0.9, calls=300, budget=300),
        run("d", score=0.8, calls=250, budget=250),
    ]
    assert class_finding(class_table(runs)) == (
        "Runs with a budget above 175 used 3.4× the metric calls of runs with 175 or less, "
        "for +20 points of best validation score on average (2 runs against 2)."
    )


def test_a_loss_and_no_difference_are_said_plainly():
    worse = [run("a", score=0.9, calls=100, patience=3), run("b", score=0.9, calls=100, patience=3)]
    worse += [run("c", score=0.8, calls=200, patience=0), run("d", score=0.8, calls=200, patience=0)]
    assert "for -10 points of best validation score" in class_finding(class_table(worse))
    same = [run(w, score=0.8, calls=c, patience=p) for w, c, p in [("a", 1, 3), ("b", 1, 3), ("c", 2, 0), ("d", 2, 0)]]
    assert "2.0× the metric calls of runs with a patience, for the same best validation score" in class_finding(
        class_table(same)
    )


def test_nothing_is_said_on_too_little_data(class_runs):
    assert class_finding(class_table(class_runs, dataset="context_qa")) is None  # one finished run
    one_each = [run("a", patience=0, calls=300, budget=300), run("b", patience=3, calls=100, budget=100)]
    assert class_finding(class_table(one_each)) is None
    assert class_finding(class_table([])) is None


def test_only_runs_of_the_most_used_scorer_are_compared():
    runs = [run(w, score=0.9, calls=300, budget=300, patience=0) for w in ("a", "b")]
    runs += [run(w, score=0.7, calls=100, budget=100, patience=3) for w in ("c", "d")]
    runs += [run("e", score=0.1, calls=999, patience=0, scorer="F1 (case, whitespace)")]
    assert class_finding(class_table(runs)) == (
        f"Among the {EXACT} runs: runs with patience 0 (no early stop) used 3.0× the metric calls of runs "
        "with a patience, for +20 points of best validation score on average (2 runs against 2)."
    )


def test_cancelled_and_failed_runs_are_shown_but_not_compared():
    runs = [run(w, score=0.9, calls=300, patience=0) for w in ("a", "b")]
    runs += [run("c", score=0.7, calls=100, patience=3), run("d", score=0.7, calls=40, patience=3, status="cancelled")]
    table = class_table(runs)
    assert len(table) == 4 and class_finding(table) is None


def points(fig) -> list:
    """The traces that draw runs (one per participant), not the legend's keys."""
    return [t for t in fig.data if t.customdata is not None]


def test_the_class_scatter_has_a_colour_per_participant_and_a_symbol_per_patience(class_runs):
    from core.charts import PARTICIPANT_GROUP, class_scatter_figure

    fig = class_scatter_figure(class_table(class_runs, dataset="short_answer_qa"))
    people = points(fig)
    assert [t.name for t in people] == ["alice", "bob", "carol", NO_NAME]
    assert len({t.marker.color for t in people}) == 4
    keys = [t for t in fig.data if t.legendgroup == "patience"]
    assert [t.name for t in keys] == ["patience 0", "patience 3"]
    lines = [t for t in fig.data if t.mode == "lines"]  # each participant's legend entry, in their colour
    assert [(t.name, t.line.color, t.legendgroup) for t in lines] == [
        (t.name, t.marker.color, PARTICIPANT_GROUP + t.name) for t in people
    ]
    assert not any(t.showlegend for t in people)
    alice = people[0]
    assert list(alice.x) == [102, 305] and list(alice.y) == [0.70, 0.90]
    assert list(alice.marker.symbol) == [keys[1].marker.symbol, keys[0].marker.symbol]
    assert list(alice.marker.size) == [11, 15]  # the best run of each participant is drawn larger
    assert list(alice.customdata) == [class_runs[0].run_id, class_runs[1].run_id]
    hover = alice.hovertext[1]
    assert hover.startswith(
        f"alice · short-answer-qa v1 · budget 300 (run {class_runs[1].run_id[:8]})<br>best validation 90%, test 80%"
    )
    assert "best of alice's runs" in hover and "305 metric calls of budget 300, patience 0" in hover
    assert fig.layout.yaxis.tickformat == ".0%" and fig.layout.xaxis.title.text == "Metric calls used"


def test_the_class_scatter_leaves_out_runs_without_a_score_and_says_when_none_has_one(class_runs):
    from core.charts import class_scatter_figure

    fig = class_scatter_figure(class_table(class_runs, dataset="context_qa"))
    assert [t.name for t in points(fig)] == ["alice"]
    empty = class_scatter_figure(class_table([run("dave", score=None, status="running")]))
    assert points(empty) == []
    assert empty.layout.annotations[0].text == "No run on this dataset has a score yet."


def test_hover_text_escapes_what_a_participant_typed():
    from core.charts import class_scatter_figure

    nasty = run("alice")
    nasty = RunInfo(**{**nasty.__dict__, "name": "<b>mine</b>"})
    hover = points(class_scatter_figure(class_table([nasty])))[0].hovertext[0]
    assert "&lt;b&gt;mine&lt;/b&gt;" in hover and "<b>" not in hover
