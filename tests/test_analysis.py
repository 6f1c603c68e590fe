"""core.analysis: a run's event log read back as candidates, fronts, comparisons and what-if replays."""

import json
import time
from pathlib import Path

import pytest

from core.analysis import (
    CATEGORIES,
    RunView,
    best_before,
    best_so_far,
    branching,
    build_run_view,
    candidate_label,
    category_counts,
    children,
    compare_examples,
    example_table,
    explain_front,
    filter_examples,
    front_members_at,
    fronts_after_iterations,
    how_it_ended,
    input_label,
    kept_because,
    lineage,
    longest_front_run,
    mark_meaning,
    only_baseline_line,
    parent_choices,
    rejections,
    run_curve,
    score_matrix,
    search_facts,
    what_if,
    what_if_grid,
)
from core.events import Candidate, EventLogError, RunStarted, decode_event, of_type, read_events
from core.pareto import best_on_example
from core.scorers import FAILED_PREDICTION_PREFIX, ScorerSpec
from core.summary import counted, failure_warning

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = (
    "run_default_seed0",
    "run_short_qa_seed0",
    "run_short_qa_budget300",
    "run_context_qa",
    "run_cancelled_before_proposals",
)


def events_of(name: str) -> list[dict]:
    return read_events(FIXTURES / f"{name}.jsonl")


def view_of(name: str) -> RunView:
    return build_run_view(events_of(name))


def scored_run(
    scores: list[list[float]],
    *,
    parents: list[list[int]] | None = None,
    outputs: list[list[str]] | None = None,
    finished: bool = True,
) -> list:
    """Events of a small run: candidate i validated in iteration i with ``scores[i]``."""
    width = len(scores[0])
    examples = [
        {"id": 10 + i, "row": i + 2, "inputs": {"question": f"Q{i}?"}, "expected": f"A{i}"} for i in range(width)
    ]
    events: list[dict] = [
        {
            "type": "run_started",
            "config": {"budget": 1000, "patience": 0},
            "models": {},
            "scorer": {"kind": "exact_match", "normalization": ["case"]},
            "examples": examples,
            "train_ids": [e["id"] for e in examples],
            "val_ids": [e["id"] for e in examples],
            "baseline": {"template": "T0 {{question}}"},
            "budget": {"budget": 1000},
            "mlflow": {"run_id": "r1"},
        }
    ]
    calls = 0
    for index, row in enumerate(scores):
        calls += width + (6 if index else 0)
        events.append(
            {
                "type": "validation",
                "iteration": index,
                "candidate": index,
                "parents": (parents[index] if parents else ([index - 1] if index else [])),
                "template": f"T{index} {{{{question}}}}",
                "scores": row,
                "outputs": outputs[index] if outputs else [f"A{i}" if s == 1.0 else "no" for i, s in enumerate(row)],
                "aggregate": sum(row) / width,
                "failed": 0,
                "metric_calls": calls,
            }
        )
        if index:
            events.append(
                {
                    "type": "iteration",
                    "iteration": index,
                    "outcome": "accepted",
                    "reason": "better",
                    "parent": index - 1,
                    "minibatch": [10],
                    "scores_before": [0.0],
                    "scores_after": [1.0],
                    "candidate": index,
                    "template": f"T{index}",
                    "metric_calls": calls,
                }
            )
    if finished:
        events.append({"type": "run_finished", "status": "finished", "stopped_by": "budget"})
    return [decode_event({"v": 2, **event}) for event in events]


def non_dominated(scores: dict[int, tuple[float, ...]]) -> tuple[int, ...]:
    """By hand: a candidate survives unless another is >= everywhere and > somewhere."""
    kept = []
    for candidate, mine in scores.items():
        beaten = False
        for other, theirs in scores.items():
            if other == candidate:
                continue
            at_least = all(t >= m for t, m in zip(theirs, mine, strict=True))
            better = any(t > m for t, m in zip(theirs, mine, strict=True))
            beaten = beaten or (at_least and better)
        if not beaten:
            kept.append(candidate)
    return tuple(sorted(kept))


def test_a_log_without_run_started_is_refused_with_a_readable_message():
    with pytest.raises(EventLogError, match="no run_started event"):
        build_run_view([e for e in events_of("run_short_qa_seed0") if not isinstance(e, RunStarted)])


