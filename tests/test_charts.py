"""core.charts: figures checked by their traces, not by looking at them."""

import copy
import json
import re
from pathlib import Path

import pytest

from core.analysis import RunView, build_run_view, front_members_at, run_curve, what_if
from core.charts import (
    BEST_TRACE,
    CANDIDATE_TRACE,
    FRONT_TRACE,
    MERGE_EDGE_TRACE,
    REJECTED_TRACE,
    SELECTED_TRACE,
    candidates_figure,
    clicked_candidate,
    compare_runs_figure,
    figure_html,
    front_timeline_figure,
    lineage_figure,
    live_scores_figure,
    page_figures,
    score_matrix_figure,
    what_if_figure,
)
from core.events import decode_event

FIXTURES = Path(__file__).parent / "fixtures"


def events_of(name: str) -> list[dict]:
    """A recorded run's lines as the JSON objects in its file (tests edit them before reading)."""
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines() if line.strip()]


def view_from(lines: list[dict]) -> RunView:
    return build_run_view([decode_event(line) for line in lines])


def view_of(name: str) -> RunView:
    return view_from(events_of(name))


def trace(fig, name: str):
    (found,) = [t for t in fig.data if t.name == name]
    return found


def candidates_in(fig_trace) -> list[int]:
    return [int(row[0]) for row in fig_trace.customdata]


def seed0_with(change) -> RunView:
    """The seed0 run with its events edited by ``change(events)`` first."""
    events = copy.deepcopy(events_of("run_short_qa_seed0"))
    change(events)
    return view_from(events)


def add_rejected_proposal(events: list[dict]) -> None:
    events.insert(
        -1,
        {
            "v": 1,
            "type": "iteration",
            "iteration": 4,
            "outcome": "rejected",
            "reason": "not better on the minibatch than its parent",
            "parent": 3,
            "minibatch": [1, 2, 3],
            "scores_before": [1.0, 1.0, 1.0],
            "scores_after": [1.0, 0.0, 1.0],
            "candidate": None,
            "template": "Answer <b>briefly</b> & exactly: {{question}}",
            "metric_calls": 184,
        },
    )


def test_candidates_figure_marks_exactly_the_current_front():
    view = view_of("run_short_qa_seed0")
    fig = candidates_figure(view)
    assert candidates_in(trace(fig, FRONT_TRACE)) == list(front_members_at(view, 3)) == [3]
    assert candidates_in(trace(fig, CANDIDATE_TRACE)) == [0, 1, 2]


def test_candidates_figure_at_an_earlier_iteration_marks_the_front_of_then():
    view = view_of("run_short_qa_seed0")
    fig = candidates_figure(view, at_iteration=2)
    assert candidates_in(trace(fig, FRONT_TRACE)) == list(front_members_at(view, 2)) == [0, 2]
    assert candidates_in(trace(fig, CANDIDATE_TRACE)) == [1]


def test_candidates_figure_has_a_title_axis_titles_and_a_legend():
    fig = candidates_figure(view_of("run_short_qa_seed0"))
    assert fig.layout.title.text and fig.layout.xaxis.title.text == "Iteration"
    assert "Exact match" in fig.layout.yaxis.title.text
    assert len(fig.data) > 1 and all(t.name for t in fig.data) and fig.layout.showlegend is not False


def test_candidates_figure_front_and_other_candidates_differ_by_symbol():
    fig = candidates_figure(view_of("run_short_qa_seed0"))
    assert trace(fig, FRONT_TRACE).marker.symbol != trace(fig, CANDIDATE_TRACE).marker.symbol


def test_candidates_figure_places_points_at_iteration_or_metric_calls():
    view = view_of("run_short_qa_seed0")
    by_iteration = trace(candidates_figure(view, "iteration"), CANDIDATE_TRACE)
    by_calls = candidates_figure(view, "metric_calls")
    assert list(by_iteration.x) == [0, 1, 2] and list(by_iteration.y) == [0.2, 0.725, 0.8]
    assert list(trace(by_calls, CANDIDATE_TRACE).x) == [40, 86, 132]
    assert by_calls.layout.xaxis.title.text.startswith("Metric calls")


