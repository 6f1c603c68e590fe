"""The headless CLI, end to end, on the offline demo model and loopback endpoints."""

import json
import sqlite3

import pytest

from conftest import iter_files, rows_jsonl

pytestmark = pytest.mark.slow


def prompt_versions(home) -> list[tuple[str, int]]:
    with sqlite3.connect(home / "mlflow.db") as db:
        return sorted(db.execute("select name, version from model_versions").fetchall())


def run_count(home) -> int:
    with sqlite3.connect(home / "mlflow.db") as db:
        return db.execute("select count(*) from runs").fetchone()[0]


def on_endpoint(server) -> list[str]:
    """CLI flags that point both models at a loopback endpoint serving the offline model."""
    return ["--provider", "openai", "--base-url", server.base_url, "--model", "gepa-offline-demo"]


def events_of(summary: dict) -> list[dict]:
    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=summary["run_id"], artifact_path="events.jsonl")
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def test_default_run_reaches_the_workshop_numbers(run_cli, tracking):
    result = run_cli("optimize", "--provider", "offline", "--seed", "0")
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert summary["initial_score"] <= 0.30
    assert summary["final_score"] >= 0.80
    assert summary["candidates"] >= 4
    assert summary["max_pareto_front_size"] >= 2
    assert summary["stopped_by"] in ("budget", "patience", "perfect")
    assert summary["failed_predictions"] == 0 and summary["failed_reflections"] == 0
    assert summary["baseline_uri"] == "prompts:/short-answer-qa/1"
    assert summary["optimized_uri"] == "prompts:/short-answer-qa/2"
    assert "candidate 0 scored 16.7%" in result.stderr  # progress is printed
    assert "300 metric calls allow 8 to 45 proposals" in result.stderr  # with the budget preflight

    import mlflow

    run = mlflow.MlflowClient().get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["final_eval_score"] == summary["final_score"]
    events = events_of(summary)
    assert [e["type"] for e in events][:1] == ["run_started"] and events[-1]["type"] == "run_finished"
    validations = [e for e in events if e["type"] == "validation"]
    assert len(validations) == summary["candidates"]
    final = events[-1]["final_evaluation"]
    assert final["baseline"]["aggregate"] == summary["initial_score"]
    assert final["best"]["aggregate"] == summary["final_score"]
    traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=summary["run_id"], return_type="list")
    assert len(traces) == 1 and len(traces[0].data.spans) == 1 + 30 + 30  # validation and test rows