def test_run_cancelled_before_proposals_has_only_the_baseline():
    view = view_of("run_cancelled_before_proposals")
    assert (view.outcome, view.stopped_by) == ("cancelled", "cancelled")
    assert [c.index for c in view.candidates] == [0] and view.proposals == ()
    assert [(f.iteration, f.members) for f in view.fronts] == [(0, (0,))]
    assert view.best_candidate == 0 and view.metric_calls == 40 and view.iterations == 0


def test_baseline_only_run_has_a_one_point_best_so_far_line():
    assert best_so_far(view_of("run_cancelled_before_proposals"), "iteration") == [(0, 0.2, 0)]


def test_run_view_reads_settings_scorer_and_examples():
    view = view_of("run_short_qa_seed0")
    assert view.run_id == "2dab7b0bbe3245218bcc8a6f63da0961"
    assert (view.budget, view.patience, view.outcome) == (150, 4, "finished")
    assert view.scorer.kind == "exact_match" and view.scorer.normalization == ("case", "whitespace")
    assert len(view.val_examples) == 40 and view.val_examples[1].expected == "6"
    assert view.baseline.template == "Answer this question: {{question}}"


def test_seed0_front_has_two_members_after_iterations_1_and_2():
    view = view_of("run_short_qa_seed0")
    assert front_members_at(view, 1) == (0, 1)
    assert front_members_at(view, 2) == (0, 2)
    assert front_members_at(view, 3) == (3,)


@pytest.mark.parametrize("name", RUNS)
def test_every_front_snapshot_is_the_brute_force_non_dominated_set(name):
    events = events_of(name)
    view = build_run_view(events)
    validations = of_type(events, Candidate)
    assert len(view.fronts) == len(validations)
    for count, snapshot in enumerate(view.fronts, start=1):
        pool = {e.index: tuple(e.scores) for e in validations[:count]}
        assert snapshot.members == non_dominated(pool)
        assert snapshot.iteration == validations[count - 1].iteration


def test_fronts_keep_candidates_with_identical_scores():
    view = build_run_view(scored_run([[1, 0, 0], [0, 1, 1], [0, 1, 1], [0, 0, 1]]))
    assert view.current_front == (0, 1, 2) == non_dominated({c.index: c.scores for c in view.candidates})


def test_best_candidate_is_the_earliest_of_tied_aggregates():
    view = build_run_view(scored_run([[0, 0, 0], [1, 0, 1], [0, 1, 1]]))
    assert view.best_candidate == 1


def test_budget300_run_has_30_iterations_and_five_candidates():
    view = view_of("run_short_qa_budget300")
    assert view.iterations == 30 and len(view.proposals) == 30 and len(view.candidates) == 5
    assert [p.outcome for p in view.proposals].count("skipped") == 22
    assert [p.candidate for p in view.proposals if p.outcome == "accepted"] == [1, 2, 3, 4]
    assert view.metric_calls == 302 and view.best_candidate == 4


def test_context_qa_candidates_keep_the_iteration_that_found_them():
    view = view_of("run_context_qa")
    assert [(c.index, c.iteration, c.parents) for c in view.candidates] == [(0, 0, ()), (1, 1, (0,)), (2, 4, (1,))]
    assert front_members_at(view, 3) == (1,) and front_members_at(view, 4) == (2,)


def test_two_variable_inputs_are_written_as_name_value_lines():
    frame = compare_examples(view_of("run_context_qa"))
    first = frame.iloc[0]["inputs"]
    assert first.splitlines()[0].startswith("context: The Korvath Bridge")
    assert first.splitlines()[1] == "question: Under whom did the designer of the Korvath Bridge train?"


def test_one_variable_inputs_are_the_bare_value():
    frame = compare_examples(view_of("run_short_qa_seed0"))
    assert frame.iloc[0]["inputs"] == "Who wrote the novel Pride and Prejudice?"


def test_live_log_cut_mid_iteration_is_running_with_the_latest_budget():
    events = [e for e in events_of("run_short_qa_seed0") if e.seq <= 10]
    view = build_run_view(events)
    assert view.outcome == "running" and view.finished is None and view.stopped_by is None
    assert len(view.candidates) == 2 and len(view.proposals) == 1 and view.metric_calls == 92
    assert best_so_far(view, "metric_calls")[-1] == (92, 0.725, 1)