def test_candidates_figure_best_so_far_is_a_step_line():
    line = trace(candidates_figure(view_of("run_short_qa_seed0")), "Best validation score so far")
    assert line.line.shape == "hv" and list(line.y) == [0.2, 0.725, 0.8, 0.85]


def test_candidates_figure_shows_rejected_proposals_at_their_minibatch_score():
    rejected = trace(candidates_figure(seed0_with(add_rejected_proposal)), REJECTED_TRACE)
    assert list(rejected.x) == [4] and list(rejected.y) == pytest.approx([2 / 3])
    assert rejected.marker.symbol == "x-thin-open"
    assert rejected.customdata[0][0] is None


def test_candidates_figure_hover_names_candidate_score_parents_and_prompt():
    text = trace(candidates_figure(view_of("run_short_qa_seed0")), FRONT_TRACE).hovertext[0]
    assert "Candidate 3" in text and "0.850" in text and "Parents: 2" in text
    assert "Reply to the question that follows." in text


def test_candidates_figure_escapes_model_text_in_hover():
    def inject(events):
        for event in events:
            if event["type"] == "validation" and event["candidate"] == 3:
                event["template"] = "<script>alert('x')</script> & {{question}}"

    fig = candidates_figure(seed0_with(inject))
    text = trace(fig, FRONT_TRACE).hovertext[0]
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; {{question}}" in text and "<script>" not in text


def test_rejected_proposal_hover_escapes_the_proposed_prompt():
    text = trace(candidates_figure(seed0_with(add_rejected_proposal)), REJECTED_TRACE).hovertext[0]
    assert "Answer &lt;b&gt;briefly&lt;/b&gt; &amp; exactly" in text and "<b>briefly" not in text


def test_candidates_figure_highlights_the_selected_candidate():
    fig = candidates_figure(view_of("run_short_qa_seed0"), selected=1)
    ring = trace(fig, SELECTED_TRACE)
    assert candidates_in(ring) == [1] and list(ring.y) == [0.725] and "selected" in ring.text[0]


def test_candidates_figure_without_selection_has_no_highlight():
    assert SELECTED_TRACE not in [t.name for t in candidates_figure(view_of("run_short_qa_seed0")).data]


def test_front_timeline_marks_each_member_after_each_validation():
    view = view_of("run_short_qa_seed0")
    members = trace(front_timeline_figure(view), FRONT_TRACE)
    marked = sorted(zip(members.x.tolist(), members.y.tolist(), strict=True))
    expected = sorted((s.iteration, m) for s in view.fronts for m in s.members)
    assert marked == expected == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 2), (3, 3)]
    assert members.marker.symbol == "square"


def test_front_timeline_marks_where_candidates_leave_the_front():
    left = trace(front_timeline_figure(view_of("run_short_qa_seed0")), "Left the front")
    assert sorted(zip(left.x.tolist(), left.y.tolist(), strict=True)) == [(2, 1), (3, 0), (3, 2)]


def test_front_timeline_has_axis_titles():
    fig = front_timeline_figure(view_of("run_context_qa"))
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("Iteration", "Candidate")


def test_lineage_figure_draws_parent_child_edges():
    fig = lineage_figure(view_of("run_context_qa"))
    edges = trace(fig, "Parent → child")
    assert list(edges.x) == [0, 1, None, 1, 4, None]
    assert fig.layout.xaxis.title.text == "Iteration that found the candidate"


def test_lineage_figure_marks_the_best_candidate_and_the_front_by_symbol():
    fig = lineage_figure(view_of("run_short_qa_seed0"))
    assert candidates_in(trace(fig, BEST_TRACE)) == [3] and trace(fig, BEST_TRACE).marker.symbol == "star"
    assert candidates_in(trace(fig, FRONT_TRACE)) == []
    assert candidates_in(trace(fig, "Candidate")) == [0, 1, 2]


