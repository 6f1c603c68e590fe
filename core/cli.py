"""Command line: ``python -m core optimize`` (headless runs, here or ``--queue``), ``python -m core resume``
(continue a failed or cancelled run, :mod:`core.resume`), ``python -m core worker`` (``--queue``: run queued
runs, :mod:`core.queue`; ``RUN_DIR``: one local cold run), ``python -m core export`` (a recorded run as one
JSON file, :mod:`core.export`), ``python -m core serve-offline``.

Bad input exits with status 2 and one line ``error: ...`` on stderr, never a traceback, and
registers nothing. Progress goes to stderr; the last (only) stdout line of ``optimize`` and
``export`` is one JSON object describing what was done.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from core.config import OptimizationConfig
    from core.events import Event

from core.budget import DEFAULT_BUDGET, DEFAULT_PATIENCE
from core.scorers import ALL_SCORER_KINDS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(f"{message} (see {self.prog} --help)")


def _fail(message: str) -> NoReturn:
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="GEPA Explorer: headless prompt optimization.")
    # The metavar lists the public commands only; the hidden ones get no help line at all (argparse
    # prints "==SUPPRESS==" for a subcommand whose help is SUPPRESS).
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="{optimize,resume,worker,export,serve-offline}"
    )

    opt = commands.add_parser(
        "optimize",
        help="optimize a prompt with GEPA through MLflow",
        description=(
            "Optimize a registered prompt with mlflow.genai.optimize_prompts and GepaPromptOptimizer. "
            "With no options it optimizes the bundled baseline on the bundled short-answer set with the "
            "offline demo model (simulated)."
        ),
    )
    data = opt.add_argument_group("data and prompt")
    data.add_argument("--dataset", metavar="PATH", help="JSONL/JSON/CSV dataset (default: bundled short-answer QA)")
    data.add_argument("--prompt-uri", metavar="URI", help="prompts:/NAME/VERSION or prompts:/NAME@ALIAS")
    data.add_argument("--prompt-name", metavar="NAME", help="register --template under this name and optimize it")
    data.add_argument("--template", metavar="TEXT", help="prompt template with {{variables}}")
    data.add_argument(
        "--test-dataset",
        metavar="PATH",
        help="a separate test file (same fields as the dataset), scored once after the search, never seen by it",
    )
    data.add_argument(
        "--test-fraction",
        type=float,
        metavar="F",
        help="hold out this share of the rows for test, before the validation split (0 = no test set)",
    )
    data.add_argument(
        "--validation-fraction",
        type=float,
        metavar="F",
        help="hold out this share of the remaining rows for validation (0 = validate on the training rows); "
        "without these options the bundled set uses its declared 30 test / 30 validation / 30 train split",
    )
    data.add_argument(
        "--split-seed",
        type=int,
        default=0,
        metavar="S",
        help="shuffles the rows before splitting them (default 0; --seed does not change the split)",
    )
    scoring = opt.add_argument_group("scoring")
    scoring.add_argument(
        "--scorer",
        default="exact_match",
        choices=list(ALL_SCORER_KINDS),
        help="exact_match, f1, contains, or llm_judge (a judge model decides whether the answer is right)",
    )
    scoring.add_argument(
        "--judge-model", metavar="NAME", help="the LLM judge's model (default: the task model; offline: simulated)"
    )
    scoring.add_argument(
        "--normalize",
        default="case,whitespace",
        metavar="STEPS",
        help="comma-separated from case,whitespace,punctuation,articles, or none (default: case,whitespace)",
    )
    search = opt.add_argument_group("search")
    search.add_argument(
        "--budget", type=int, default=DEFAULT_BUDGET, metavar="N", help=f"GEPA metric calls (default {DEFAULT_BUDGET})"
    )
    search.add_argument(
        "--patience",
        type=int,
        default=DEFAULT_PATIENCE,
        metavar="P",
        help=f"iterations without improvement before stopping; 0 = off (default {DEFAULT_PATIENCE})",
    )
    search.add_argument("--minibatch", type=int, default=3, metavar="K", help="reflection minibatch size (default 3)")
    search.add_argument("--selection", default="pareto", choices=["pareto", "current_best"])
    search.add_argument("--seed", type=int, default=0, metavar="S", help="GEPA's own randomness (default 0)")
    search.add_argument(
        "--seeds",
        metavar="LIST",
        help="repeat the run with each of these seeds at once, each in its own process (e.g. 0,1,2 or 0-4); "
        "the last line is then one JSON object with 'runs' and 'aggregate'",
    )
    search.add_argument("--concurrency", type=int, default=8, metavar="N", help="model calls at once (default 8)")
    models = opt.add_argument_group("models")
    models.add_argument(
        "--provider",
        default="offline",
        choices=["offline", "openai"],
        help="offline = built-in simulated demo model; openai reads OPENAI_API_KEY and OPENAI_BASE_URL",
    )
    models.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp)")
    models.add_argument("--model", metavar="NAME", help="task model name")
    models.add_argument("--reflection-model", metavar="NAME", help="reflection model name (GEPA's, same endpoint)")
    models.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per model call (default 60)")
    for role in ("task", "reflection", "judge"):
        models.add_argument(
            f"--{role}-price",
            metavar="IN,OUT",
            help=f"the {role} model's price in dollars per million input and output tokens, e.g. 0.15,0.60 "
            "(default: litellm's bundled price list for OpenAI's models; otherwise unknown)",
        )
    models.add_argument(
        "--max-retries", type=int, default=4, metavar="N", help="retries of a transient model failure (default 4)"
    )
    models.add_argument(
        "--offline-delay-ms", type=float, default=0.0, metavar="MS", help="simulated latency of the offline model"
    )
    models.add_argument(
        "--offline-error-rate", type=float, default=0.0, metavar="R", help="share of offline calls that fail (429/500)"
    )
    tracking = opt.add_argument_group("tracking")
    tracking.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: local SQLite store)")
    tracking.add_argument("--experiment", default="GEPA Explorer", metavar="NAME")
    tracking.add_argument(
        "--participant",
        metavar="NAME",
        help="who of a class runs it: tags the run and registers into NAME.<prompt>, so versions never mix",
    )
    tracking.add_argument("--no-register", action="store_true", help="never register an optimized version")
    scoring.add_argument(
        "--score-candidates-on-test",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the search, score every candidate on the test set too (default: on for the offline model, "
        "off for real models, whose calls cost money)",
    )
    tracking.add_argument(
        "--run-dir", metavar="DIR", help="folder for the live event log (default: under GEPA_EXPLORER_HOME)"
    )
    opt.add_argument("--quiet", action="store_true", help="print only the final JSON line")
    queue = opt.add_argument_group("queue")
    queue.add_argument(
        "--queue",
        metavar="URL",
        help="submit the run to the Redis queue at URL (redis://HOST:PORT/DB) and follow it there; a worker "
        "(python -m core worker --queue URL) runs it. Default: GEPA_EXPLORER_QUEUE_URL when set, else this machine",
    )
    queue.add_argument(
        "--send-key",
        action="store_true",
        help="with --queue: send this environment's API key with the run, encrypted with GEPA_EXPLORER_QUEUE_SECRET "
        "(default: the worker uses the key in its own environment)",
    )

    resume = commands.add_parser(
        "resume",
        help="continue a failed or cancelled run from GEPA's saved state",
        description=(
            "Continue run RUN_ID (failed, cancelled, or its worker died) from the GEPA state it saved, as a new "
            "MLflow run tagged gepa_explorer.resumed_from=RUN_ID, with the same settings and the same total budget."
        ),
    )
    resume.add_argument("run_id", metavar="RUN_ID", help="the MLflow run id of the run to continue")
    resume.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: local SQLite store)")
    resume.add_argument("--queue", metavar="URL", help="run it on the queue at URL instead of this machine")
    resume.add_argument("--quiet", action="store_true", help="print only the final JSON line")

    export = commands.add_parser(
        "export",
        help="write a recorded optimization run as one JSON file (schema in the README)",
        description=(
            "Write run RUN_ID (its settings, summary, examples and splits, candidates with their scores, and "
            "every proposal with what the reflection model was shown) as one versioned JSON document."
        ),
    )
    export.add_argument("run_id", metavar="RUN_ID", help="the MLflow run id of an optimization run")
    export.add_argument("--out", required=True, metavar="FILE", help="the JSON file to write")
    export.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: local SQLite store)")

    serve = commands.add_parser(
        "serve-offline",
        help="serve the offline demo model (simulated) as an OpenAI-compatible endpoint",
        description="Serve the offline demo model on 127.0.0.1 at /v1/chat/completions and /v1/models.",
    )
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--delay-ms", type=float, default=0.0, help="fixed latency per request")
    serve.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 429/500")
    serve.add_argument("--seed", type=int, default=0)

    worker = commands.add_parser(
        "worker",
        help="run queued runs: python -m core worker --queue redis://HOST:PORT/DB [--concurrency N]",
        description=(
            "With --queue: import what a run needs once, then run N RQ workers taking runs from the queue "
            "(each run in a process of its own, forked warm); Ctrl+C or SIGTERM stops them. With RUN_DIR "
            "(used internally): run the one run whose settings are in that folder."
        ),
    )
    worker.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a run folder (internal: local cold runs)")
    worker.add_argument(
        "--queue",
        metavar="URL",
        help="the Redis queue, redis://[:PASSWORD@]HOST:PORT/DB (default: GEPA_EXPLORER_QUEUE_URL, which keeps a "
        "password out of the process list)",
    )
    worker.add_argument("--concurrency", type=int, default=1, metavar="N", help="runs at once (default 1)")
    worker.add_argument("--name", metavar="NAME", help="prefix of the workers' names (default: the host name)")
    # Warm workers: a process that imports what a run needs, then forks one worker per run (core.forkserver).
    forkserver = commands.add_parser("forkserver")
    forkserver.add_argument("fd", type=int)
    # The app's status line, computed in a child process (see core.health).
    commands.add_parser("check-models")
    commands.add_parser("check-store")
    commands.add_parser("check-reply")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "optimize":
        return _optimize(args)
    if args.command == "export":
        return _export(args)
    if args.command == "serve-offline":
        return _serve(args)
    if args.command == "check-models":
        return _check_models()
    if args.command == "check-reply":
        return _check_reply()
    if args.command == "check-store":
        from core.store import check_store

        print(json.dumps(check_store(json.loads(sys.stdin.read())["tracking_uri"])), flush=True)
        return EXIT_OK
    if args.command == "forkserver":
        from core.forkserver import serve

        return serve(args.fd)
    if args.command == "resume":
        return _resume(args)
    return _worker(args)


def _worker(args: argparse.Namespace) -> int:
    from core.errors import InputError

    if args.run_dir is not None and args.queue is not None:
        _fail("worker needs exactly one of RUN_DIR or --queue redis://HOST:PORT/DB, not both")
    if args.run_dir is not None:
        from core.runs import worker_main

        return worker_main(Path(args.run_dir))
    # The URL may come from the environment, which keeps a password out of `ps`.
    url = args.queue or os.environ.get("GEPA_EXPLORER_QUEUE_URL", "").strip()
    if not url:
        _fail("worker needs exactly one of RUN_DIR or --queue redis://HOST:PORT/DB (or GEPA_EXPLORER_QUEUE_URL)")
    if not 1 <= args.concurrency <= 64:
        _fail(f"--concurrency {args.concurrency}: give 1 to 64 runs at once")
    from core.queue import serve_workers

    try:
        return serve_workers(url, args.concurrency, name=args.name)
    except InputError as error:
        _fail(str(error))


def _config_from_args(args: argparse.Namespace) -> OptimizationConfig:
    from core.config import OptimizationConfig
    from core.models import ModelConfig
    from core.scorers import ScorerSpec

    if args.template is not None and not args.prompt_name:
        _fail("--template needs --prompt-name (the registry name to register it under)")
    if args.prompt_name and args.template is None and not args.prompt_uri:
        _fail("--prompt-name needs --template (or use --prompt-uri prompts:/NAME@ALIAS)")
    models = ModelConfig.from_env(
        args.provider,
        model=args.model,
        reflection_model=args.reflection_model,
        timeout_seconds=args.timeout,
        max_retries=args.max_retries,
        simulated_delay_ms=args.offline_delay_ms,
        simulated_error_rate=args.offline_error_rate,
        **({"base_url": args.base_url} if args.base_url else {}),
    )
    return OptimizationConfig(
        dataset_path=args.dataset,
        prompt_uri=args.prompt_uri,
        prompt_name=args.prompt_name,
        template=args.template,
        scorer=ScorerSpec.parse(args.scorer, args.normalize, judge_model=args.judge_model),
        task_price=_price(args.task_price, "--task-price"),
        reflection_price=_price(args.reflection_price, "--reflection-price"),
        judge_price=_price(args.judge_price, "--judge-price"),
        budget=args.budget,
        patience=args.patience,
        minibatch_size=args.minibatch,
        selection=args.selection,
        seed=args.seed,
        test_dataset_path=args.test_dataset,
        test_fraction=args.test_fraction,
        validation_fraction=args.validation_fraction,
        split_seed=args.split_seed,
        score_candidates_on_test=args.score_candidates_on_test,
        models=models,
        concurrency=args.concurrency,
        register=not args.no_register,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        participant=_participant(args.participant),
    )


def _participant(text: str | None) -> str | None:
    from core.participants import participant_name

    return participant_name(text) if text is not None else None


def _price(text: str | None, flag: str) -> tuple[float, float] | None:
    from core.pricing import Price

    if text is None:
        return None
    try:
        price = Price.parse(text)
    except ValueError as error:
        _fail(f"{flag} {text}: {error}")
    return price.input_per_million, price.output_per_million


def _optimize(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.rundir import RunDir
    from core.runs import internal_error_line, new_run_dir

    try:
        config = _config_from_args(args)
    except InputError as error:
        _fail(str(error))
    queue_url = args.queue or os.environ.get("GEPA_EXPLORER_QUEUE_URL", "").strip() or None
    if queue_url and args.seeds is None:
        return _optimize_queued(args, config, queue_url)
    if args.seeds is not None:
        return _optimize_seeds(args, config)
    run_dir = _fresh_run_dir(args.run_dir) if args.run_dir else new_run_dir()
    from core.optimization import run_optimization

    def on_sigint(_signum: int, _frame: Any) -> None:
        sys.stderr.write("\nStopping at the next iteration boundary (Ctrl-C again to abort)...\n")
        RunDir(run_dir).request_cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_sigint)
    reporter = None if args.quiet else _ProgressPrinter()
    try:
        summary = run_optimization(config, run_dir, on_event=reporter)
    except InputError as error:
        _fail(str(error))
    except Exception as error:  # noqa: BLE001 - a bug, not the user's input: one line, traceback kept
        log = RunDir(run_dir).log_path
        with log.open("a", encoding="utf-8") as handle:
            traceback.print_exc(file=handle)
        sys.stderr.write("error: " + internal_error_line(error, log) + "\n")
        return EXIT_FAILED
    print(json.dumps(summary.cli_dict()), flush=True)
    return EXIT_FAILED if summary.status == "failed" else EXIT_OK


def _optimize_queued(
    args: argparse.Namespace, config: OptimizationConfig, url: str, *, resume: str | None = None
) -> int:
    """``--queue``: submit the run, follow its events from Redis with the usual progress lines, and
    end with the usual JSON line plus ``worker`` (the RQ worker that ran it)."""
    from core.errors import InputError
    from core.events import RunFinished
    from core.queue import QueueExecutor

    api_key = config.models.api_key if getattr(args, "send_key", False) else None
    try:
        handle = QueueExecutor(url).submit(config, api_key=api_key, resume=resume)
    except InputError as error:
        _fail(str(error))

    def on_sigint(_signum: int, _frame: Any) -> None:
        sys.stderr.write("\nStopping at the next iteration boundary (Ctrl-C again to stop following)...\n")
        handle.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_sigint)
    reporter = None if args.quiet else _ProgressPrinter()
    if reporter is not None:
        sys.stderr.write(f"Queued as {handle.ref}; waiting for a worker...\n")
    outcome = handle.follow(reporter)
    if outcome.status == "rejected":
        _fail(outcome.error or "the run was refused")
    events = handle.read_events()
    summary = dict(outcome.summary) or _summary_of(events, outcome)
    summary["worker"] = outcome.summary.get("worker") or handle.worker
    said_by_printer = reporter is not None and any(isinstance(e, RunFinished) for e in events)
    if not outcome.summary and outcome.error and not said_by_printer:
        sys.stderr.write("error: " + " ".join(outcome.error.split()) + "\n")
    print(json.dumps(summary), flush=True)
    return EXIT_FAILED if summary.get("status") == "failed" else EXIT_OK


def _summary_of(events: list[Any], outcome: Any) -> dict[str, Any]:
    """The JSON line of a run that ended without its own summary (its worker died, say)."""
    from core.analysis import build_run_view
    from core.events import RunFinished
    from core.summary import RunSummary

    if events and any(isinstance(e, RunFinished) for e in events):
        summary = RunSummary.of(build_run_view(events)).cli_dict()
        summary["error"] = outcome.error or summary.get("error")
        return summary
    return {"run_id": None, "status": outcome.status, "error": outcome.error}


def _resume(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.resume import resume_config, resume_locally

    queue_url = args.queue or os.environ.get("GEPA_EXPLORER_QUEUE_URL", "").strip() or None
    try:
        config = resume_config(args.run_id, tracking_uri=args.tracking_uri)
    except InputError as error:
        _fail(str(error))
    if queue_url:
        return _optimize_queued(args, config, queue_url, resume=args.run_id)
    reporter = None if args.quiet else _ProgressPrinter()
    try:
        summary = resume_locally(args.run_id, config, on_event=reporter)
    except InputError as error:
        _fail(str(error))
    print(json.dumps(summary.cli_dict()), flush=True)
    return EXIT_FAILED if summary.status == "failed" else EXIT_OK


def _optimize_seeds(args: argparse.Namespace, config: OptimizationConfig) -> int:
    """``--seeds``: check the inputs once here (bad input exits 2, nothing started), then run every seed
    at once in its own worker process, print each one's progress prefixed by its seed, and end with
    one JSON line: ``runs`` (each a normal summary) and ``aggregate`` (mean and spread of the scores)."""
    from core import groups
    from core.errors import InputError
    from core.optimization import prepare_run

    try:
        seeds = groups.parse_seeds(args.seeds)
        prepare_run(config)
    except InputError as error:
        _fail(str(error))
    handles = groups.start_group(config, seeds)
    if args.run_dir:
        sys.stderr.write("note: with --seeds each run has its own folder under GEPA_EXPLORER_HOME/runs\n")

    def on_sigint(_signum: int, _frame: Any) -> None:
        sys.stderr.write("\nStopping every run at its next iteration boundary...\n")
        for handle in handles:
            handle.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_sigint)
    printers = [None if args.quiet else _ProgressPrinter(prefix=f"seed {seed}: ") for seed in seeds]
    summaries = _follow_all(handles, printers, seeds)
    print(json.dumps({"runs": summaries, "aggregate": groups.aggregate(summaries)}), flush=True)
    return EXIT_FAILED if any(s.get("status") == "failed" for s in summaries) else EXIT_OK


def _follow_all(handles: list[Any], printers: list[_ProgressPrinter | None], seeds: list[int]) -> list[dict[str, Any]]:
    """Tail every run's events as they come until all their workers end; each one's summary (or why
    there is none), in seed order."""
    done: dict[int, Any] = {}
    while len(done) < len(handles):
        for index, (handle, printer) in enumerate(zip(handles, printers, strict=True)):
            if index in done:
                continue
            ended = handle.outcome() is not None or not handle.is_alive()
            for event in handle.new_events():
                if printer is not None:
                    printer(event)
            if ended:
                done[index] = handle.outcome()
        time.sleep(0.2)
    summaries = []
    for index, seed in enumerate(seeds):
        outcome = done[index]
        if outcome is None:
            summaries.append(
                {"seed": seed, "status": "failed", "error": "The optimization process ended unexpectedly."}
            )
        elif not outcome.summary:
            summaries.append({"seed": seed, "status": outcome.status, "error": outcome.error})
        else:
            summaries.append({"seed": seed, **outcome.summary})
    return summaries


def _export(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.export import export_run
    from core.optimization import store_errors
    from core.runs import open_run
    from core.store import configure_mlflow

    out = Path(args.out)
    try:
        store = configure_mlflow(args.tracking_uri)
        with store_errors(store.tracking_uri):
            opened = open_run(args.run_id, tracking_uri=store.tracking_uri)
        if opened.view is None:
            _fail(f"run {args.run_id} has nothing to export: {opened.message or 'it recorded nothing'}")
        document = export_run(opened.view, run_id=opened.run_id)
    except InputError as error:
        _fail(str(error))
    try:
        out.write_text(json.dumps(document.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    except OSError as error:
        _fail(f"--out {out} cannot be written: {error.strerror or error}")
    line = {"run_id": document.run_id, "out": str(out), "schema_version": document.schema_version}
    line |= {"candidates": len(document.candidates), "proposals": len(document.proposals)}
    print(json.dumps(line), flush=True)
    return EXIT_OK


def _fresh_run_dir(path: str) -> Path:
    """``--run-dir``: a new or empty folder (a run's event log is append-only; two runs must not share one)."""
    run_dir = Path(path)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if any(run_dir.iterdir()):
            _fail(f"--run-dir {run_dir} is not empty (it may hold another run's events): give a new folder")
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        _fail(f"--run-dir {run_dir} cannot be used: {error.strerror or error}")
    return run_dir


class _ProgressPrinter:
    """Human-readable progress on stderr, one line per notable event."""

    def __init__(self, prefix: str = "") -> None:
        self.events: list[Event] = []
        self.started = time.monotonic()
        self.prefix = prefix

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        line = self.describe(event)
        if line:
            sys.stderr.write(f"[{time.monotonic() - self.started:6.1f}s] {self.prefix}{line}\n")
            sys.stderr.flush()

    def describe(self, event: Event) -> str | None:
        from core.events import Candidate, Proposal, RunFinished, RunStarted

        if isinstance(event, RunStarted):
            models = event.models
            return (
                f"Optimizing {event.baseline.uri} on {event.dataset.name} "
                f"({len(event.val_ids)} validation rows) · budget {event.budget.budget} · "
                f"{models.task_model} ({'simulated' if models.simulated else models.provider})\n"
                f"{'warning: ' if event.budget.level == 'warn' else ''}{event.budget.message}"
            )
        if isinstance(event, Candidate):
            budget = self.events[0].budget.budget if isinstance(self.events[0], RunStarted) else "?"
            return (
                f"candidate {event.index} scored {event.aggregate:.1%} on validation "
                f"({event.metric_calls}/{budget} metric calls)"
            )
        if isinstance(event, Proposal):
            return f"iteration {event.iteration}: {event.outcome.replace('_', ' ')} - {event.reason}"
        if isinstance(event, RunFinished):
            return self.describe_end()
        return None

    def describe_end(self) -> str:
        from core.analysis import build_run_view
        from core.registration import describe_registered
        from core.summary import failure_warning

        view = build_run_view(self.events)
        if view.outcome == "failed":
            return f"Run failed: {view.error}"
        initial, final = view.initial_score, view.final_score
        scores = f"{initial:.1%} -> {final:.1%}" if initial is not None and final is not None else "no score"
        if view.registered:
            said = describe_registered(view.registered, this_run=view.run_id)
            where = said[0].lower() + said[1:]
        else:
            where = f"not registered: {view.not_registered_reason}"
        warning = failure_warning(view)
        failures = f"\nwarning: {warning}" if warning else ""
        return (
            f"Stopped by {view.stopped_by} after {view.iterations} iterations and {view.metric_calls} metric "
            f"calls (budget {view.budget}; GEPA finishes the iteration it started): {scores}; {where}{failures}"
        )


def _check_reply() -> int:
    """Body of ``python -m core check-reply``: {"models": ModelConfig without key, "prompt": text} on
    stdin, the key in the environment; prints :func:`core.health.reply_probe` as one JSON line."""
    import dataclasses

    from core.health import reply_probe
    from core.models import ModelConfig
    from core.runs import API_KEY_ENV

    request = json.loads(sys.stdin.read())
    models = ModelConfig(**request["models"], api_key=os.environ.pop(API_KEY_ENV, None))
    print(json.dumps(dataclasses.asdict(reply_probe(models, request["prompt"]))), flush=True)
    return EXIT_OK


def _check_models() -> int:
    """Body of ``python -m core check-models``: a ModelConfig (no key) as JSON on stdin, the key in
    the environment; prints :func:`core.health.model_status` as one JSON line."""
    from core.health import model_status
    from core.models import ModelConfig
    from core.runs import API_KEY_ENV

    models = ModelConfig(**json.loads(sys.stdin.read()), api_key=os.environ.pop(API_KEY_ENV, None))
    print(json.dumps(model_status(models)), flush=True)
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from core.offline_model.server import OfflineConfig, serve_forever

    try:
        config = OfflineConfig(delay_ms=args.delay_ms, error_rate=args.error_rate, seed=args.seed)
    except ValueError as error:
        _fail(str(error))
    if not 1 <= args.port <= 65535:
        _fail(f"--port {args.port} is not a port number: give one from 1 to 65535")
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError:
            _fail(f"port {args.port} on 127.0.0.1 is already in use: choose another with --port")
    sys.stderr.write(
        f"Offline demo model (simulated, not a language model) at http://127.0.0.1:{args.port}/v1 "
        f"- model name 'gepa-offline-demo'\n"
    )
    try:
        serve_forever(args.port, config)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    os._exit(main())
