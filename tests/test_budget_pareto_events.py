import json

import pytest

from core.budget import plan_budget
from core.events import SCHEMA_VERSION, BudgetUsed, EventLog, EventLogError, parse_events, tail_events
from core.pareto import best_on_example, dominates, pareto_front, update_front


def test_budget_counts_proposals_between_all_accepted_and_none_accepted():
    plan = plan_budget(150, val_size=40, minibatch_size=3)
    assert (plan.min_proposals, plan.max_proposals) == (3, 19)
    assert plan.level == "ok"


def test_budget_that_cannot_cover_the_baseline_is_refused():
    plan = plan_budget(40, val_size=40, minibatch_size=3)
    assert plan.level == "refuse" and plan.max_proposals == 0
    assert "at least 178" in plan.message


def test_small_budget_warns_with_a_recommendation():
    plan = plan_budget(100, val_size=40, minibatch_size=3)
    assert plan.level == "warn" and "recommended" in plan.message


def test_dominance_needs_one_strict_improvement():
    assert dominates([1, 1], [1, 0]) and not dominates([1, 1], [1, 1]) and not dominates([1, 0], [0, 1])


def test_front_keeps_specialists_and_ties():
    scores = {0: [1, 0, 0], 1: [0, 1, 1], 2: [0, 1, 1], 3: [0, 0, 1]}
    assert pareto_front(scores) == [0, 1, 2]


def test_incremental_front_equals_batch_front():
    import random

    rng = random.Random(7)
    scores = {c: [rng.choice([0.0, 1.0]) for _ in range(12)] for c in range(40)}
    front: list[int] = []
    for candidate in range(40):
        front = update_front(front, scores, candidate)
        pool = range(candidate + 1)
        expected = [c for c in pool if not any(dominates(scores[o], scores[c]) for o in pool)]
        assert front == expected


def test_best_on_example_lists_all_tied_leaders():
    assert best_on_example({0: [1, 0], 1: [1, 1]}, 0) == [0, 1]


def test_event_log_appends_numbered_versioned_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.emit(BudgetUsed(iteration=1, metric_calls=6))
        log.emit(BudgetUsed(iteration=2, metric_calls=12))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [0, 1] and all(e["v"] == SCHEMA_VERSION for e in lines)
    assert [e.metric_calls for e in parse_events(path.read_text().splitlines())] == [6, 12]


def test_tail_waits_for_a_complete_line(tmp_path):
    path = tmp_path / "events.jsonl"
    line = json.dumps({"v": SCHEMA_VERSION, "seq": 0, "t": 0, "type": "budget"})
    path.write_text(line + "\n" + line[:10])
    events, offset = tail_events(path, 0)
    assert len(events) == 1
    with path.open("a") as handle:
        handle.write(line[10:] + "\n")
    more, _ = tail_events(path, offset)
    assert len(more) == 1


def test_unknown_schema_version_is_refused():
    with pytest.raises(EventLogError, match="version 99 is not supported"):
        parse_events([json.dumps({"v": 99, "type": "budget"})])


def test_unknown_event_type_cannot_be_read():
    with pytest.raises(EventLogError, match="unknown event type 'mystery'"):
        parse_events([json.dumps({"v": SCHEMA_VERSION, "type": "mystery"})])


def test_a_schema_1_log_reads_as_typed_events_with_its_derived_fields_ignored():
    from pathlib import Path

    from core.events import Candidate, Proposal, RunFinished, RunStarted, read_events

    events = read_events(Path(__file__).parent / "fixtures" / "run_short_qa_seed0.jsonl")
    assert isinstance(events[0], RunStarted) and events[0].baseline.uri == "prompts:/short-answer-qa/1"
    assert isinstance(events[1], Candidate) and events[1].index == 0 and len(events[1].scores) == 40
    assert any(isinstance(e, Proposal) for e in events)
    assert isinstance(events[-1], RunFinished) and events[-1].registered.version == 2


def test_events_round_trip_through_their_json_lines(tmp_path):
    from core.events import Candidate, Proposal, RunFinished, read_events

    written = [
        Candidate(index=1, iteration=2, parents=(0,), template="T {{q}}", scores=(1.0, 0.0), outputs=("a", "b")),
        Proposal(iteration=2, outcome="rejected", reason="worse", parent=1, minibatch=(3, 4), scores_after=(0.5,)),
        RunFinished(status="cancelled", stopped_by="cancelled", not_registered_reason="stopped"),
    ]
    with EventLog(tmp_path / "events.jsonl") as log:
        emitted = [log.emit(event) for event in written]
    assert read_events(tmp_path / "events.jsonl") == emitted == log.events
    assert [e.seq for e in emitted] == [0, 1, 2]


def test_events_keep_the_schema_version_they_were_written_with():
    from pathlib import Path

    from core.events import Proposal, read_events

    events = read_events(Path(__file__).parent / "fixtures" / "run_short_qa_seed0.jsonl")
    assert {e.schema_version for e in events} == {1}
    old = next(e for e in events if isinstance(e, Proposal) and e.reflection_prompt)
    assert old.reflective_dataset == () and old.reflection_prompt_chars == 0 and not old.reflection_prompt_cut
    assert Proposal(iteration=1).schema_version == SCHEMA_VERSION == 3


def test_what_the_reflection_model_was_shown_round_trips(tmp_path):
    from core.events import Proposal, ReflectiveExample, read_events

    shown = ReflectiveExample(example=7, inputs={"question": "Q?"}, output="A.", expected="A", feedback="a period")
    written = Proposal(
        iteration=3, reflective_dataset=(shown,), reflection_prompt="cut", reflection_prompt_chars=60_000
    )
    with EventLog(tmp_path / "events.jsonl") as log:
        log.emit(written)
    (read,) = read_events(tmp_path / "events.jsonl")
    assert read.reflective_dataset == (shown,) and read.reflection_prompt_cut
