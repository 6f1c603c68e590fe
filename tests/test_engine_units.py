"""Unit tests of the engine's pieces: config, registration rule, reflection guard, recorder, health board,
store helpers. (End-to-end runs are in test_cli.py and test_runs.py.)"""

from __future__ import annotations

import time

import pytest

from core.analysis import build_run_view
from core.config import OptimizationConfig
from core.datasets import Example
from core.errors import ConfigError
from core.events import Candidate, EventLog, FrontUpdated, Proposal, decode_event, read_events
from core.health import HealthBoard
from core.models import ModelAccessError, ModelCallError, ModelConfig
from core.recorder import FatalFlag, GuardedReflection, Recorder, reflective_example
from core.registration import end_of_run_blocker
from core.scorers import ScorerSpec
from core.store import StoreInfo, save_upload

# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"budget": 0}, "at least 1 metric call"),
        ({"patience": -1}, "Patience must be"),
        ({"minibatch_size": 0}, "minibatch size"),
        ({"selection": "random"}, "Unknown selection"),
        ({"concurrency": 100}, "Concurrency"),
        ({"validation_fraction": 1.0}, "validation fraction"),
        ({"template": "{{q}}"}, "needs a prompt name"),
        ({"template": "{{q}}", "prompt_name": "x", "prompt_uri": "prompts:/x/1"}, "not both"),
        ({"template": "no variable", "prompt_name": "x"}, "no {{variable}}"),
    ],
)
def test_config_refuses_unusable_settings_with_advice(fields, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        OptimizationConfig(**fields)


def test_config_round_trips_without_its_key():
    config = OptimizationConfig(
        models=ModelConfig("openai", model="m", base_url="http://127.0.0.1:1/v1", api_key="sk-secret"),
        scorer=ScorerSpec("f1", ("case",)),
        budget=99,
    )
    data = config.to_dict()
    assert "sk-secret" not in str(data) and "api_key" not in data["models"]
    again = OptimizationConfig.from_dict(data, api_key="sk-secret")
    assert again == config and again.models.api_key == "sk-secret"


def test_the_validation_split_follows_the_split_seed_not_the_search_seed(short_qa):
    from core.optimization import prepare_data

    def val_ids(**fields) -> list[int]:
        return prepare_data(
            OptimizationConfig(dataset_path=str(short_qa), validation_fraction=0.5, **fields)
        ).validation_ids

    assert val_ids(seed=0) == val_ids(seed=7)
    assert val_ids(split_seed=0) != val_ids(split_seed=1)


# --- registration rule --------------------------------------------------------------------------

BASE = "Answer: {{question}}"


def decide(**changes) -> str | None:
    """The end-of-run rule on a run with a baseline and one proposal, as the run's events say."""
    fields = {
        "baseline_template": BASE,
        "best_template": "Answer briefly: {{question}}",
        "baseline_score": 0.2,
        "best_score": 0.8,
        "register": True,
        "cancelled": False,
        "register_best_on_cancel": False,
    } | changes
    started = {"type": "run_started", "baseline": {"template": fields["baseline_template"]}, "val_ids": [0]}
    scored = [
        {"type": "validation", "candidate": i, "template": t, "aggregate": a, "scores": [a]}
        for i, (t, a) in enumerate(
            [(fields["baseline_template"], fields["baseline_score"]), (fields["best_template"], fields["best_score"])]
        )
    ]
    view = build_run_view([decode_event({"v": 2, **event}) for event in [started, *scored]])
    return end_of_run_blocker(
        view,
        register=fields["register"],
        cancelled=fields["cancelled"],
        register_best_on_cancel=fields["register_best_on_cancel"],
    )


def test_a_better_different_candidate_is_registered():
    assert decide() is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"register": False}, "turned off"),
        ({"cancelled": True}, "stopped"),
        ({"best_template": BASE + " "}, "no candidate differs"),
        ({"best_template": "Answer briefly."}, "dropped {{question}}"),
        ({"best_score": 0.2}, "no candidate beat the baseline"),
    ],
)
def test_registration_is_refused_for_a_reason(changes, reason):
    assert reason in decide(**changes)


def test_a_stopped_run_registers_when_asked():
    assert decide(cancelled=True, register_best_on_cancel=True) is None


# --- reflection guard ---------------------------------------------------------------------------