def test_live_log_with_a_validation_before_its_iteration_event_shows_the_candidate():
    events = [e for e in events_of("run_short_qa_seed0") if e.seq <= 13]
    view = build_run_view(events)
    assert view.iterations == 1 and [c.index for c in view.candidates] == [0, 1, 2]
    assert view.last_iteration == 2 and view.current_front == (0, 2)


def test_live_log_with_only_run_started_has_nothing_to_show_yet():
    view = build_run_view(events_of("run_short_qa_seed0")[:1])
    assert view.candidates == () and view.fronts == () and view.current_front == ()
    assert compare_examples(view).empty and best_so_far(view, "iteration") == []
    assert score_matrix(view)[0].shape == (0, 40)


def test_kept_because_lists_the_positions_where_the_candidate_has_the_top_score():
    view = view_of("run_short_qa_seed0")
    positions = kept_because(view, 0, iteration=2)
    pool = {c.index: c.scores for c in view.candidates[:3]}
    assert positions == [p for p in range(40) if 0 in best_on_example(pool, p)]
    assert 11 in positions  # only the baseline writes "Washington, D.C." with its final dot


def test_kept_because_is_empty_for_a_candidate_not_validated_by_then():
    assert kept_because(view_of("run_short_qa_seed0"), 3, iteration=2) == []


def test_best_so_far_steps_from_the_baseline_to_the_end_of_the_run():
    view = view_of("run_short_qa_budget300")
    assert best_so_far(view, "metric_calls") == [
        (40, 0.2, 0),
        (86, 0.675, 1),
        (132, 0.75, 2),
        (178, 0.875, 3),
        (224, 0.95, 4),
        (302, 0.95, 4),
    ]
    assert best_so_far(view, "iteration")[-1] == (30, 0.95, 4)


def test_best_so_far_ignores_a_later_candidate_that_is_not_better():
    view = build_run_view(scored_run([[0, 1], [1, 1], [1, 0]]))
    assert best_so_far(view, "iteration") == [(0, 0.5, 0), (1, 1.0, 1), (2, 1.0, 1)]


def test_run_curve_is_metric_calls_and_best_score():
    assert run_curve(view_of("run_short_qa_seed0")) == [(40, 0.2), (86, 0.725), (132, 0.8), (178, 0.85)]


@pytest.mark.parametrize("name", RUNS)
def test_compare_examples_categories_follow_the_scores(name):
    frame = compare_examples(view_of(name))
    for row in frame.itertuples():
        was, now = row.against_score == 1.0, row.candidate_score == 1.0
        expected = {(False, True): "fixed", (True, False): "regressed", (False, False): "still failing"}
        assert row.category == expected.get((was, now), "always right")
        assert (row.against_correct, row.candidate_correct) == (was, now)


def test_compare_examples_defaults_to_the_best_candidate_against_the_baseline():
    view = view_of("run_short_qa_seed0")
    frame = compare_examples(view)
    assert frame["candidate_score"].tolist() == list(view.candidates[3].scores)
    assert frame["against_output"].tolist() == list(view.candidates[0].outputs)
    assert frame.loc[1, ["expected_normalized", "against_normalized"]].tolist() == ["6", "an insect has six legs."]


def test_compare_examples_marks_failed_model_calls():
    failure = f"{FAILED_PREDICTION_PREFIX}: timeout"
    view = build_run_view(scored_run([[0, 1], [1, 0]], outputs=[["x", "A1"], ["A0", failure]]))
    assert compare_examples(view, 1)["failed"].tolist() == [False, True]


def test_compare_examples_refuses_a_candidate_not_validated():
    with pytest.raises(ValueError, match="Candidate 9 has not been scored"):
        compare_examples(view_of("run_short_qa_seed0"), 9)


def test_category_counts_lists_all_four_categories():
    counts = category_counts(compare_examples(view_of("run_short_qa_seed0")))
    assert list(counts) == list(CATEGORIES)
    assert counts == {"fixed": 26, "regressed": 0, "still failing": 6, "always right": 8}


def test_filter_examples_by_category_and_case_insensitive_text():
    frame = compare_examples(view_of("run_short_qa_seed0"))
    fixed = filter_examples(frame, ["fixed"])
    assert len(fixed) == 26 and set(fixed["category"]) == {"fixed"}
    assert filter_examples(frame, None, "TITANIC")["position"].tolist() == [5]
    assert filter_examples(frame, ["still failing"], "titanic").empty