def test_same_seed_gives_the_same_candidates_and_scores(run_cli, tracking):
    runs = [run_cli("optimize", "--budget", "120", "--seed", "3", "--no-register") for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    first, second = (
        [(e["template"], e["scores"]) for e in events_of(r.summary) if e["type"] == "validation"] for r in runs
    )
    assert first == second and len(first) >= 2
    assert runs[0].summary["optimized_uri"] is None
    assert "turned off" in runs[0].summary["not_registered_reason"]


def test_identical_best_reuses_the_registered_version(run_cli, tracking, explorer_home):
    first = run_cli("optimize", "--budget", "100", "--seed", "5")
    second = run_cli("optimize", "--budget", "100", "--seed", "5")
    assert first.summary["optimized_uri"] == second.summary["optimized_uri"] is not None
    assert len(prompt_versions(explorer_home)) == 3  # two bundled baselines and one optimized version
    assert (first.summary["registered"], second.summary["registered"]) == ("new", "existing")
    assert second.summary["registered_by_run"] == first.summary["run_id"]
    said = f"same text as version 2 (prompts:/short-answer-qa/2), registered by run {first.summary['run_id']}"
    assert said in second.stderr and "registered as a new version" in first.stderr


def test_two_variable_dataset_keeps_both_variables(run_cli, tracking, context_qa):
    result = run_cli("optimize", "--dataset", str(context_qa), "--budget", "80", "--seed", "1")
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert summary["baseline_uri"] == "prompts:/context-qa/1"
    assert summary["final_score"] > summary["initial_score"]
    from core import prompts

    best = prompts.load(summary["optimized_uri"]).template
    assert "{{context}}" in best and "{{question}}" in best


def test_template_and_name_register_a_baseline(run_cli, tracking, write_file):
    data = write_file(
        "mine.csv",
        "question,answer\nHow many legs does an insect have?,6\n"
        "Who wrote the novel Pride and Prejudice?,Jane Austen\n"
        "Is a tomato a fruit in the botanical sense?,yes\n",
    )
    result = run_cli(
        "optimize",
        "--dataset",
        str(data),
        "--prompt-name",
        "mine",
        "--template",
        "Q: {{question}}",
        "--budget",
        "30",
        "--scorer",
        "f1",
        "--normalize",
        "none",
    )
    assert result.returncode == 0, result.stderr
    assert result.summary["baseline_uri"] == "prompts:/mine/1"


def test_failed_predictions_are_counted_not_hidden(run_cli, tracking, endpoint_factory):
    server = endpoint_factory(error_rate=0.25, seed=1)
    result = run_cli(
        "optimize",
        *on_endpoint(server),
        "--budget",
        "60",
        "--max-retries",
        "0",
        "--no-register",
        OPENAI_API_KEY="not-needed",
    )
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert summary["failed_predictions"] > 0
    events = events_of(summary)
    failed = sum(e["failed"] for e in events if e["type"] == "validation")
    assert failed > 0
    assert any(o.startswith("Failed to invoke") for e in events if e["type"] == "validation" for o in e["outputs"])
    assert f"warning: {summary['failed_predictions']} predictions failed even after retries" in result.stderr


def test_endpoint_failing_everything_is_refused_before_the_run(run_cli, explorer_home, endpoint_factory):
    broken = endpoint_factory(error_rate=1.0)
    result = run_cli(
        "optimize",
        "--provider",
        "openai",
        "--base-url",
        broken.base_url,
        "--model",
        "gepa-offline-demo",
        "--max-retries",
        "0",
        OPENAI_API_KEY="x",
    )
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert run_count(explorer_home) == 0


BAD_INPUTS = {
    "missing dataset": (["--dataset", "/nonexistent/data.jsonl"], "no such file"),
    "budget too small": (["--budget", "10"], "does not even cover"),
    "unknown prompt": (["--prompt-uri", "prompts:/nope/3"], "No prompt found at prompts:/nope/3"),
    "malformed prompt uri": (["--prompt-uri", "nope"], "is not a prompt URI"),
    "bad normalisation": (["--normalize", "case,accents"], "Unknown normalisation 'accents'"),
    "bad scorer": (["--scorer", "bleu"], "invalid choice: 'bleu'"),
    "template without name": (["--template", "Q: {{question}}"], "--template needs --prompt-name"),
    "template missing variable": (["--prompt-name", "x", "--template", "{{query}}"], "has no 'query'"),
    "malformed template": (["--prompt-name", "x", "--template", "Answer {{question}"], "'{{question}' is not closed"),
    "unreachable endpoint": (
        ["--provider", "openai", "--base-url", "http://127.0.0.1:9/v1", "--max-retries", "0", "--timeout", "2"],
        "127.0.0.1:9",
    ),
    "openai without key": (["--provider", "openai"], "OPENAI_API_KEY"),
    "negative patience": (["--patience", "-1"], "Patience must be"),
    "tracking uri without scheme": (["--tracking-uri", "localhost:5000"], "give http://HOST:PORT"),
    "unknown tracking uri scheme": (["--tracking-uri", "bogus://x"], "is not a store GEPA Explorer can use"),
    "base url for the offline model": (["--base-url", "http://127.0.0.1:9/v1"], "choose the openai provider"),
    "model name for the offline model": (["--model", "llama3"], "only 'gepa-offline-demo'"),
    "simulated faults for a real provider": (
        ["--provider", "openai", "--base-url", "http://127.0.0.1:9/v1", "--offline-error-rate", "0.1"],
        "only apply to the offline demo model",
    ),
    "run dir that cannot be made": (["--run-dir", "/proc/gepa-explorer-test"], "cannot be used"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_registers_nothing(run_cli, explorer_home, case):
    args, message = BAD_INPUTS[case]
    before = prompt_versions(explorer_home)
    result = run_cli("optimize", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert prompt_versions(explorer_home) == before
    assert run_count(explorer_home) == 0


def test_malformed_dataset_row_is_named(run_cli, explorer_home, write_file):
    data = write_file("bad.jsonl", rows_jsonl([{"question": "q", "answer": "a"}, {"question": "q2"}]))
    result = run_cli("optimize", "--dataset", str(data), "--prompt-name", "x", "--template", "{{question}}")
    assert result.returncode == 2
    assert "bad.jsonl, row 2, field 'expected_response': no expected answer" in result.stderr


def test_refused_key_exits_2_and_never_leaks_the_key(run_cli, explorer_home, endpoint_factory):
    server = endpoint_factory(api_key="sk-right")
    result = run_cli(
        "optimize",
        *on_endpoint(server),
        OPENAI_API_KEY="sk-wrong-0123456789",
    )
    assert result.returncode == 2 and "refused the API key (401)" in result.stderr
    assert "sk-wrong-0123456789" not in result.stderr + result.stdout


def test_api_key_never_reaches_mlflow_events_or_output(run_cli, tracking, explorer_home, endpoint_factory):
    secret = "sk-test-SECRET-4242424242"
    server = endpoint_factory(api_key=secret)
    result = run_cli(
        "optimize",
        *on_endpoint(server),
        "--budget",
        "60",
        OPENAI_API_KEY=secret,
    )
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    for path in iter_files(explorer_home):
        assert secret.encode() not in path.read_bytes(), path


def test_help_mentions_the_simulated_model(run_cli):
    result = run_cli("optimize", "--help")
    assert result.returncode == 0 and "simulated" in result.stdout


def test_run_dir_holding_something_is_refused(run_cli, explorer_home, tmp_path):
    (tmp_path / "events.jsonl").write_text("{}\n")
    result = run_cli("optimize", "--run-dir", str(tmp_path))
    assert result.returncode == 2 and "is not empty" in result.stderr and result.stderr.count("\n") == 1
    assert run_count(explorer_home) == 0


def test_bundled_alias_uri_works_on_a_fresh_store(run_cli, explorer_home):
    result = run_cli(
        "optimize", "--prompt-uri", "prompts:/short-answer-qa@baseline", "--budget", "60", "--no-register", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert result.summary["baseline_uri"] == "prompts:/short-answer-qa/1"  # the alias, resolved


def test_serve_offline_refuses_a_port_in_use(run_cli):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("serve-offline", "--port", str(taken.getsockname()[1]), timeout=60)
    assert result.returncode == 2 and "already in use" in result.stderr
    assert "Offline demo model" not in result.stderr and "Traceback" not in result.stderr


def test_a_separate_test_file_is_never_seen_by_the_search(run_cli, tracking, short_qa, write_file):
    rows = [json.loads(line) for line in short_qa.read_text().splitlines()]
    data = write_file("train.jsonl", "".join(json.dumps(r) + "\n" for r in rows[:60]))
    test = write_file("test.jsonl", "".join(json.dumps(r) + "\n" for r in rows[60:]))
    result = run_cli(
        "optimize",
        "--dataset",
        str(data),
        "--test-dataset",
        str(test),
        "--validation-fraction",
        "0.5",
        "--prompt-name",
        "short-qa-test",
        "--template",
        "Answer this question: {{question}}",
        "--no-register",
    )
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert (summary["train_size"], summary["validation_size"], summary["test_size"]) == (30, 30, 30)
    assert summary["test_final_score"] is not None and len(summary["test_delta_ci"]) == 2
    events = events_of(summary)
    started = events[0]
    test_ids = set(started["test_ids"])
    assert test_ids == set(range(60, 90)) and not test_ids & set(started["val_ids"])
    assert all(not test_ids & set(e["minibatch"]) for e in events if e["type"] == "iteration")
    assert all(len(e["scores"]) == 30 for e in events if e["type"] == "validation")  # validation rows only
    assert [e["candidate"] for e in events if e["type"] == "test_scores"] == list(range(summary["candidates"]))


def test_seeds_run_at_once_and_end_with_runs_and_their_aggregate(run_cli, tracking):
    result = run_cli("optimize", "--seeds", "0,1", "--budget", "120", "--no-register", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert [run["seed"] for run in summary["runs"]] == [0, 1]
    assert all(run["status"] == "finished" for run in summary["runs"])
    final = summary["aggregate"]["final_score"]
    scores = [run["final_score"] for run in summary["runs"]]
    assert final["n"] == 2 and final["mean"] == pytest.approx(sum(scores) / 2)
    assert summary["aggregate"]["test_final_score"]["n"] == 2


def test_bad_seeds_exit_2_before_anything_starts(run_cli, explorer_home):
    result = run_cli("optimize", "--seeds", "0,zero")
    assert result.returncode == 2 and "is not a list of seeds" in result.stderr and run_count(explorer_home) == 0


def test_token_counts_equal_what_the_endpoint_served_per_role(run_cli, tracking, endpoint_factory):
    from core.models import PROBE_PROMPT
    from core.offline_model.behaviour import answer_prompt
    from core.tokens import chat_prompt_tokens, text_tokens

    server = endpoint_factory()
    result = run_cli("optimize", *on_endpoint(server), "--budget", "120", "--no-register", OPENAI_API_KEY="x")
    assert result.returncode == 0, result.stderr
    tokens, served = result.summary["tokens"], server.served.snapshot()
    # The reflection model's preflight probe reads like a task prompt to the endpoint, which sorts
    # requests by their text: move it to the reflection role before comparing.
    probe = {
        "prompt": chat_prompt_tokens([{"content": PROBE_PROMPT}]),
        "completion": text_tokens(answer_prompt(PROBE_PROMPT)),
    }
    expected = {
        "task": (
            served["task"].prompt_tokens - probe["prompt"],
            served["task"].completion_tokens - probe["completion"],
        ),
        "reflection": (
            served["reflection"].prompt_tokens + probe["prompt"],
            served["reflection"].completion_tokens + probe["completion"],
        ),
    }
    for role, (prompt, completion) in expected.items():
        assert tokens[role]["prompt"] == pytest.approx(prompt, rel=0.01), role
        assert tokens[role]["completion"] == pytest.approx(completion, rel=0.01), role
    assert tokens["judge"] == {"prompt": 0, "completion": 0, "calls": 0}
    assert result.summary["cost_usd"] is None  # a custom endpoint's models have no known price


def test_prices_given_on_the_command_line_make_a_cost(run_cli, tracking, endpoint_factory):
    server = endpoint_factory()
    result = run_cli(
        "optimize",
        *on_endpoint(server),
        "--budget",
        "60",
        "--no-register",
        "--quiet",
        "--task-price",
        "0.15,0.60",
        "--reflection-price",
        "2.5,10",
        OPENAI_API_KEY="x",
    )
    assert result.returncode == 0, result.stderr
    tokens = result.summary["tokens"]
    expected = (tokens["task"]["prompt"] * 0.15 + tokens["task"]["completion"] * 0.60) / 1e6
    expected += (tokens["reflection"]["prompt"] * 2.5 + tokens["reflection"]["completion"] * 10) / 1e6
    assert result.summary["cost_usd"] == pytest.approx(expected)


def test_the_llm_judge_scores_the_default_run_judging_each_pair_once(run_cli, tracking):
    result = run_cli("optimize", "--scorer", "llm_judge", "--no-register", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = result.summary
    assert summary["cost_usd"] == 0.0 and summary["tokens"]["judge"]["calls"] > 0
    events = events_of(summary)
    usage = [e for e in events if e["type"] == "usage"][-1]
    asked = usage["judge_cache_hits"] + usage["judge_cache_misses"]
    assert usage["judge_cache_misses"] <= 0.6 * asked  # identical (output, expected) pairs judged once
    validations = [e for e in events if e["type"] == "validation"]
    assert all(len(e["rationales"]) == len(e["outputs"]) and all(e["rationales"]) for e in validations)
    assert summary["final_score"] > summary["initial_score"]


def test_a_price_that_is_not_two_numbers_exits_2(run_cli, explorer_home):
    result = run_cli("optimize", "--task-price", "cheap")
    assert (
        result.returncode == 2
        and result.stderr.startswith("error: --task-price cheap")
        and run_count(explorer_home) == 0
    )


def test_two_participants_register_into_prompts_of_their_own(run_cli, tracking, explorer_home):
    alice = run_cli("optimize", "--participant", "alice", "--budget", "120", "--quiet")
    bob = run_cli("optimize", "--participant", "Bob", "--budget", "120", "--quiet")
    assert alice.returncode == bob.returncode == 0, alice.stderr + bob.stderr
    assert alice.summary["optimized_uri"] == "prompts:/alice.short-answer-qa/1"
    assert bob.summary["optimized_uri"] == "prompts:/bob.short-answer-qa/1"
    names = {name for name, _ in prompt_versions(explorer_home)}
    assert names == {"short-answer-qa", "context-qa", "alice.short-answer-qa", "bob.short-answer-qa"}

    import mlflow

    tags = [mlflow.MlflowClient().get_run(r.summary["run_id"]).data.tags for r in (alice, bob)]
    assert [t["gepa_explorer.participant"] for t in tags] == ["alice", "bob"]


def recorded_estimate(summary: dict):
    from core.analysis import build_run_view
    from core.events import decode_event

    return build_run_view([decode_event(e) for e in events_of(summary)]).estimate


def test_on_the_default_run_the_estimate_lands_within_30_percent_of_the_calls(run_cli, tracking):
    result = run_cli("optimize", "--no-register", "--quiet")
    assert result.returncode == 0, result.stderr
    estimate = recorded_estimate(result.summary)
    calls = sum(tally["calls"] for tally in result.summary["tokens"].values())
    assert sum(r.calls for r in estimate.by_role.values()) == pytest.approx(calls, rel=0.3)
    assert estimate.simulated and "nothing (simulated model)" in estimate.summary


def test_against_a_priced_endpoint_the_estimate_lands_within_30_percent_of_the_cost(
    run_cli, tracking, endpoint_factory
):
    server = endpoint_factory()
    prices = ["--task-price", "0.15,0.6", "--reflection-price", "2.5,10"]
    result = run_cli("optimize", *on_endpoint(server), *prices, "--no-register", "--quiet", OPENAI_API_KEY="x")
    assert result.returncode == 0, result.stderr
    estimate = recorded_estimate(result.summary)
    calls = sum(tally["calls"] for tally in result.summary["tokens"].values())
    assert sum(r.calls for r in estimate.by_role.values()) == pytest.approx(calls, rel=0.3)
    assert estimate.cost == pytest.approx(result.summary["cost_usd"], rel=0.3)


def test_export_writes_a_recorded_run_as_one_json_document(run_cli, explorer_home, tmp_path):
    from conftest import fixture_events, record_run

    run_id = record_run(fixture_events("run_default_seed0"))
    out = tmp_path / "run.json"
    result = run_cli("export", run_id, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.summary == {"run_id": run_id, "out": str(out), "schema_version": 1, "candidates": 8, "proposals": 12}
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["run_id"] == run_id and document["summary"]["run_id"] == "3fe2d9de375c4026b11d3bcf949ad3c3"
    assert [p["outcome"] for p in document["proposals"]].count("rejected") == 2
    assert document["proposals"][0]["reflection"]["examples"][0]["feedback"]


def test_export_of_an_unknown_run_exits_2_with_one_line(run_cli, explorer_home, tmp_path):
    result = run_cli("export", "0123456789abcdef", "--out", str(tmp_path / "run.json"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: No run with id '0123456789abcdef'") and result.stderr.count("\n") == 1
    assert not (tmp_path / "run.json").exists()


def test_export_of_a_run_that_is_not_an_optimization_exits_2_with_one_line(run_cli, tracking, tmp_path):
    import mlflow

    run = mlflow.MlflowClient().create_run(mlflow.MlflowClient().search_experiments()[0].experiment_id)
    result = run_cli("export", run.info.run_id, "--out", str(tmp_path / "run.json"))
    assert result.returncode == 2
    assert result.stderr == f"error: Run '{run.info.run_id}' is not a GEPA Explorer optimization run.\n"


def test_top_level_help_lists_only_the_public_commands(run_cli):
    result = run_cli("--help", timeout=60)
    assert result.returncode == 0
    assert "==SUPPRESS==" not in result.stdout
    assert "{optimize,resume,worker,export,serve-offline}" in result.stdout
    assert "python -m core worker --queue redis://HOST:PORT/DB" in " ".join(result.stdout.split())
    assert "forkserver" not in result.stdout and "check-models" not in result.stdout