def test_lineage_figure_draws_a_merge_with_a_dotted_second_parent():
    def merge(events):
        for event in events:
            if event["type"] == "validation" and event["candidate"] == 3:
                event["parents"] = [2, 0]

    fig = lineage_figure(seed0_with(merge))
    second = trace(fig, MERGE_EDGE_TRACE)
    assert list(second.x) == [0, 3, None] and second.line.dash == "dot"
    assert "(a merge)" in trace(fig, BEST_TRACE).hovertext[0]


def test_lineage_figure_by_depth_puts_each_candidate_one_step_right_of_its_parent():
    edges = trace(lineage_figure(view_of("run_context_qa"), x="depth"), "Parent → child")
    assert list(edges.x) == [0, 1, None, 1, 2, None]


def test_score_matrix_figure_writes_pass_fail_in_small_matrices():
    fig = score_matrix_figure(view_of("run_short_qa_seed0"), order="index")
    heatmap = fig.data[0]
    assert heatmap.texttemplate == "%{text}" and heatmap.text[0][0] == "✓" and heatmap.text[0][1] == "✗"
    assert list(heatmap.y) == ["0", "1", "2", "3"] and len(heatmap.x) == 40


def test_score_matrix_figure_leaves_large_matrices_to_hover():
    events = copy.deepcopy(events_of("run_cancelled_before_proposals"))
    started, validation = events[0], events[1]
    started["examples"] = [{"id": i, "row": i + 1, "inputs": {"question": "q"}, "expected": "a"} for i in range(80)]
    started["val_ids"] = list(range(80))
    validation["scores"], validation["outputs"] = [1.0, 0.0] * 40, ["a", "b"] * 40
    heatmap = score_matrix_figure(view_from(events)).data[0]
    assert heatmap.text is None and "Score" in heatmap.hovertemplate


def test_score_matrix_figure_colorbar_names_the_scorer_and_columns_are_hardest_first():
    fig = score_matrix_figure(view_of("run_short_qa_seed0"))
    assert fig.data[0].colorbar.title.text == "Exact match (case, whitespace)"
    assert fig.data[0].x[0] == "7" and "hardest first" in fig.layout.xaxis.title.text  # position 6 is row 7


def test_what_if_figure_marks_cells_beyond_the_recording():
    view = view_of("run_short_qa_seed0")
    fig = what_if_figure(what_if(view, [100, 150, 1000], [None, 2]))
    heatmap = fig.data[0]
    assert list(heatmap.x) == ["100", "150", "1000"] and list(heatmap.y) == ["off", "2"]
    assert heatmap.text[0] == ["0.800", "0.850", "0.850*"]
    assert "recorded run ended first" in heatmap.hovertext[0][2]
    assert "recorded run ended before this stop" in fig.layout.title.subtitle.text
    assert fig.layout.xaxis.title.text.startswith("Budget") and fig.layout.yaxis.title.text.startswith("Patience")


def test_compare_runs_figure_draws_one_step_line_per_run_with_distinct_symbols():
    curve = run_curve(view_of("run_short_qa_seed0"))
    fig = compare_runs_figure({"seed 0": curve, "budget 300": run_curve(view_of("run_short_qa_budget300"))})
    assert [t.name for t in fig.data] == ["seed 0", "budget 300"]
    assert all(t.line.shape == "hv" for t in fig.data)
    assert fig.data[0].marker.symbol != fig.data[1].marker.symbol
    assert list(fig.data[0].x) == [40, 86, 132, 178] and fig.layout.xaxis.title.text.startswith("Metric calls")


def test_compare_runs_figure_escapes_run_labels():
    fig = compare_runs_figure({"<img src=x>": [(40, 0.2)]})
    assert fig.data[0].name == "&lt;img src=x&gt;" and "<img" not in fig.data[0].hovertext[0]


def test_live_scores_figure_is_small_with_a_baseline_reference_line():
    fig = live_scores_figure(view_of("run_short_qa_seed0"))
    assert fig.layout.height <= 300 and fig.layout.title.text
    baseline = trace(fig, "Baseline (0.200)")
    assert list(baseline.y) == [0.2, 0.2] and list(baseline.x) == [0, 3] and baseline.line.dash == "dash"
    assert list(trace(fig, "Candidate").y) == [0.2, 0.725, 0.8, 0.85]