def test_filter_examples_searches_outputs_too():
    frame = compare_examples(view_of("run_short_qa_seed0"))
    assert filter_examples(frame, None, "i'm not sure")["position"].tolist() == [8, 19, 20, 32]


def test_filter_examples_with_no_category_chosen_is_empty():
    assert filter_examples(compare_examples(view_of("run_short_qa_seed0")), []).empty


def test_score_matrix_by_difficulty_puts_the_examples_fewest_solve_first():
    matrix, positions, candidates = score_matrix(build_run_view(scored_run([[1, 0, 1], [1, 0, 0], [1, 1, 0]])))
    assert positions == [1, 2, 0] and candidates == [0, 1, 2]
    assert matrix.tolist() == [[0, 1, 1], [0, 0, 1], [1, 0, 1]]


def test_score_matrix_by_index_follows_validation_positions():
    matrix, positions, _ = score_matrix(view_of("run_short_qa_seed0"), "index")
    assert positions == list(range(40)) and matrix.shape == (4, 40) and matrix[0, 0] == 1.0


def test_lineage_lists_parent_child_edges_and_depths():
    assert lineage(view_of("run_context_qa")) == ([(0, 1), (1, 2)], {0: 0, 1: 1, 2: 2})


def test_lineage_shows_a_merge_as_two_edges():
    view = build_run_view(scored_run([[0, 0], [1, 0], [0, 1], [1, 1]], parents=[[], [0], [0], [1, 2]]))
    edges, depth = lineage(view)
    assert edges == [(0, 1), (0, 2), (1, 3), (2, 3)] and depth == {0: 0, 1: 1, 2: 1, 3: 2}


@pytest.mark.parametrize("name", ["run_short_qa_seed0", "run_short_qa_budget300", "run_context_qa"])
def test_what_if_at_the_recorded_budget_and_patience_reproduces_the_recorded_run(name):
    view = view_of(name)
    row = what_if(view, [view.budget], [view.patience]).iloc[0]
    final = json.loads((FIXTURES / f"{name}.jsonl").read_text().splitlines()[-1])  # as the run recorded it
    assert row["stopped_by"] == final["stopped_by"] and not row["beyond_recording"]
    assert (row["iterations"], row["metric_calls"]) == (final["iterations"], final["metric_calls"])
    assert (row["best_score"], row["best_candidate"]) == (final["final_score"], final["best_candidate"])


def test_what_if_with_smaller_budgets_stops_earlier_on_the_budget300_run():
    table = what_if(view_of("run_short_qa_budget300"), [40, 100, 178, 179, 250], [None])
    assert table["iterations"].tolist() == [0, 2, 3, 4, 13]
    assert table["metric_calls"].tolist() == [40, 132, 178, 224, 251]
    assert table["best_score"].tolist() == [0.2, 0.75, 0.875, 0.95, 0.95]
    assert table["best_candidate"].tolist() == [0, 2, 3, 4, 4]
    assert set(table["stopped_by"]) == {"budget"} and not table["beyond_recording"].any()


def test_what_if_patience_counts_checks_without_a_better_score():
    table = what_if(view_of("run_short_qa_budget300"), [300], [1, 3, 0])
    assert table["stopped_by"].tolist() == ["patience", "patience", "budget"]
    assert table["iterations"].tolist() == [5, 7, 30]
    assert table["patience"].tolist() == [1, 3, None]


def test_what_if_names_patience_when_both_conditions_fire_at_once():
    row = what_if(view_of("run_context_qa"), [78], [4]).iloc[0]
    assert (row["stopped_by"], row["iterations"]) == ("patience", 8)


def test_what_if_asking_for_more_than_was_recorded_reports_the_recording():
    row = what_if(view_of("run_short_qa_seed0"), [1000], [None]).iloc[0]
    assert row["beyond_recording"] and row["stopped_by"] == "run end"
    assert (row["iterations"], row["metric_calls"], row["best_score"]) == (3, 178, 0.85)


def test_what_if_on_a_cancelled_baseline_only_run_is_beyond_the_recording_unless_the_budget_is_spent():
    table = what_if(view_of("run_cancelled_before_proposals"), [40, 150], [None])
    assert table["stopped_by"].tolist() == ["budget", "run end"]
    assert table["beyond_recording"].tolist() == [False, True]


