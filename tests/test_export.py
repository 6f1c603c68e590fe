"""core.export: a recorded run as one versioned JSON document."""

import json
from pathlib import Path

import pytest

from core.analysis import build_run_view
from core.events import read_events
from core.export import EXPORT_SCHEMA_VERSION, RunExport, export_run

FIXTURES = Path(__file__).parent / "fixtures"

TOP_KEYS = {"schema_version", "run_id", "config", "summary", "examples", "candidates", "proposals"}
EXAMPLE_KEYS = {"id", "split", "inputs", "expected"}
CANDIDATE_KEYS = {"index", "parents", "iteration", "template", "validation_scores", "validation_score", "test_scores"}
PROPOSAL_KEYS = {
    "iteration",
    "parent",
    "minibatch",
    "parent_scores",
    "child_scores",
    "outcome",
    "reason",
    "candidate",
    "template",
    "metric_calls",
    "reflection",
}
REFLECTION_KEYS = {"examples", "prompt", "prompt_chars", "reply"}
SHOWN_KEYS = {"example", "inputs", "output", "expected", "score", "feedback"}


def document_of(name: str) -> dict:
    return export_run(build_run_view(read_events(FIXTURES / f"{name}.jsonl"))).to_dict()


def test_the_document_has_every_key_of_the_schema():
    document = document_of("run_default_seed0")
    assert set(document) == TOP_KEYS and document["schema_version"] == EXPORT_SCHEMA_VERSION == 1
    assert all(set(e) == EXAMPLE_KEYS for e in document["examples"])
    assert all(set(c) == CANDIDATE_KEYS for c in document["candidates"])
    assert all(set(p) == PROPOSAL_KEYS for p in document["proposals"])
    reflections = [p["reflection"] for p in document["proposals"] if p["reflection"]]
    assert reflections and all(set(r) == REFLECTION_KEYS for r in reflections)
    assert all(set(e) == SHOWN_KEYS for r in reflections for e in r["examples"])


def test_examples_carry_their_split():
    document = document_of("run_default_seed0")
    splits = [e["split"] for e in document["examples"]]
    assert {s: splits.count(s) for s in set(splits)} == {"train": 30, "validation": 30, "test": 30}
    assert document["examples"][0]["inputs"] == {"question": "Who wrote the novel Pride and Prejudice?"}


def test_an_example_a_run_trains_and_validates_on_is_validation():
    splits = {e["split"] for e in document_of("run_short_qa_seed0")["examples"]}
    assert splits == {"validation"}


def test_candidates_carry_lineage_the_iteration_that_found_them_and_scores_by_example_id():
    document = document_of("run_default_seed0")
    candidates = document["candidates"]
    assert [(c["index"], c["parents"], c["iteration"]) for c in candidates][:3] == [
        (0, [], 0),
        (1, [0], 1),
        (2, [1], 2),
    ]
    validation_ids = {str(e["id"]) for e in document["examples"] if e["split"] == "validation"}
    test_ids = {str(e["id"]) for e in document["examples"] if e["split"] == "test"}
    for candidate in candidates:
        assert set(candidate["validation_scores"]) == validation_ids
        scores = candidate["validation_scores"].values()
        assert candidate["validation_score"] == pytest.approx(sum(scores) / len(scores))
        assert set(candidate["test_scores"]) == test_ids  # every candidate was scored on test


def test_without_test_scoring_of_every_candidate_baseline_and_best_come_from_the_final_evaluation():
    events = [e for e in read_events(FIXTURES / "run_default_seed0.jsonl") if e.TYPE != "test_scores"]
    document = export_run(build_run_view(events)).to_dict()
    scored = [c["index"] for c in document["candidates"] if c["test_scores"] is not None]
    assert scored == [0, 4]  # the baseline, and the best the final evaluation scored
    assert sum(document["candidates"][4]["test_scores"].values()) == 25


def test_proposals_say_what_the_reflection_model_was_shown_and_what_became_of_them():
    proposals = document_of("run_default_seed0")["proposals"]
    rejected = proposals[3]
    assert (rejected["iteration"], rejected["parent"], rejected["outcome"], rejected["candidate"]) == (
        4,
        2,
        "rejected",
        None,
    )
    assert rejected["minibatch"] == [40, 63, 80] and rejected["parent_scores"] == [1.0, 0.0, 1.0]
    shown = rejected["reflection"]
    assert [e["example"] for e in shown["examples"]] == rejected["minibatch"]
    assert shown["prompt_chars"] == len(shown["prompt"]) and shown["reply"].startswith("What I saw")
    accepted = proposals[5]
    assert (accepted["outcome"], accepted["candidate"]) == ("accepted", 4)
    skipped = proposals[7]
    assert skipped["outcome"] == "skipped" and skipped["reflection"] is None and skipped["child_scores"] == []


@pytest.mark.parametrize(
    "name", ["run_default_seed0", "run_short_qa_seed0", "run_context_qa", "run_cancelled_before_proposals"]
)
def test_the_document_round_trips_through_json_and_from_dict(name):
    export = export_run(build_run_view(read_events(FIXTURES / f"{name}.jsonl")))
    assert RunExport.from_dict(json.loads(json.dumps(export.to_dict()))) == export


def test_a_running_run_exports_without_a_summary():
    events = read_events(FIXTURES / "run_default_seed0.jsonl")[:12]
    document = export_run(build_run_view(events)).to_dict()
    assert document["summary"] is None and document["candidates"]


def test_another_schema_version_is_refused():
    document = document_of("run_context_qa") | {"schema_version": 2}
    with pytest.raises(ValueError, match="schema version 2"):
        RunExport.from_dict(document)


def test_an_incomplete_document_is_refused():
    document = document_of("run_context_qa")
    del document["candidates"]
    with pytest.raises(ValueError, match="incomplete or malformed"):
        RunExport.from_dict(document)


def test_the_config_never_holds_a_key():
    assert "api_key" not in json.dumps(document_of("run_default_seed0")["config"])