def test_live_scores_figure_before_any_validation_says_it_is_waiting():
    fig = live_scores_figure(view_from(events_of("run_short_qa_seed0")[:1]))
    assert "Waiting" in fig.layout.annotations[0].text


def test_every_figure_builds_for_a_baseline_only_run():
    view = view_of("run_cancelled_before_proposals")
    assert candidates_in(trace(candidates_figure(view), FRONT_TRACE)) == [0]
    assert candidates_in(trace(lineage_figure(view), BEST_TRACE)) == [0]
    assert len(front_timeline_figure(view).data[0].x) == 1
    assert score_matrix_figure(view).data[0].z.shape == (1, 40)
    assert what_if_figure(what_if(view, [40, 150], [None])).data[0].text[0] == ["0.200", "0.200*"]


def test_figure_html_embeds_plotly_js_and_loads_no_external_script():
    html = figure_html(candidates_figure(view_of("run_short_qa_seed0")))
    assert html.lower().startswith("<!doctype html>") and re.search(r"\* plotly\.js v\d", html)
    assert not re.findall(r"<script[^>]*\bsrc=", html, flags=re.IGNORECASE)
    assert not re.findall(r"<link[^>]*\bhref=\"https?:", html, flags=re.IGNORECASE)
    # The embedded plotly.js names CDN addresses (map tiles, topojson) used only by map traces.
    assert "cdn.plot.ly/plotly" not in html.lower()


# The colours the app's charts are drawn in (read from a chart's layout in Chromium).
APP_COLORWAY = [
    "#0068c9",
    "#83c9ff",
    "#ff2b2b",
    "#ffabab",
    "#29b09d",
    "#7defa1",
    "#ff8700",
    "#ffd16a",
    "#6d3fc0",
    "#d5dae5",
]


def exported_figure(html: str) -> dict:
    """The figure an exported page draws: the data and layout of its ``Plotly.newPlot`` call."""
    decoder = json.JSONDecoder()
    start = html.index("Plotly.newPlot(")
    start = html.index("[", start)
    data, end = decoder.raw_decode(html, start)
    layout, _ = decoder.raw_decode(html, html.index("{", end))
    return {"data": data, "layout": layout}


def test_exported_chart_has_the_app_colours_under_streamlits_placeholder_template(monkeypatch):
    import plotly.io as pio
    import streamlit.elements.plotly_chart  # noqa: F401 - registers Streamlit's plotly template, as in the app

    monkeypatch.setattr(pio.templates, "default", "streamlit")  # what every figure built in the app gets
    html = figure_html(candidates_figure(view_of("run_short_qa_seed0")))
    template = exported_figure(html)["layout"]["template"]
    assert template["layout"]["colorway"] == APP_COLORWAY  # not Streamlit's "#000001", "#000002", ...
    placeholders = re.findall(r'"#0000[0-4][0-9]"', json.dumps(exported_figure(html)))
    assert not placeholders


class _Selection:
    def __init__(self, points):
        self.selection = type("State", (), {"points": points})()


def test_clicked_candidate_reads_the_first_customdata_value():
    assert clicked_candidate(_Selection([{"customdata": [3, 2]}])) == 3
    assert clicked_candidate(_Selection([{"customdata": [None, 5]}, {"customdata": 4.0}])) == 4  # rejected, then 4
    assert clicked_candidate(_Selection([])) is None
    assert clicked_candidate(None) is None


def test_page_figures_builds_every_results_chart_with_a_title():
    view = view_of("run_short_qa_seed0")
    figures = page_figures(view, "abc")
    assert list(figures) == ["candidates", "pareto-front", "lineage", "score-matrix", "what-if", "best-so-far"]
    for name, build in figures.items():
        assert build().layout.title.text, name