class FakeRecorder:
    def __init__(self):
        self.failures, self.invalid, self.prompts = [], [], []

    def reflection_failed(self, message):
        self.failures.append(message)

    def invalid_proposal(self, reason, template, reflection, prompt=""):
        self.invalid.append(reason)
        self.prompts.append(prompt)


def guard(reply) -> tuple[GuardedReflection, FakeRecorder, FatalFlag]:
    def lm(prompt):
        if isinstance(reply, Exception):
            raise reply
        return reply

    recorder, fatal = FakeRecorder(), FatalFlag()
    return GuardedReflection(lm, baseline_template=BASE, recorder=recorder, fatal=fatal), recorder, fatal


DATASET = {"qa": [{"inputs": {"question": "q"}, "outputs": "The answer is X.", "score": 0.0}]}


def test_a_valid_proposal_passes_through():
    reflection, recorder, _ = guard("```\nAnswer with one word: {{question}}\n```")
    proposal, _ = reflection.reflect({"qa": BASE}, DATASET, ["qa"])
    assert proposal.new_texts == {"qa": "Answer with one word: {{question}}"} and not recorder.invalid


def test_a_proposal_that_drops_a_variable_is_discarded():
    reflection, recorder, _ = guard("```\nAnswer with one word.\n```")
    proposal, _ = reflection.reflect({"qa": BASE}, DATASET, ["qa"])
    assert proposal.new_texts == {} and "dropped {{question}}" in recorder.invalid[0]
    assert "The answer is X." in recorder.prompts[0]  # what it was shown is kept with the discarded proposal


def test_an_unchanged_proposal_is_discarded():
    reflection, recorder, _ = guard(f"```\n{BASE}\n```")
    assert reflection.reflect({"qa": BASE}, DATASET, ["qa"])[0].new_texts == {}
    assert "identical to its parent" in recorder.invalid[0]


def test_a_failed_reflection_is_counted_not_fatal():
    reflection, recorder, fatal = guard(ModelCallError("timed out"))
    assert reflection.reflect({"qa": BASE}, DATASET, ["qa"])[0].new_texts == {}
    assert recorder.failures == ["timed out"] and fatal.message is None


def test_a_refused_key_during_reflection_stops_the_run():
    reflection, _, fatal = guard(ModelAccessError("refused the API key (401)"))
    reflection.reflect({"qa": BASE}, DATASET, ["qa"])
    assert "401" in fatal.message


# --- recorder -----------------------------------------------------------------------------------


def test_recorder_turns_gepa_callbacks_into_documented_events(tmp_path):
    examples = [Example({"question": f"q{i}"}, f"a{i}", i + 1) for i in range(4)]
    log = EventLog(tmp_path / "events.jsonl")
    recorder = Recorder(log, prompt_name="qa", train_ids=[0, 1, 2, 3], val=examples, outputs_cache={})
    recorder.on_pareto_front_updated({"iteration": 0, "new_front": [0], "displaced_candidates": []})
    recorder.on_valset_evaluated(
        {
            "iteration": 0,
            "candidate_idx": 0,
            "candidate": {"qa": BASE},
            "parent_ids": [],
            "scores_by_val_id": {0: 1.0, 1: 0.0, 2: 0.0, 3: 0.0},
            "average_score": 0.25,
            "outputs_by_val_id": {i: f"o{i}" for i in range(4)},
        }
    )
    recorder.on_iteration_start({"iteration": 1})
    recorder.on_candidate_selected({"candidate_idx": 0})
    recorder.on_minibatch_sampled({"minibatch_ids": [3, 1]})
    recorder.on_evaluation_end({"candidate_idx": 0, "scores": [0.0, 0.0], "outputs": ["x", "y"]})
    recorder.on_reflective_dataset_built(
        {"dataset": {"qa": [reflective_record(0, "q3", "x"), reflective_record(1, "q1", "y")]}}
    )
    recorder.on_proposal_end(
        {"new_instructions": {"qa": "New: {{question}}"}, "prompts": {"qa": "p"}, "raw_lm_outputs": {"qa": "r"}}
    )
    recorder.on_evaluation_end({"candidate_idx": None, "scores": [1.0, 0.0], "outputs": ["a3", "y"]})
    recorder.on_budget_updated({"iteration": 1, "metric_calls_used": 8})
    recorder.on_pareto_front_updated({"iteration": 1, "new_front": [0, 1], "displaced_candidates": []})
    recorder.on_valset_evaluated(
        {
            "iteration": 1,
            "candidate_idx": 1,
            "candidate": {"qa": "New: {{question}}"},
            "parent_ids": [0],
            "scores_by_val_id": {0: 0.0, 1: 0.0, 2: 0.0, 3: 1.0},
            "average_score": 0.25,
            "outputs_by_val_id": None,
        }
    )
    recorder.on_candidate_accepted({"new_candidate_idx": 1})
    recorder.on_iteration_end({"iteration": 1, "proposal_accepted": True})
    log.close()
    events = read_events(tmp_path / "events.jsonl")
    assert [e.TYPE for e in events] == [
        "pareto_front",
        "validation",
        "budget",
        "pareto_front",
        "validation",
        "iteration",
    ]
    assert isinstance(events[3], FrontUpdated) and events[3].front == (0, 1)  # each best on one example
    iteration = events[-1]
    assert isinstance(iteration, Proposal)
    assert iteration.outcome == "accepted" and iteration.candidate == 1 and iteration.parent == 0
    assert iteration.minibatch == (3, 1) and iteration.scores_after == (1.0, 0.0)
    assert iteration.template == "New: {{question}}" and iteration.reflection == "r"
    assert (iteration.reflection_prompt, iteration.reflection_prompt_chars) == ("p", 1)
    assert [(r.example, r.inputs, r.output, r.expected) for r in iteration.reflective_dataset] == [
        (3, {"question": "q3"}, "x", "a3"),
        (1, {"question": "q1"}, "y", "a1"),
    ]
    assert iteration.reflective_dataset[0].feedback == "expected 'a3', got 'x'"
    assert isinstance(events[4], Candidate)
    assert events[4].outputs[0].startswith("Failed to invoke")  # no output recorded for it anywhere