def test_what_if_grid_is_instant_on_300_iterations():
    width = 20
    rows = [[float((i + j) % 7 < min(i, 6)) for j in range(width)] for i in range(300)]
    view = build_run_view(scored_run(rows))
    what_if(view, [100], [None])  # pandas imported outside the timing
    started = time.perf_counter()
    table = what_if(view, list(range(500, 7000, 650)), [None, 1, 2, 3, 5, 8, 13, 21])
    assert time.perf_counter() - started < 0.1 and len(table) == 80


def test_what_if_grid_spans_one_proposal_to_the_recorded_budget():
    view = view_of("run_short_qa_budget300")
    budgets, patiences = what_if_grid(view)
    assert budgets[0] == 46 and budgets[-1] == max(view.budget, view.metric_calls)
    assert patiences[0] is None and len(budgets) == 8


def test_example_table_marks_results_without_colour():
    view = view_of("run_short_qa_seed0")
    table = example_table(compare_examples(view), input_label=input_label(view))
    assert list(table.columns) == ["row", "question", "expected", "before", "✓ before", "after", "✓ after"]
    assert table["question"].iloc[0] == "Who wrote the novel Pride and Prejudice?"  # the input comes first
    assert set(table["✓ after"]) <= {"✓", "✗"}
    assert candidate_label(view, 0).startswith("Candidate 0 (baseline) · 20.0%")


def test_example_table_writes_partial_scores_in_the_mark_for_graded_scorers():
    view = view_of("run_short_qa_seed0")
    frame = compare_examples(view)
    frame.loc[0, "candidate_score"] = 2 / 3
    table = example_table(frame, with_scores=True)
    assert list(table.columns) == ["row", "input", "expected", "before", "✓ before", "after", "✓ after"]
    assert table["✓ after"].iloc[0] == "0.67"
    assert mark_meaning(view.scorer) == "✓ = exact match after normalising (case, whitespace)"
    assert mark_meaning(ScorerSpec("f1", ())).startswith("✓ = full score (1.0) on Token F1 (no normalisation)")


def test_compare_examples_adds_test_rows_where_both_candidates_were_scored_on_test():
    from dataclasses import replace

    from core.events import ExampleRecord, ScoredOnTest

    events = scored_run([[0, 1], [1, 1]])
    held_out = tuple(
        ExampleRecord(id=20 + i, row=i + 1, inputs={"question": f"T{i}?"}, expected=f"T{i}") for i in range(2)
    )
    started = replace(events[0], examples=events[0].examples + held_out, test_ids=(20, 21))
    on_test = [
        ScoredOnTest(index=0, scores=(0.0, 1.0), outputs=("x", "T1"), aggregate=0.5),
        ScoredOnTest(index=1, scores=(1.0, 1.0), outputs=("T0", "T1"), aggregate=1.0),
    ]
    view = build_run_view([started, *events[1:-1], *on_test, events[-1]])
    frame = compare_examples(view, 1, 0, splits=("validation", "test"))
    assert frame["split"].tolist() == ["validation", "validation", "test", "test"]
    assert frame[frame["split"] == "test"]["category"].tolist() == ["fixed", "always right"]
    assert compare_examples(view, 1, 0)["split"].tolist() == ["validation", "validation"]
    partial = build_run_view([started, *events[1:-1], on_test[0], events[-1]])
    assert compare_examples(partial, 1, 0, splits=("test",)).empty  # candidate 1 was not scored on test


def with_usage(events: list, prices: dict) -> list:
    """``events`` with priced models and a usage update after each validation (metric calls, tokens)."""
    from dataclasses import replace

    from core.events import Candidate, PriceRef, UsageRecord, UsageUpdate

    started = replace(events[0], prices={role: PriceRef(*p) if p else None for role, p in prices.items()})
    out = [started]
    for event in events[1:]:
        out.append(event)
        if isinstance(event, Candidate):
            calls = event.metric_calls
            record = UsageRecord(responses=calls, prompt_tokens=100 * calls, completion_tokens=10 * calls)
            out.append(UsageUpdate(metric_calls=calls, by_role={"task": record}, t=started.t + calls))
    return out


