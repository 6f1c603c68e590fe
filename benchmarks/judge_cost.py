"""The scorer as a measured trade-off: what a judge would cost on a real run, and the pre-run estimate.

    python benchmarks/judge_cost.py                 # the workshop's default run (budget 150, patience 4, seed 0)
    python benchmarks/judge_cost.py --harness 0,1,2 # benchmarks/demo_search.py's split, budget 300, patience 6

For each run it starts the offline demo model in this process, runs the real CLI against it (exact match,
as today), and reads what the endpoint served (task and reflection calls and tokens). Then it replays
every scoring the run made (each metric call and the final evaluation, in the run's own events) through
the simulated judge (core.judges.LLMJudge over HTTP, one cache for the run): the judge calls a judged run
would make, their tokens, and the cache's hit rate. It prints where the simulated judge and exact match
disagree on the baseline's and the best candidate's outputs, and compares core.estimate's pre-run
estimate (built only from what is known before the run) with the actual calls and with the cost they
would have at OpenAI prices (task and judge gpt-4o-mini, reflection gpt-4o). Target: within 30%.
Last, how long importing litellm's cost map takes against reading it in core.pricing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.estimate import RunShape, estimate_run
from core.judges import JudgeConfig, LLMJudge, agreement, agreement_lesson
from core.models import ModelConfig, Usage, UsageMeter, check_model
from core.offline_model.behaviour import MODEL_NAME
from core.offline_model.server import OfflineServer
from core.pricing import known_price
from core.scorers import exact_match
from core.templates import template_variables
from core.tokens import text_tokens

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARGS = ["--budget", "150", "--patience", "4", "--seed", "0"]
PRICES = {"task": known_price("gpt-4o-mini"), "reflection": known_price("gpt-4o"), "judge": known_price("gpt-4o-mini")}
TARGET = 0.30


def run_cli(server: OfflineServer, home: Path, name: str, args: list[str]) -> list[dict[str, Any]]:
    run_dir = home / name
    cmd = [sys.executable, "-m", "core", "optimize", "--provider", "openai", "--base-url", server.base_url]
    cmd += ["--model", MODEL_NAME, "--reflection-model", MODEL_NAME, "--quiet", "--no-register"]
    cmd += ["--run-dir", str(run_dir), *args]
    env = {**os.environ, "GEPA_EXPLORER_HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name}: the CLI failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def scorings(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, str]]:
    """(inputs, output, expected) of every scoring the run made: validations, minibatches, final evaluation."""
    started = events[0]
    examples = {e["id"]: e for e in started["examples"]}
    val_ids = started["val_ids"]
    rows: list[tuple[dict[str, Any], str, str]] = []

    def add(ids: list[int], outputs: list[str]) -> None:
        rows.extend((examples[i]["inputs"], o, examples[i]["expected"]) for i, o in zip(ids, outputs, strict=True))

    for event in events:
        if event["type"] == "validation":
            add(val_ids, event["outputs"])
        elif event["type"] == "iteration" and event.get("minibatch"):
            add(event["minibatch"], event.get("outputs_before") or [])
            if event.get("outputs_after"):
                add(event["minibatch"], event["outputs_after"])
    final = events[-1].get("final_evaluation") or {}
    for side in ("baseline", "best"):
        if final.get(side):
            add(val_ids, final[side]["outputs"])
    return rows


def shape_before_the_run(events: list[dict[str, Any]], server: OfflineServer, args: list[str]) -> RunShape:
    """What is known before a run: sizes, the seed template, the data, one preflight call on a real example."""
    started = events[0]
    examples = {e["id"]: e for e in started["examples"]}
    val_ids, train_ids = started["val_ids"], started["train_ids"]
    template = started["baseline"]["template"]
    variables = template_variables(template)
    values = [" ".join(str(e["inputs"].get(v, "")) for v in variables) for e in examples.values()]
    first = examples[train_ids[0]]["inputs"]
    prompt = template
    for variable in variables:
        prompt = prompt.replace("{{" + variable + "}}", str(first.get(variable, "")))
    models = ModelConfig("openai", model=MODEL_NAME, base_url=server.base_url, api_key="x")
    check_model(models, role="task", prompt=prompt)  # the first call of a process pays for imports and connecting
    check = check_model(models, role="task", prompt=prompt)
    flag = dict(zip(args[::2], args[1::2], strict=False))
    return RunShape(
        budget=int(flag.get("--budget", 150)),
        validation_size=len(val_ids),
        train_size=len(train_ids),
        minibatch_size=int(flag.get("--minibatch", 3)),
        template_tokens=text_tokens(template),
        example_tokens=sum(text_tokens(v) for v in values) / len(values),
        expected_tokens=sum(text_tokens(e["expected"]) for e in examples.values()) / len(examples),
        reply_tokens=check.usage.completion_tokens,
        seconds_per_call=check.usage.seconds_per_response,
        prices=PRICES,
        judge=True,
        concurrency=int(flag.get("--concurrency", 8)),
        train_is_validation=sorted(train_ids) == sorted(val_ids),
    )


def served_usage(server: OfflineServer) -> dict[str, Usage]:
    return {k: Usage(v.responses, v.prompt_tokens, v.completion_tokens) for k, v in server.served.snapshot().items()}


def priced(usage: dict[str, Usage]) -> float:
    return sum(PRICES[r].cost(u.prompt_tokens, u.completion_tokens) for r, u in usage.items())


def measure(name: str, args: list[str]) -> bool:
    with tempfile.TemporaryDirectory() as tmp, OfflineServer() as server:
        events = run_cli(server, Path(tmp), name, args)
        run_served = served_usage(server)  # the run's own calls, before the replay below adds judge calls
        # The reflection model's preflight probe is a task-style prompt to the endpoint: count it as reflection.
        run_served["task"] = run_served["task"] + Usage(-1, -14, -2)
        run_served["reflection"] = run_served["reflection"] + Usage(1, 14, 2)
        models = ModelConfig("openai", model=MODEL_NAME, base_url=server.base_url, api_key="x")
        judge = LLMJudge(JudgeConfig(models), meter=UsageMeter())
        rows = scorings(events)
        verdicts = [judge.judge(inputs, output, expected).score for inputs, output, expected in rows]
        served = served_usage(server)
        actual = {"task": run_served["task"], "reflection": run_served["reflection"], "judge": served["judge"]}
        shape = shape_before_the_run(events, server, args)
    estimate = estimate_run(shape)
    print(f"\n== {name}: {len(rows)} scorings, {judge.cache.misses} judge calls, hit rate {judge.cache.hit_rate:.1%}")
    print(f"estimated hit rate before the run: {estimate.judge_hit_rate:.1%}")
    final = events[-1]["final_evaluation"]
    val_ids = events[0]["val_ids"]
    expected = [{e["id"]: e for e in events[0]["examples"]}[i]["expected"] for i in val_ids]
    offset = len(rows) - 2 * len(val_ids)
    for k, side in enumerate(("baseline", "best")):
        outputs = final[side]["outputs"]
        judged = verdicts[offset + k * len(val_ids) : offset + (k + 1) * len(val_ids)]
        exact = [exact_match(o, x) for o, x in zip(outputs, expected, strict=True)]
        table = agreement(judged, exact)
        print(
            f"{side}: exact match {sum(exact) / len(exact):.1%}, judge {sum(judged) / len(judged):.1%}; "
            f"agree {table.both_right}+{table.both_wrong}, judge only {len(table.judge_only)}, "
            f"exact only {len(table.exact_only)}"
        )
        print("  " + agreement_lesson(table, outputs, expected))
    ok = True
    print(f"{'role':<11}{'actual calls':>13}{'estimate':>10}{'actual $':>11}{'estimate $':>12}")
    for role in ("task", "reflection", "judge"):
        usage, guess = actual[role], estimate.by_role[role]
        cost = priced({role: usage})
        print(f"{role:<11}{usage.responses:>13}{guess.calls:>10.0f}{cost:>11.5f}{guess.cost:>12.5f}")
    calls = sum(u.responses for u in actual.values())
    cost = priced(actual)
    call_error, cost_error = estimate.calls / calls - 1, estimate.cost / cost - 1
    print(f"{'total':<11}{calls:>13}{estimate.calls:>10.0f}{cost:>11.5f}{estimate.cost:>12.5f}")
    print(f"estimate off by {call_error:+.1%} in calls, {cost_error:+.1%} in cost (target: within {TARGET:.0%})")
    print(f"metric calls: actual {events[-1]['metric_calls']}, estimate {estimate.metric_calls:.0f}")
    print(estimate.summary())
    ok = abs(call_error) <= TARGET and abs(cost_error) <= TARGET
    return ok


def cost_map_timing() -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT)}
    code = {
        "import litellm; litellm.model_cost": "import time; t=time.perf_counter(); import litellm; "
        "litellm.model_cost['gpt-4o-mini']; print(time.perf_counter()-t)",
        "core.pricing.known_price": "import time; t=time.perf_counter(); from core.pricing import known_price; "
        "known_price('gpt-4o-mini'); print(time.perf_counter()-t)",
    }
    for label, source in code.items():
        times = [float(subprocess.check_output([sys.executable, "-c", source], env=env, text=True)) for _ in range(3)]
        print(f"{label}: {min(times):.3f} s (best of 3 cold processes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--harness", metavar="SEEDS", help="demo_search.py's split and settings, these seeds")
    args = parser.parse_args()
    started = time.perf_counter()
    ok = True
    if args.harness:
        import importlib.util

        spec = importlib.util.spec_from_file_location("demo_search", ROOT / "benchmarks" / "demo_search.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        with tempfile.TemporaryDirectory() as tmp:
            rest = Path(tmp) / "rest.jsonl"
            demo.write_rest(demo.DATASET, rest)
            for seed in [int(s) for s in args.harness.split(",")]:
                flags = ["--dataset", str(rest), "--prompt-uri", demo.PROMPT_URI, "--validation-fraction", "0.5"]
                flags += ["--split-seed", "0", "--budget", "300", "--patience", "6", "--seed", str(seed)]
                ok &= measure(f"harness seed {seed}", flags)
    else:
        ok = measure("default run", DEFAULT_ARGS)
    print()
    cost_map_timing()
    print(f"\n{time.perf_counter() - started:.0f} s; all within target: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