def reflective_record(index: int, question: str, output: str) -> dict:
    """A record of the reflective dataset as MLflow's GEPA adapter builds it."""
    expected = "a" + question[1:]
    return {
        "component_name": "qa",
        "trace": [],
        "score": 0.0,
        "inputs": {"question": question},
        "outputs": output,
        "expectations": {"expected_response": expected},
        "rationales": {"exact_match": f"expected '{expected}', got '{output}'"},
        "index": index,
    }


def test_reflective_records_of_other_shapes_keep_their_text():
    record = {"Inputs": "q", "Generated Outputs": {"answer": 4}, "Feedback": "wrong"}
    example = reflective_example(record)
    assert (example.example, example.inputs, example.output, example.feedback) == (
        None,
        {"input": "q"},
        '{"answer": 4}',
        "wrong",
    )
    two = reflective_example({"rationales": {"a": "x", "b": "y"}, "index": 5}, minibatch=(7, 8))
    assert two.feedback == "a: x\nb: y" and two.example is None


def test_recorded_reflection_prompt_is_cut_at_the_cap_and_keeps_its_length():
    from core.events import REFLECTION_PROMPT_CAP
    from core.recorder import _prompt_fields

    fields = _prompt_fields("x" * (REFLECTION_PROMPT_CAP + 10))
    assert len(fields["reflection_prompt"]) == REFLECTION_PROMPT_CAP
    assert fields["reflection_prompt_chars"] == REFLECTION_PROMPT_CAP + 10
    assert _prompt_fields([{"role": "user", "content": "hi"}])["reflection_prompt"] == "user: hi"