def test_cost_series_prices_each_usage_update_and_unknown_prices_stay_unknown():
    events = scored_run([[0, 1], [1, 1]])
    priced = build_run_view(with_usage(events, {"task": (1.0, 10.0), "reflection": (0.0, 0.0)}))
    assert [calls for calls, _ in priced.cost_series()] == [2, 10]
    assert priced.cost_series()[0][1] == pytest.approx((2 * 100 * 1.0 + 2 * 10 * 10.0) / 1e6)
    unknown = build_run_view(with_usage(events, {"task": None}))
    assert unknown.cost.total is None and [cost for _, cost in unknown.cost_series()] == [None, None]


def test_pace_is_metric_calls_per_second_and_the_time_left_for_the_budget():
    from core.analysis import pace

    view = build_run_view(with_usage(scored_run([[0, 1], [1, 1]], finished=False), {"task": (0.0, 0.0)}))
    rate, left = pace(view)
    assert rate == pytest.approx(1.0) and left == pytest.approx(1000 - 10)


def test_judge_agreement_lists_where_the_judge_and_exact_match_disagree():
    from dataclasses import replace

    from core.analysis import judge_agreement
    from core.events import Evaluation, FinalEvaluation, ScorerRef

    events = scored_run([[0, 1], [1, 1]])
    started = replace(events[0], scorer=ScorerRef("llm_judge", ("case",)))
    evaluation = FinalEvaluation(
        baseline=Evaluation(("The answer is A0.", "A1"), (1.0, 1.0), 1.0, ("states it", "exact")),
        best=Evaluation(("A0", "A1"), (1.0, 1.0), 1.0, ("exact", "exact")),
        best_candidate=1,
    )
    finished = replace(events[-1], final_evaluation=evaluation)
    found = judge_agreement(build_run_view([started, *events[1:-1], finished]))
    assert [f.candidate for f in found] == ["baseline", "best (candidate 1)"]
    assert found[0].agreement.judge_only == (0,) and found[0].disagreements[0]["judge's reason"] == "states it"
    assert found[1].agreement.disagreements == () and "agree on all 2" in found[1].lesson
    assert judge_agreement(build_run_view(events)) == []  # not a judge run


# --- what the search showed, from the default run's own events (python -m core optimize --seed 0) --


def test_default_run_rejects_proposals_that_are_not_better_on_the_minibatch():
    view = view_of("run_default_seed0")
    rejected = [p for p in view.proposals if p.outcome == "rejected"]
    assert rejections(view) == len(rejected) == 2
    assert all(sum(p.scores_after) <= sum(p.scores_before) and p.candidate is None for p in rejected)


def test_default_run_holds_a_front_of_two_or_more_for_consecutive_iterations():
    view = view_of("run_default_seed0")
    rows = fronts_after_iterations(view)
    assert [(r.iteration, r.members) for r in rows[2:5]] == [(3, (2, 3)), (4, (2, 3)), (5, (2, 3))]
    assert longest_front_run(view) == 10 and longest_front_run(view, distinct=True) == 10
    assert longest_front_run(view, min_size=4) == 4 and longest_front_run(view, min_size=3, distinct=True) == 4


def test_candidates_with_identical_scores_count_once_among_distinct_front_members():
    view = view_of("run_default_seed0")
    after_7 = fronts_after_iterations(view)[6]
    assert after_7.members == (2, 4, 5) and after_7.distinct == 2  # 4 and 5 score alike on every example
    assert view.candidates[4].scores == view.candidates[5].scores


def test_default_run_branches_from_a_front_member_that_is_not_the_best():
    view = view_of("run_default_seed0")
    assert children(view)[2] == [3, 5]
    choice = next(c for c in parent_choices(view) if c.child == 5)
    assert (choice.iteration, choice.parent, choice.parent_on_front, choice.parent_was_best) == (7, 2, True, False)
    assert best_before(view, 7) == 4 and view.candidates[2].aggregate < view.candidates[4].aggregate
    facts = branching(view)
    assert facts.parents_with_two_children == (2,) and 5 in facts.children_of_non_best_front_members and facts.met


def test_default_run_reaches_0_8_on_validation_and_reports_a_test_score():
    facts = search_facts(view_of("run_default_seed0"))
    assert facts.best_score >= 0.8 and facts.baseline_score < 0.2
    assert facts.test_score == pytest.approx(25 / 30)
    assert facts.outcomes == {"accepted": 7, "rejected": 2, "skipped": 3} and facts.stopped_by == "patience"
    assert (facts.iterations, facts.candidates, facts.max_front, facts.metric_calls) == (12, 8, 5, 303)