def test_what_if_over_a_group_shows_the_mean_and_the_range_of_its_seeds():
    from core.charts import what_if_group_figure
    from core.groups import what_if_over_group

    views = [view_of("run_short_qa_seed0"), view_of("run_short_qa_budget300")]
    grid = what_if_over_group(views, [150, 300], [None, 2])
    heatmap = what_if_group_figure(grid).data[0]
    assert list(heatmap.x) == ["150", "300"] and list(heatmap.y) == ["off", "2"]
    assert set(grid["runs"]) == {2}
    top = grid[(grid["budget"] == 150) & grid["patience"].isna()].iloc[0]
    assert top["lowest"] <= top["best_score"] <= top["highest"]
    assert heatmap.text[0][0] == f"{top['best_score']:.2f}<br>{top['lowest']:.2f}–{top['highest']:.2f}"


def test_cost_figure_says_when_prices_are_unknown():
    from core.charts import cost_figure

    fig = cost_figure(view_of("run_short_qa_seed0"))  # a run recorded before metering
    assert list(fig.data[0].x) == [] and "No cost recorded" in fig.layout.annotations[0].text


def test_validation_test_figure_puts_each_candidate_against_the_equal_line():
    from core.analysis import validation_vs_test
    from core.charts import CHOSEN_TRACE, EQUAL_TRACE, VALIDATION_TEST_TRACE, validation_test_figure

    view = view_of("run_default_seed0")
    fig = validation_test_figure(validation_vs_test(view))
    traces = {t.name: t for t in fig.data}
    assert list(traces[EQUAL_TRACE].x) == [0, 1] and list(traces[EQUAL_TRACE].y) == [0, 1]
    assert [d[0] for d in traces[CHOSEN_TRACE].customdata] == [view.best_candidate]
    assert list(traces[CHOSEN_TRACE].y) == [view.on_test[view.best_candidate].aggregate]
    assert len(traces[VALIDATION_TEST_TRACE].x) == len(view.candidates) - 1


def test_what_if_test_figure_colours_cells_by_the_test_score():
    from core.analysis import what_if_on_test
    from core.charts import what_if_test_figure

    view = view_of("run_default_seed0")
    table = what_if_on_test(view, what_if(view, [36, 300], [None, 2]))
    heatmap = what_if_test_figure(table).data[0]
    first = table.iloc[0]
    assert heatmap.z[0][0] == first["test_score"]
    assert heatmap.text[0][0].endswith(f"val {first['best_score']:.2f}")


def test_cost_figure_draws_dollars_over_metric_calls_for_a_priced_run():
    from core.charts import cost_figure

    view = view_of("run_judge_priced")
    fig = cost_figure(view)
    assert len(fig.data[0].x) == len(view.usage_updates) and fig.data[0].y[-1] == view.cost.total > 0


def test_compare_groups_figure_draws_a_band_and_a_mean_per_group():
    from core.analysis import curve_band
    from core.charts import compare_groups_figure

    band = curve_band([run_curve(view_of(n)) for n in ("run_default_seed0", "run_default_seed1", "run_default_seed2")])
    fig = compare_groups_figure({"budget 300 <3 seeds>": band})
    area, mean = fig.data
    assert area.fill == "toself" and list(area.y) == list(band.highest) + list(band.lowest)[::-1]
    assert list(mean.y) == list(band.mean) and mean.name == "budget 300 &lt;3 seeds&gt;: mean"
    assert "Choose groups" in compare_groups_figure({}).layout.annotations[0].text


def test_validation_test_figure_labels_candidates_on_one_spot_once():
    from core.analysis import validation_vs_test
    from core.charts import CHOSEN_TRACE, VALIDATION_TEST_TRACE, validation_test_figure

    fig = validation_test_figure(validation_vs_test(view_of("run_default_seed0")))  # 4, 5 and 7: 86.7% / 83.3%
    traces = {t.name: t for t in fig.data}
    assert list(traces[CHOSEN_TRACE].text) == ["4, 5, 7"]
    trace = traces[VALIDATION_TEST_TRACE]
    others = dict(zip([d[0] for d in trace.customdata], trace.text, strict=True))
    assert others[5] == others[7] == "" and others[0] == "0"
