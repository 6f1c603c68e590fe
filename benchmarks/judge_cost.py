"""The scorer as a measured trade-off: exact match against the LLM judge on the default run, what each
costs, and the engine's pre-run estimate against what the run spent.

    python benchmarks/judge_cost.py [--seed 0]

Runs the real CLI four times on the default run's settings (the bundled set's 30/30/30 split, budget 300,
patience 6): exact match and the LLM judge, each on the built-in offline model (simulated, $0) and on the
same model served from a loopback OpenAI-compatible endpoint priced as OpenAI's (task and judge at
gpt-4o-mini's price, reflection at gpt-4o's, from litellm's bundled price list, given with
``--task-price`` etc.). For each it prints the calls, tokens, dollars and seconds per role from the run's
summary, the estimate the run recorded before its search (``run_started``), and how far apart they are
(target on the two exact-match runs: within 30% in calls and cost; the estimate ignores patience, so it
is an upper bound for a run that patience stops early, as the judge runs are when the judge already
accepts most of the chatty baseline's answers); for the judge runs, how many judge calls the cache saved
(target on the default run: judge calls at most 60% of the judge-scored pairs) and where the judge and
exact match disagree on the baseline's and the best candidate's outputs. Last, how long reading the price
list takes.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis import build_run_view, judge_agreement
from core.events import read_events
from core.offline_model.behaviour import MODEL_NAME
from core.offline_model.server import OfflineServer
from core.pricing import known_price

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.30
JUDGE_SHARE_TARGET = 0.60
ROLES = ("task", "reflection", "judge")


def openai_price_flags() -> list[str]:
    task, reflection = known_price("gpt-4o-mini"), known_price("gpt-4o")
    flags = []
    for role, price in (("task", task), ("reflection", reflection), ("judge", task)):
        flags += [f"--{role}-price", f"{price.input_per_million},{price.output_per_million}"]
    return flags


def run(home: Path, name: str, args: list[str]) -> tuple[dict, Path]:
    run_dir = home / name
    cmd = [sys.executable, "-m", "core", "optimize", "--quiet", "--no-register", "--run-dir", str(run_dir), *args]
    env = {**os.environ, "GEPA_EXPLORER_HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "not-needed"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name}: the CLI failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), run_dir / "events.jsonl"


def report(name: str, summary: dict, events_path: Path, *, estimate_target: bool, judge_target: bool) -> bool:
    view = build_run_view(read_events(events_path))
    estimate = view.estimate
    tokens = summary["tokens"]
    print(
        f"\n== {name}: validation {summary['initial_score']:.1%} -> {summary['final_score']:.1%}, "
        f"{summary['seconds']:.0f} s, cost {summary['cost_usd']}"
    )
    print(f"{'role':<11}{'calls':>7}{'estimated':>11}{'tokens':>9}{'estimated':>11}")
    for role in ROLES:
        spent, guess = tokens[role], estimate.by_role.get(role)
        guess_calls = guess.calls if guess else 0
        guess_tokens = (guess.prompt_tokens + guess.completion_tokens) if guess else 0
        print(
            f"{role:<11}{spent['calls']:>7}{guess_calls:>11.0f}{spent['prompt'] + spent['completion']:>9}"
            f"{guess_tokens:>11.0f}"
        )
    calls = sum(t["calls"] for t in tokens.values())
    guessed = sum(r.calls for r in estimate.by_role.values())
    errors = [guessed / calls - 1]
    line = f"calls: estimate off by {errors[0]:+.1%}"
    if summary["cost_usd"]:
        errors.append((estimate.cost or 0) / summary["cost_usd"] - 1)
        line += f"; cost: estimated ${estimate.cost:.4f}, spent ${summary['cost_usd']:.4f} ({errors[1]:+.1%})"
    ok = not estimate_target or all(abs(e) <= TARGET for e in errors)
    stopped = f"stopped by {summary['stopped_by']} at {summary['metric_calls']} of the budget's metric calls"
    said = f"target: within {TARGET:.0%}" if estimate_target else f"an upper bound: {stopped}"
    print(f"{line} ({said})")
    print(f"estimate said: {estimate.summary}")
    usage = view.usage
    if view.scorer.kind == "llm_judge" and usage is not None:
        asked = usage.judge_cache_hits + usage.judge_cache_misses
        share = usage.judge_cache_misses / asked
        ok &= share <= JUDGE_SHARE_TARGET
        print(
            f"judge: asked {asked} times, called {usage.judge_cache_misses} ({share:.0%}; target at most "
            f"{JUDGE_SHARE_TARGET:.0%}), {usage.judge_failures} failed"
        )
        for found in judge_agreement(view):
            table = found.agreement
            print(
                f"  {found.candidate}: agree {table.both_right}+{table.both_wrong}, judge only "
                f"{len(table.judge_only)}, exact only {len(table.exact_only)}. {found.lesson}"
            )
    return ok


def price_list_timing() -> None:
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
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    ok = True
    seed = ["--seed", str(args.seed)]
    with tempfile.TemporaryDirectory() as tmp, OfflineServer() as server:
        endpoint = ["--provider", "openai", "--base-url", server.base_url, "--model", MODEL_NAME, *openai_price_flags()]
        # (name, flags, the estimate must land within 30%, the judge cache must save 40%)
        for number, (name, flags, estimated, cached) in enumerate(
            (
                ("the default run: exact match, offline model", seed, True, False),
                (
                    "the default run with the LLM judge, offline model (simulated)",
                    [*seed, "--scorer", "llm_judge"],
                    False,
                    True,
                ),
                ("exact match, loopback endpoint at OpenAI prices", [*seed, *endpoint], True, False),
                (
                    "LLM judge, loopback endpoint at OpenAI prices",
                    [*seed, *endpoint, "--scorer", "llm_judge"],
                    False,
                    False,
                ),
            )
        ):
            summary, events = run(Path(tmp), f"run-{number}", flags)
            ok &= report(name, summary, events, estimate_target=estimated, judge_target=cached)
    print()
    price_list_timing()
    print(f"\n{time.perf_counter() - started:.0f} s; all within target: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
