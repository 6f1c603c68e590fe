"""core.replay: a recorded run told one iteration at a time, in GEPA's order."""

import random
from pathlib import Path

import pytest
from gepa.gepa_utils import remove_dominated_programs

from core.analysis import RunView, build_run_view
from core.events import REFLECTION_PROMPT_CAP, Candidate, RunStarted, read_events
from core.replay import (
    STEPS,
    first_position_showing,
    replay_count,
    replay_step,
    selection_weights,
)

FIXTURES = Path(__file__).parent / "fixtures"


def view_of(name: str) -> RunView:
    return build_run_view(read_events(FIXTURES / f"{name}.jsonl"))


def scored(rows: list[list[float]]) -> RunView:
    """A run whose candidate i was validated in iteration i with ``rows[i]``."""
    examples = [{"id": j, "row": j + 2, "inputs": {"question": f"Q{j}"}, "expected": "A"} for j in range(len(rows[0]))]
    started = RunStarted.from_dict({"examples": examples, "val_ids": [e["id"] for e in examples]})
    candidates = [
        Candidate(index=i, iteration=i, scores=tuple(row), aggregate=sum(row) / len(row)) for i, row in enumerate(rows)
    ]
    return build_run_view([started, *candidates])


def gepa_weights(rows: list[list[float]]) -> dict[int, int]:
    """GEPA's own computation on the same scores, through gepa.gepa_utils."""
    fronts: dict[int, set[int]] = {}
    for j in range(len(rows[0])):
        top = max(row[j] for row in rows)
        fronts[j] = set([i for i, row in enumerate(rows) if row[j] == top])
    kept = remove_dominated_programs(
        {j: set(front) for j, front in fronts.items()}, scores=[sum(r) / len(r) for r in rows]
    )
    weights: dict[int, int] = {}
    for front in kept.values():
        for candidate in front:
            weights[candidate] = weights.get(candidate, 0) + 1
    return weights


def test_a_candidate_whose_every_lead_is_shared_gets_no_draws():
    # Each leads on two examples, each example is led by two: GEPA keeps two of them.
    view = scored([[1, 0, 1], [1, 1, 0], [0, 1, 1]])
    assert selection_weights(view, 3) == {1: 2, 2: 2}


@pytest.mark.parametrize("seed", range(20))
def test_selection_weights_are_gepas_own(seed):
    rng = random.Random(seed)
    rows = [[float(rng.random() < 0.6) for _ in range(8)] for _ in range(rng.randint(1, 9))]
    assert selection_weights(scored(rows), len(rows)) == gepa_weights(rows)


@pytest.mark.parametrize("name", ["run_default_seed0", "run_short_qa_seed0", "run_short_qa_budget300"])
def test_every_recorded_parent_had_draws_in_gepas_selection(name):
    view = view_of(name)
    for position in range(1, replay_count(view) + 1):
        step = replay_step(view, position)
        assert step.select.parent_member is not None and step.select.parent_member.draws > 0, step.iteration


def test_select_explains_a_parent_that_is_not_the_best():
    step = replay_step(view_of("run_default_seed0"), 7)
    assert step.heading == "Iteration 7 of 12"
    assert [m.candidate for m in step.select.front] == [2, 4] and step.select.parent == 2 and step.select.best == 4
    parent = step.select.parent_member
    assert (len(parent.leads_on), parent.draws, step.select.total_draws) == (23, 23, 51)
    assert "Candidate 2 (70.0%) leads on 23 of 30" in step.select.why
    assert "not the best candidate (candidate 4 is, 86.7%)" in step.select.why


def test_a_member_that_leads_alone_is_what_keeps_it_on_the_front():
    step = replay_step(view_of("run_default_seed0"), 7)
    view = view_of("run_default_seed0")
    front = [m.candidate for m in step.select.front]
    for member in step.select.front:
        for position in member.alone_on:
            others = [view.candidates[c].scores[position] for c in front if c != member.candidate]
            assert view.candidates[member.candidate].scores[position] > max(others)
    assert len(step.select.parent_member.alone_on) == 2  # candidate 2 is a specialist