def test_recorder_never_raises_into_gepa(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    recorder = Recorder(log, prompt_name="qa", train_ids=[], val=[], outputs_cache={})
    recorder.on_valset_evaluated({"garbage": True})
    recorder.on_minibatch_sampled({"minibatch_ids": [99]})
    recorder.on_iteration_start({"iteration": 1})
    recorder.on_reflective_dataset_built({"dataset": {"qa": [None, 3]}})
    recorder.on_proposal_start({"reflective_dataset": "not a mapping"})


# --- health board and store helpers --------------------------------------------------------------


def test_health_board_answers_at_once_and_fills_in_later():
    board, calls = HealthBoard(), []

    def check():
        calls.append(1)
        time.sleep(0.2)
        return "ok"

    assert board.get("k", check, ttl=60) is None
    assert board.wait("k", timeout=5) == "ok"
    assert board.get("k", check, ttl=60) == "ok" and len(calls) == 1
    board.forget()
    assert board.get("k", check, ttl=60) is None
    assert board.wait("k", timeout=5) == "ok"
    assert board.peek("k", ttl=60) == "ok" and board.peek("k", ttl=0) is None and len(calls) == 2
    assert board.peek("other", ttl=60) is None  # peeking starts nothing


def test_status_checks_run_in_a_child_process_and_keep_the_key_off_its_command_line(explorer_home, monkeypatch):
    import subprocess

    from core.health import model_status_in_child, store_status_in_child

    seen = []
    real_run = subprocess.run

    def spy(cmd, **kwargs):
        seen.append((cmd, kwargs["input"]))
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    ok, message = store_status_in_child(f"sqlite:///{explorer_home / 'mlflow.db'}")
    assert ok and message.startswith("Local SQLite store")
    rows = model_status_in_child(ModelConfig("openai", base_url="http://127.0.0.1:9/v1", model="m", api_key="sk-XYZ"))
    assert [(role, ok) for role, ok, _ in rows] == [("task", False), ("reflection", False)]
    assert "could not connect to http://127.0.0.1:9/v1" in rows[0][2]
    assert all("sk-XYZ" not in " ".join(cmd) + given for cmd, given in seen)
    assert model_status_in_child(ModelConfig("offline"))[0] == ("task", True, "gepa-offline-demo (simulated) answers")


def test_store_info_links_to_a_server_ui_and_labels_local_files(monkeypatch):
    assert StoreInfo("http://127.0.0.1:5000/").ui_url == "http://127.0.0.1:5000"
    monkeypatch.delenv("GEPA_EXPLORER_MLFLOW_UI_URL", raising=False)
    local = StoreInfo("sqlite:////tmp/x/mlflow.db")
    assert local.ui_url is None and local.label == "Local SQLite store /tmp/x/mlflow.db"
    monkeypatch.setenv("GEPA_EXPLORER_MLFLOW_UI_URL", "http://127.0.0.1:5001/")
    assert local.ui_url == "http://127.0.0.1:5001"


def test_uploads_are_kept_once_with_a_safe_name(explorer_home):
    first = save_upload(b"question,answer\nq,a\n", "../my data.csv")
    again = save_upload(b"question,answer\nq,a\n", "../my data.csv")
    assert first == again and first.parent.parent == explorer_home / "uploads" and first.name == "my_data.csv"


def test_an_upload_keeps_its_file_name_so_runs_name_the_dataset_after_it(explorer_home):
    from core.datasets import load_dataset

    path = save_upload(b"question,answer\nq,a\n", "capitals.csv")
    other = save_upload(b"question,answer\nq,b\n", "capitals.csv")
    assert load_dataset(path).name == "capitals"  # not "3fa2b1c4d5e6-capitals"
    assert other != path and other.read_bytes() != path.read_bytes()


# --- errors at the boundary ---------------------------------------------------------------------


def test_an_internal_error_exits_1_with_one_line_and_its_traceback_in_the_run_log(
    explorer_home, tmp_path, monkeypatch, capsys
):
    from core import cli, optimization

    def broken(*_args, **_kwargs):
        raise KeyError("a bug, not the user's input")

    monkeypatch.setattr(optimization, "run_optimization", broken)
    run_dir = tmp_path / "run"
    code = cli.main(["optimize", "--quiet", "--run-dir", str(run_dir)])
    said = capsys.readouterr().err
    assert code == 1 and said.count("\n") == 1 and said.startswith("error: Internal error (KeyError")
    assert str(run_dir / "run.log") in said
    assert "Traceback" in (run_dir / "run.log").read_text() and "Traceback" not in said


def test_a_plain_value_error_is_not_mistaken_for_bad_input():
    from core.errors import InputError

    assert not issubclass(ValueError, InputError)
    for module, name in (
        ("core.datasets", "DatasetError"),
        ("core.prompts", "PromptError"),
        ("core.store", "StoreError"),
    ):
        assert issubclass(getattr(__import__(module, fromlist=[name]), name), InputError)


@pytest.mark.parametrize(("text", "seeds"), [("0,1,2", [0, 1, 2]), ("3-5", [3, 4, 5]), (" 7 ", [7])])
def test_seeds_are_read_as_a_list_or_a_range(text, seeds):
    from core.groups import parse_seeds

    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(("text", "said"), [("0,0", "repeat"), ("a", "not a list"), ("0-20", "too many")])
def test_bad_seeds_say_what_to_write(text, said):
    from core.groups import parse_seeds

    with pytest.raises(ConfigError, match=said):
        parse_seeds(text)


def test_the_group_aggregate_is_the_mean_and_sample_spread_of_the_scores():
    from core.groups import aggregate

    result = aggregate([{"final_score": 0.8}, {"final_score": 0.9}, {"final_score": 1.0, "test_final_score": 0.5}])
    assert result["final_score"]["mean"] == pytest.approx(0.9) and result["final_score"]["std"] == pytest.approx(0.1)
    assert result["test_final_score"] == {"mean": 0.5, "std": 0.0, "n": 1}
    assert result["initial_score"] == {"mean": None, "std": None, "n": 0}


def test_a_participant_name_is_checked_and_prefixes_the_prompts_their_runs_register():
    from core.participants import participant_name, prompt_name_for

    assert participant_name("  Alice ") == "alice" and participant_name("") is None
    assert prompt_name_for("alice", "short-answer-qa") == "alice.short-answer-qa"
    assert prompt_name_for("alice", "alice.short-answer-qa") == "alice.short-answer-qa"
    assert prompt_name_for(None, "short-answer-qa") == "short-answer-qa"
    with pytest.raises(ConfigError, match="not a participant name"):
        participant_name("alice smith")


def test_runs_are_named_by_their_scores_then_what_tells_them_apart():
    from core.runs import RunInfo, run_label, run_rows

    def info(seed: str, scorer: str) -> RunInfo:
        return RunInfo(
            run_id=f"id{seed}",
            name="short-answer-qa v1 · budget 300",
            experiment_id="1",
            status="FINISHED",
            start_ms=0,
            end_ms=None,
            params={"scorer": scorer, "budget": "300", "patience": "6", "seed": seed},
            tags={"gepa_explorer.status": "finished"},
            metrics={"initial_eval_score": 0.2, "final_eval_score": 0.85},
        )

    first, second = info("0", "exact_match"), info("1", "f1")
    assert run_label(first).startswith("20% → 85% · exact match · budget 300 · patience 6 · seed 0 · ")
    assert run_label(first) != run_label(second) and "F1" in run_label(second)
    assert list(run_rows([first])[0])[:7] == ["baseline", "best", "test", "scorer", "budget", "patience", "seed"]


def test_a_run_label_names_its_test_scores_cost_seconds_and_participant():
    from core.runs import RunInfo, run_label, run_rows

    run = RunInfo(
        run_id="id0",
        name="short-answer-qa v1",
        experiment_id="1",
        status="FINISHED",
        start_ms=0,
        end_ms=None,
        params={"scorer": "llm_judge", "budget": "150", "seed": "0"},
        tags={"gepa_explorer.status": "finished", "gepa_explorer.participant": "alice"},
        metrics={
            "initial_eval_score": 0.9,
            "final_eval_score": 0.97,
            "test_baseline_score": 0.9,
            "test_best_score": 0.93,
            "cost_usd": 0.024,
            "seconds": 27.7,
        },
    )
    assert run_label(run).startswith(
        "90% → 97% (test 90% → 93%) · LLM judge · budget 150 · seed 0 · by alice · $0.0240 · 28 s"
    )
    row = run_rows([run])[0]
    assert (row["test"], row["cost"], row["seconds"], row["participant"]) == (0.93, 0.024, 27.7, "alice")


def test_run_labels_name_only_what_differs_between_the_runs_listed():
    import dataclasses

    from core.runs import RunInfo, run_labels

    base = RunInfo(
        run_id="a",
        name="run",
        experiment_id="1",
        status="FINISHED",
        start_ms=0,
        end_ms=None,
        params={"scorer": "exact_match", "budget": "300", "patience": "6", "seed": "0"},
        tags={"gepa_explorer.status": "finished", "gepa_explorer.participant": "alice"},
        metrics={"initial_eval_score": 0.17, "final_eval_score": 0.87, "seconds": 9.0},
    )
    other = dataclasses.replace(base, run_id="b", params={**base.params, "seed": "1"}, metrics={**base.metrics})
    twin = dataclasses.replace(base, run_id="c", start_ms=60_000)
    labels = run_labels([base, other])
    assert labels == {"a": "17% → 87% · seed 0", "b": "17% → 87% · seed 1"}
    alike = run_labels([base, twin])
    assert alike["a"] != alike["c"] and alike["a"].startswith("17% → 87% · ")  # told apart by when they started
    assert run_labels([base])["a"].startswith("17% → 87% · exact match · budget 300 · patience 6 · seed 0 · by alice")