def test_a_straight_chain_of_best_candidates_does_not_branch():
    view = view_of("run_short_qa_seed0")
    assert children(view) == {0: [1], 1: [2], 2: [3]}
    assert all(c.parent_was_best for c in parent_choices(view))
    assert branching(view).met is False and rejections(view) == 0


def test_best_before_the_first_iteration_is_the_baseline_and_none_before_any_score():
    view = view_of("run_default_seed0")
    assert best_before(view, 1) == 0 and best_before(view, 0) is None
    assert best_before(view, 8) == 4  # 4 and 5 tie: the earliest is named, as everywhere


def run_with_failures(predictions: int, reflections: int) -> RunView:
    events = scored_run([[0.0, 1.0], [1.0, 1.0]], finished=False)
    proposals = [
        decode_event({"v": 2, "type": "iteration", "iteration": 2 + i, "outcome": "reflection_failed"})
        for i in range(reflections)
    ]
    end = decode_event({"v": 2, "type": "run_finished", "stopped_by": "budget", "failed_predictions": predictions})
    return build_run_view([*events, *proposals, end])


def test_failure_warning_names_only_what_failed_in_the_right_number():
    assert failure_warning(run_with_failures(0, 0)) is None
    one = failure_warning(run_with_failures(1, 0))
    assert one.startswith("1 prediction failed even after retries: it is flagged") and "reflection" not in one
    two = failure_warning(run_with_failures(0, 2))
    assert two.startswith("2 reflections failed even after retries") and "prediction" not in two
    assert counted(1, "model call") == "1 model call" and counted(3, "model call") == "3 model calls"


def test_explain_front_separates_best_alone_tied_above_zero_and_unsolved():
    view = build_run_view(scored_run([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]))
    explained = explain_front(view)
    assert [(m.candidate, m.alone, m.tied) for m in explained.members] == [(1, (1,), (0,)), (2, (2,), ())]
    assert explained.unsolved == (3,)  # every candidate scores 0 there: counted once, for no one


def test_explain_front_of_a_run_that_solves_nothing_keeps_the_baseline_for_no_example():
    explained = explain_front(build_run_view(scored_run([[0.0, 0.0]])))
    assert [(m.candidate, m.alone, m.tied) for m in explained.members] == [(0, (), ())]
    assert explained.unsolved == (0, 1)


def test_an_existing_version_is_said_as_such_in_the_cli_progress_and_the_summary():
    from core.cli import _ProgressPrinter
    from core.summary import RunSummary

    events = scored_run([[0.0, 1.0], [1.0, 1.0]], finished=False)
    registered = {"uri": "prompts:/qa/2", "version": 2, "existing": True, "by_run": "run-that-made-it"}
    end = decode_event({"v": 2, "type": "run_finished", "stopped_by": "budget", "registered": registered})
    printer = _ProgressPrinter()
    printer.events = [*events, end]
    line = printer.describe_end()
    assert "same text as version 2 (prompts:/qa/2), registered by run run-that-made-it; no new version" in line
    summary = RunSummary.of(build_run_view([*events, end])).cli_dict()
    assert (summary["registered"], summary["registered_by_run"]) == ("existing", "run-that-made-it")


def test_a_run_stopped_before_any_proposal_says_so_in_one_line():
    view = view_of("run_cancelled_before_proposals")
    assert only_baseline_line(view) == (
        "Stopped before any proposal: only the baseline was scored (20.0%), so there is nothing to compare or register."
    )
    assert how_it_ended(view) == "stopped with Stop before its end"  # not "cancelled, stopped by cancelled"
    assert only_baseline_line(view_of("run_short_qa_budget300")) is None


def test_a_search_that_accepted_nothing_counts_its_iterations_in_one_line():
    events = scored_run([[0.0, 1.0]], finished=False)
    proposals = [
        decode_event({"v": 2, "type": "iteration", "iteration": i, "outcome": outcome})
        for i, outcome in enumerate(["rejected", "rejected", "skipped"], start=1)
    ]
    end = decode_event({"v": 2, "type": "run_finished", "stopped_by": "patience"})
    view = build_run_view([*events, *proposals, end])
    assert only_baseline_line(view) == (
        "The search found no candidate besides the baseline (50.0%): of 3 iterations, 2 rejected, 1 skipped. "
        "There is nothing to compare or register."
    )
    assert how_it_ended(view) == "finished because several iterations in a row brought no improvement (patience)"


