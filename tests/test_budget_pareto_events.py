import json

import pytest

from core.budget import plan_budget
from core.events import SCHEMA_VERSION, EventLog, EventLogError, parse_events, tail_events
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
        log.emit("budget", iteration=1, metric_calls=6)
        log.emit("budget", iteration=2, metric_calls=12)
    events = parse_events(path.read_text().splitlines())
    assert [e["seq"] for e in events] == [0, 1] and all(e["v"] == SCHEMA_VERSION for e in events)


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


def test_unknown_event_type_cannot_be_written(tmp_path):
    with EventLog(tmp_path / "e.jsonl") as log, pytest.raises(ValueError):
        log.emit("mystery")