def test_evaluate_lists_the_minibatch_with_the_parents_outputs_and_scores():
    view = view_of("run_default_seed0")
    step = replay_step(view, 4)
    rows = step.evaluate
    assert [r.example_id for r in rows] == list(step.proposal.minibatch) == [40, 63, 80]
    assert rows[1].inputs == "In what year was the Magna Carta sealed?" and rows[1].expected == "1215"
    assert (rows[1].parent_output, rows[1].parent_score) == ("1225", 0.0)
    assert all(r.new_output.startswith("Let me think it through") for r in rows)


def test_reflect_shows_the_reflective_dataset_the_instruction_text_and_the_reply():
    step = replay_step(view_of("run_default_seed0"), 4)
    shown = step.reflect
    assert shown.asked and [e.example for e in shown.examples] == [40, 63, 80]
    assert shown.examples[1].output == "1225" and shown.examples[1].expected == "1215"
    assert "does not match the expected answer" in shown.examples[1].feedback
    assert shown.prompt.startswith("I provided an assistant with the following instructions")
    assert shown.prompt_chars == len(shown.prompt) and not shown.prompt_cut
    assert "1225" in shown.prompt and shown.reply.startswith("What I saw in the 3 answers")
    assert step.missing == ()


def test_improve_diffs_the_new_prompt_against_its_parent():
    step = replay_step(view_of("run_default_seed0"), 4)
    improve = step.improve
    assert "".join(s.text for s in improve.diff if s.op != "insert") == improve.parent_template
    assert "".join(s.text for s in improve.diff if s.op != "delete") == improve.template
    assert any(s.op == "insert" and "Double-check" in s.text for s in improve.diff)
    assert (improve.parent_total, improve.new_total, improve.size) == (2.0, 0.0, 3)


def test_decisions_say_what_became_of_the_proposal_and_the_front():
    view = view_of("run_default_seed0")
    rejected = replay_step(view, 4).decision
    assert rejected.outcome == "rejected" and rejected.front_before == rejected.front_after == (2, 3)
    assert rejected.summary.startswith("Rejected: not better on the minibatch") and "unchanged" in rejected.summary
    accepted = replay_step(view, 6).decision
    assert (accepted.candidate, accepted.joined, accepted.left) == (4, (4,), (3,))
    assert "Candidate 4 scored 86.7% on the 30 validation examples (its parent: 73.3%)" in accepted.summary
    assert "from {2, 3} to {2, 4}: 4 joined; 3 left, since candidate 4 matches or beats it" in accepted.summary
    skipped = replay_step(view, 8)
    assert skipped.decision.outcome == "skipped" and not skipped.reflect.asked and skipped.improve.diff == ()


def test_a_schema_1_run_replays_and_says_what_it_lacks():
    view = view_of("run_short_qa_seed0")
    step = replay_step(view, 1)
    assert step.reflect.examples == () and step.reflect.prompt and step.reflect.reply
    assert len(step.evaluate) == 3 and step.improve.template
    assert len(step.missing) == 1 and "event schema 1" in step.missing[0]
    assert "reflective dataset" in step.missing[0] and "instruction text below contains" in step.missing[0]


def test_a_cut_instruction_text_is_said_with_its_full_length():
    import dataclasses

    view = view_of("run_default_seed0")
    cut = dataclasses.replace(view.proposals[0], reflection_prompt_chars=REFLECTION_PROMPT_CAP + 1)
    step = replay_step(dataclasses.replace(view, proposals=(cut, *view.proposals[1:])), 1)
    assert step.reflect.prompt_cut and "cut at 50,000 of its 50,001 characters" in step.missing[0]


def test_positions_outside_the_run_are_refused():
    view = view_of("run_default_seed0")
    with pytest.raises(ValueError, match="choose one of 1 to 12"):
        replay_step(view, 13)
    assert replay_count(view_of("run_cancelled_before_proposals")) == 0


def test_each_step_opens_where_it_has_something_to_show():
    view = view_of("run_default_seed0")
    assert {step: first_position_showing(view, step) for step in STEPS} == {
        "select": 4,
        "evaluate": 1,
        "reflect": 1,
        "improve": 1,
        "decision": 4,
    }