def test_validation_vs_test_has_every_candidate_when_all_were_scored_on_test():
    from core.analysis import validation_vs_test

    view = view_of("run_default_seed0")
    table = validation_vs_test(view)
    assert list(table["candidate"]) == [c.index for c in view.candidates]
    assert list(table["test"]) == [view.on_test[c.index].aggregate for c in view.candidates]
    assert table.loc[table["best"], "candidate"].tolist() == [view.best_candidate]
    assert (table["gap"] == table["validation"] - table["test"]).all() and (table["chance"] > 0).all()


def test_validation_vs_test_is_none_without_per_candidate_test_scores():
    from core.analysis import validation_vs_test

    assert validation_vs_test(view_of("run_short_qa_budget300")) is None


def test_divergence_line_calls_a_gap_overfitting_only_beyond_chance():
    import pandas as pd

    from core.analysis import VALIDATION_TEST_COLUMNS, divergence_line, validation_vs_test

    within = divergence_line(validation_vs_test(view_of("run_default_seed0")))
    assert within.startswith("The validation best, candidate 4, is also the best on test (83.3%)")
    assert "no clear sign of overfitting" in within
    rows = [(0, 0, 0.2, 0.2, 0.0, 0.1, False), (1, 3, 0.9, 0.5, 0.4, 0.2, True), (2, 5, 0.7, 0.7, 0.0, 0.2, False)]
    beyond = divergence_line(pd.DataFrame(rows, columns=list(VALIDATION_TEST_COLUMNS)))
    assert beyond.startswith(
        "Validation picks candidate 1 (50.0% on test), but candidate 2 does better on test (70.0%)"
    )
    assert "candidate 1: validation 90.0%, test 50.0% (+40.0 points, more than the 20 points" in beyond
    assert beyond.endswith("(overfitting).")


def test_what_if_on_test_names_the_test_score_of_each_stop():
    from core.analysis import what_if_on_test

    view = view_of("run_default_seed0")
    table = what_if_on_test(view, what_if(view, *what_if_grid(view)))
    assert len(table) == 56
    for row in table.itertuples():
        assert row.test_score == view.on_test[row.best_candidate].aggregate
    plain = view_of("run_short_qa_budget300")
    assert what_if_on_test(plain, what_if(plain, *what_if_grid(plain))) is None


def test_example_rationales_are_the_judges_reasons_per_split():
    from core.analysis import example_rationales

    judged = view_of("run_judge_priced")
    assert len(example_rationales(judged, 0, "validation")) == len(judged.val_examples)
    test_reasons = example_rationales(judged, judged.best_candidate, "test")
    assert len(test_reasons) == len(judged.test_examples) and "expected answer" in test_reasons[0]
    assert example_rationales(view_of("run_default_seed0"), 0, "test") == ()


def test_the_per_example_export_has_a_split_column_with_the_test_rows():
    import io

    import pandas as pd

    from core.analysis import examples_export

    view = view_of("run_default_seed0")
    frame = pd.read_csv(io.StringIO(examples_export(view).to_csv(index=False)))
    assert frame.columns[0] == "split"
    assert frame["split"].value_counts().to_dict() == {"validation": 30, "test": 30}
    test_rows = frame[frame["split"] == "test"]
    assert list(test_rows["example_id"]) == [e.id for e in view.test_examples]
    assert list(test_rows["candidate_score"]) == list(view.final_evaluation.test_best.scores)
    assert set(examples_export(view_of("run_short_qa_budget300"))["split"]) == {"validation"}


def test_curve_band_sums_up_step_curves_at_every_change():
    from core.analysis import curve_band

    band = curve_band([[(30, 0.2), (60, 0.5), (100, 0.5)], [(30, 0.1), (90, 0.7), (120, 0.7)], []])
    assert band.metric_calls == (30, 60, 90, 100, 120)
    assert band.lowest == (0.1, 0.1, 0.5, 0.5, 0.5)
    assert band.highest == (0.2, 0.5, 0.7, 0.7, 0.7)
    assert band.mean == pytest.approx((0.15, 0.3, 0.6, 0.6, 0.6)) and band.runs == (2, 2, 2, 2, 2)
    assert curve_band([[(40, 0.3)], [(50, 0.4)]]).runs == (1, 2)
