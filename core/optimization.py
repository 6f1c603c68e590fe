"""One optimization: a frozen config in, ``mlflow.genai.optimize_prompts`` with ``GepaPromptOptimizer``
in the middle, an event log and an MLflow run out.

How it differs from calling ``optimize_prompts`` plainly, and why (see ``shared/DESIGN.md``):

* The prompt is loaded once and ``.format()`` is called per example; MLflow's class-level patch of
  ``PromptVersion.template`` still applies. Loading per call links the prompt to the run each time.
* Tracing and MLflow's per-candidate logging are off during the search (``enable_tracking=False``,
  inside a run we own): they cost more than the search itself. Our own event log records every
  candidate, proposal and score instead, and at the end baseline and best are evaluated once more
  with tracing on, so the before/after comparison is auditable in MLflow's UI.
* Registration is ours: the optimizer hands MLflow no prompt to register, and we register the best
  candidate only when it beats the baseline, differs from it and keeps every template variable.
* Model failures are counted, not silently scored: failed predictions are marked in the events, a
  refused key or unknown model stops the run with one line, and failed reflections are counted.
* Patience, cancellation, perfect score and errors are GEPA stop callbacks, checked at each
  iteration boundary, so stopping never loses a recorded candidate.

Run each optimization in its own process (:mod:`core.runs`): MLflow patches classes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.budget import BudgetPlan, plan_budget
from core.datasets import Dataset, default_dataset, load_dataset, split_dataset
from core.evaluation import final_evaluation
from core.events import EVENTS_FILE, EventLog
from core.models import ModelAccessError, ModelConfig, ReflectionModel, TaskModel, check_model, resolve_endpoint
from core.recorder import FatalFlag, GuardedReflection, Recorder, example_key
from core.scorers import ScorerSpec
from core.templates import check_template, lost_variables

Selection = Literal["pareto", "current_best"]
SELECTIONS: tuple[Selection, ...] = ("pareto", "current_best")
StoppedBy = Literal["budget", "patience", "perfect", "cancelled", "error"]
CANCEL_FILE = "cancel.json"
TAG_PREFIX = "gepa_explorer."
RUN_KIND_TAG = TAG_PREFIX + "kind"
RUN_KIND = "optimization"
# Failure-rate guard: stop when at least this many task calls failed and they are this share of all.
MIN_FAILURES_TO_STOP = 10
FAILURE_SHARE_TO_STOP = 0.5

_log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting or input that makes the run impossible; nothing has been called or registered."""


@dataclass(frozen=True)
class OptimizationConfig:
    """Everything one optimization needs, validated on creation (no key: see :class:`ModelConfig`).

    Args:
        dataset_path: a ``.jsonl``/``.json``/``.csv`` file; default: the bundled short-answer set.
        prompt_uri: ``prompts:/name/version`` or ``prompts:/name@alias`` of the prompt to optimize.
        prompt_name, template: instead of ``prompt_uri``, register ``template`` as ``prompt_name``
            (reusing an identical existing version) and optimize that.
        budget: GEPA metric calls (one call = one candidate scored on one example).
        patience: stop after this many iterations without a better validation score; 0 = never.
        validation_fraction: hold out this share of rows for validation; ``None`` validates on every
            row (MLflow's default, where train and validation are the same rows).
        split_seed: shuffles the rows before they are split, apart from ``seed`` (GEPA's own
            randomness), so runs repeated over seeds are scored on the same held-out rows.
        concurrency: model calls in flight at once while scoring a batch.
    """

    dataset_path: str | None = None
    prompt_uri: str | None = None
    prompt_name: str | None = None
    template: str | None = None
    scorer: ScorerSpec = field(default_factory=ScorerSpec)
    budget: int = 150
    patience: int = 4
    minibatch_size: int = 3
    selection: Selection = "pareto"
    seed: int = 0
    validation_fraction: float | None = None
    split_seed: int = 0
    models: ModelConfig = field(default_factory=ModelConfig)
    concurrency: int = 8
    register: bool = True
    stop_on_perfect: bool = True
    tracking_uri: str | None = None
    experiment: str = "GEPA Explorer"
    run_name: str | None = None

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ConfigError("The budget must be at least 1 metric call (try 150).")
        if self.patience < 0:
            raise ConfigError("Patience must be 0 (never stop early) or more iterations.")
        if not 1 <= self.minibatch_size <= 100:
            raise ConfigError("The minibatch size must be between 1 and 100 (GEPA's default is 3).")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"Unknown selection '{self.selection}': choose pareto or current_best.")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError("Concurrency must be between 1 and 64 calls at once.")
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise ConfigError("The validation fraction must be between 0 and 1, or left empty.")
        if self.prompt_uri and self.template:
            raise ConfigError("Give either a prompt URI or a template with a prompt name, not both.")
        if self.template is not None and not self.prompt_name:
            raise ConfigError("A template needs a prompt name to be registered under (--prompt-name).")
        if self.template is not None:
            check = check_template(self.template)
            if not check.ok:
                raise ConfigError(check.problems[0])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form with no secret (the API key stays in :class:`ModelConfig` only)."""
        data = dataclasses.asdict(self)
        data["scorer"] = {"kind": self.scorer.kind, "normalization": list(self.scorer.normalization)}
        models = data["models"]
        models.pop("api_key", None)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, api_key: str | None = None) -> OptimizationConfig:
        values = dict(data)
        scorer = values.pop("scorer", None) or {}
        models = dict(values.pop("models", None) or {})
        models["api_key"] = api_key
        return cls(
            scorer=ScorerSpec(scorer.get("kind", "exact_match"), tuple(scorer.get("normalization", ()))),
            models=ModelConfig(**models),
            **values,
        )


@dataclass(frozen=True)
class RunSummary:
    """What a finished (or stopped) optimization reports; :meth:`cli_dict` is the CLI's JSON line."""

    run_id: str | None
    baseline_uri: str | None
    optimized_uri: str | None
    initial_score: float | None
    final_score: float | None
    metric_calls: int
    iterations: int
    candidates: int
    max_pareto_front_size: int
    stopped_by: StoppedBy
    failed_predictions: int
    failed_reflections: int
    status: Literal["finished", "cancelled", "failed"] = "finished"
    not_registered_reason: str | None = None
    error: str | None = None
    experiment_id: str | None = None
    run_dir: str | None = None

    def cli_dict(self) -> dict[str, Any]:
        keys = [
            "run_id",
            "baseline_uri",
            "optimized_uri",
            "initial_score",
            "final_score",
            "metric_calls",
            "iterations",
            "candidates",
            "max_pareto_front_size",
            "stopped_by",
            "failed_predictions",
            "failed_reflections",
        ]
        data = {k: getattr(self, k) for k in keys}
        data["status"] = self.status
        if self.not_registered_reason:
            data["not_registered_reason"] = self.not_registered_reason
        if self.error:
            data["error"] = self.error
        return data


def registration_decision(
    *,
    baseline_template: str,
    best_template: str,
    baseline_score: float,
    best_score: float,
    register: bool,
    cancelled: bool,
    register_best_on_cancel: bool,
) -> str | None:
    """``None`` when the best candidate should be registered, else the reason it is not."""
    if not register:
        return "registration was turned off (--no-register)"
    if cancelled and not register_best_on_cancel:
        return "the run was stopped; register the best candidate from the Results page if you want it"
    if best_template.strip() == baseline_template.strip():
        return "no candidate differs from the baseline"
    if lost := lost_variables(baseline_template, best_template):
        return "the best candidate dropped " + ", ".join("{{" + v + "}}" for v in lost)
    if best_score <= baseline_score:
        return f"no candidate beat the baseline's score ({baseline_score:.1%})"
    return None


class StopFlags:
    """Why the run should stop at the next iteration boundary: user cancel or a fatal model error."""

    def __init__(self, run_dir: Path):
        self._cancel_file = run_dir / CANCEL_FILE
        self.fatal = FatalFlag()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_file.exists()

    @property
    def register_best_on_cancel(self) -> bool:
        try:
            return bool(json.loads(self._cancel_file.read_text()).get("register_best"))
        except (OSError, ValueError):
            return False


def request_cancel(run_dir: Path, *, register_best: bool = False) -> None:
    """Ask the run living in ``run_dir`` to stop at its next iteration boundary."""
    (run_dir / CANCEL_FILE).write_text(json.dumps({"register_best": register_best}))


class _NamedStopper:
    """A GEPA stop callback that remembers it fired, so the summary can say why the run stopped."""

    def __init__(self, name: StoppedBy, check: Callable[[Any], bool], fired: list[StoppedBy]):
        self.name = name
        self._check = check
        self._fired = fired

    def __call__(self, state: Any) -> bool:
        if self._check(state):
            if not self._fired:
                self._fired.append(self.name)
            return True
        return False


class _GepaLogFile:
    """GEPA's own log lines, kept in the run folder (and logged as an artifact) instead of stdout."""

    def __init__(self, path: Path):
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def log(self, message: str) -> None:
        with self._lock:
            self._handle.write(message.rstrip() + "\n")
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()


@dataclass
class _Context:
    config: OptimizationConfig
    run_dir: Path
    log: EventLog
    dataset: Dataset
    train: Dataset
    val: Dataset
    train_ids: list[int]
    val_ids: list[int]
    flags: StopFlags
    started: float


def _quiet_libraries() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # MLflow calls predict_fn once up front only to see whether it is traced; we know it is not.
    os.environ["MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION"] = "true"
    for name in ("mlflow", "gepa", "LiteLLM", "litellm", "httpx", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Its "SQLAlchemy database error" log carries a traceback and SQL; the store error itself reaches
    # the user as one line (core.store.describe_store_error).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def prepare_data(config: OptimizationConfig) -> tuple[Dataset, Dataset, Dataset, list[int], list[int]]:
    """Load and split the dataset: (dataset, train, validation, train ids, validation ids)."""
    path = config.dataset_path or str(default_dataset().path)
    dataset = load_dataset(path)
    if config.validation_fraction is None:
        ids = list(range(len(dataset)))
        return dataset, dataset, dataset, ids, ids
    train, val = split_dataset(dataset, config.validation_fraction, config.split_seed)
    index = {id(example): i for i, example in enumerate(dataset.examples)}
    return dataset, train, val, [index[id(e)] for e in train.examples], [index[id(e)] for e in val.examples]


def check_against_dataset(template: str, dataset: Dataset) -> None:
    """Raise ``ConfigError`` (whole-template problems) or ``DatasetError`` (rows lacking a variable)."""
    present_somewhere = dict.fromkeys(f for example in dataset.examples for f in example.inputs)
    check = check_template(template, present_somewhere)
    if not check.ok:
        raise ConfigError(check.problems[0])
    dataset.check_template(template)


def resolve_baseline(config: OptimizationConfig):  # -> PromptVersionInfo
    """The prompt version to optimize: by URI, by registering the given template, or the bundled one.

    Bundled baselines are registered the first time a store is used (all of them at once).
    """
    from core import prompts
    from core.datasets import bundled_datasets

    if config.prompt_uri:
        name, _, _ = prompts.parse_prompt_uri(config.prompt_uri)
        if name in {b.prompt_name for b in bundled_datasets()}:
            prompts.ensure_bundled_prompts()  # a bundled URI (e.g. @baseline) works on a fresh store too
        return prompts.load(config.prompt_uri)
    if config.template is not None and config.prompt_name:
        name = prompts.validate_prompt_name(config.prompt_name)
        existing = prompts.find_version_with_template(name, config.template)
        return existing or prompts.register_version(
            name, config.template, commit_message="Registered by GEPA Explorer as an optimization baseline"
        )
    path = os.path.abspath(config.dataset_path or default_dataset().path)
    index = next((i for i, b in enumerate(bundled_datasets()) if os.path.abspath(b.path) == path), None)
    if index is None:
        raise ConfigError(
            "Choose the prompt to optimize with --prompt-uri, or give --prompt-name and --template: "
            "the bundled baselines only fit the bundled datasets."
        )
    return prompts.ensure_bundled_prompts()[index]


def run_optimization(
    config: OptimizationConfig,
    run_dir: Path,
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Run one optimization in this process, recording to ``run_dir/events.jsonl`` and MLflow.

    Raises ``ConfigError``, ``DatasetError``, ``PromptError``, ``TemplateError``, ``ModelAccessError``
    or ``StoreError`` before any MLflow run exists when the inputs or models are unusable. Once the
    run exists, failures end it as FAILED and are reported in the summary instead.
    """
    _quiet_libraries()
    from core.store import configure_mlflow, ensure_experiment

    started = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    dataset, train, val, train_ids, val_ids = prepare_data(config)
    plan = plan_budget(config.budget, len(val), config.minibatch_size)
    if plan.level == "refuse":
        raise ConfigError(plan.message)
    if config.template is not None:
        # Checked before resolve_baseline registers it: bad input must register nothing.
        check_against_dataset(config.template, dataset)
    checks = [check_model(config.models, role="task"), check_model(config.models, role="reflection")]
    for check in checks:
        if not check.ok:
            raise ModelAccessError(check.message)
    store = configure_mlflow(config.tracking_uri)
    experiment_id = ensure_experiment(config.experiment)
    with store_errors(store.tracking_uri):
        baseline = resolve_baseline(config)
    check_against_dataset(baseline.template, dataset)

    log = EventLog(run_dir / EVENTS_FILE, listener=on_event)
    flags = StopFlags(run_dir)
    ctx = _Context(config, run_dir, log, dataset, train, val, train_ids, val_ids, flags, started)
    try:
        with store_errors(store.tracking_uri):
            run_id = _open_mlflow_run(ctx, baseline, experiment_id)
        return _run_tracked(ctx, baseline, plan, checks, store.tracking_uri, experiment_id, run_id)
    finally:
        log.close()


@contextlib.contextmanager
def store_errors(tracking_uri: str) -> Iterator[None]:
    """Turn a failure of the store into :class:`StoreError` with one line saying what to do (prompt
    lookups that find nothing raise ``PromptError`` themselves and pass through)."""
    from mlflow.exceptions import MlflowException

    from core.store import StoreError, describe_store_error

    try:
        yield
    except (MlflowException, OSError) as error:
        raise StoreError(describe_store_error(error, tracking_uri)) from None
    except Exception as error:
        if type(error).__module__.startswith("sqlalchemy"):
            raise StoreError(describe_store_error(error, tracking_uri)) from None
        raise


def _open_mlflow_run(ctx: _Context, baseline: Any, experiment_id: str) -> str:
    """Create the MLflow run with its tags and params, make it this process's active run; its id."""
    import mlflow

    from core.store import retry_store

    config = ctx.config
    run_name = config.run_name or f"{baseline.name} v{baseline.version} · budget {config.budget}"
    # create_run + start_run(run_id): mlflow.start_run alone resolves context tags (git, notebook...)
    # at a cost of about 0.7 s; we set the few that matter ourselves.
    run_id = retry_store(
        lambda: (
            mlflow.MlflowClient()
            .create_run(
                experiment_id,
                run_name=run_name,
                tags={
                    "mlflow.user": getpass.getuser(),
                    "mlflow.source.name": "GEPA Explorer",
                    "mlflow.source.type": "LOCAL",
                },
            )
            .info.run_id
        )
    )
    try:
        retry_store(lambda: mlflow.start_run(run_id=run_id))
        _tag_new_run(ctx, baseline)
    except Exception:
        with contextlib.suppress(Exception):  # not left RUNNING for ever; the error itself is what counts
            mlflow.MlflowClient().set_terminated(run_id, status="FAILED")
        raise
    (ctx.run_dir / "run_id").write_text(run_id)
    return run_id


def _tag_new_run(ctx: _Context, baseline: Any) -> None:
    import mlflow

    from core.store import retry_store

    config = ctx.config
    tags = {
        RUN_KIND_TAG: RUN_KIND,
        TAG_PREFIX + "status": "running",
        TAG_PREFIX + "live_dir": str(ctx.run_dir),
        TAG_PREFIX + "host": socket.gethostname(),
        TAG_PREFIX + "pid": str(os.getpid()),
        TAG_PREFIX + "baseline_uri": baseline.uri,
        TAG_PREFIX + "prompt_name": baseline.name,
        TAG_PREFIX + "dataset": ctx.dataset.name,
        TAG_PREFIX + "scorer": config.scorer.label,
        TAG_PREFIX + "model": config.models.label,
    }
    retry_store(lambda: mlflow.set_tags(tags))
    retry_store(lambda: mlflow.log_params(_flat_params(config, ctx, baseline)))


def _run_tracked(
    ctx: _Context, baseline: Any, plan: BudgetPlan, checks: list, tracking_uri: str, experiment_id: str, run_id: str
):
    config = ctx.config
    ctx.log.emit(
        "run_started",
        config=config.to_dict(),
        models=config.models.public_dict(),
        scorer={"kind": config.scorer.kind, "normalization": list(config.scorer.normalization)},
        dataset={"name": ctx.dataset.name, "source": ctx.dataset.source, "fields": list(ctx.dataset.fields)},
        examples=[
            {"id": i, "row": e.row, "inputs": e.inputs, "expected": e.expected}
            for i, e in enumerate(ctx.dataset.examples)
        ],
        train_ids=ctx.train_ids,
        val_ids=ctx.val_ids,
        baseline={
            "uri": baseline.uri,
            "name": baseline.name,
            "version": baseline.version,
            "template": baseline.template,
        },
        budget={
            "budget": plan.budget,
            "min_proposals": plan.min_proposals,
            "max_proposals": plan.max_proposals,
            "level": plan.level,
            "message": plan.message,
        },
        preflight=[{"role": c.role, "model": c.model, "ok": c.ok, "seconds": round(c.seconds, 3)} for c in checks],
        mlflow={"run_id": run_id, "experiment_id": experiment_id, "tracking_uri": tracking_uri},
    )
    summary: RunSummary | None = None
    try:
        summary = _search_and_finish(ctx, baseline, run_id, experiment_id)
        return summary
    except BaseException as error:
        message = " ".join(str(error).split()) or type(error).__name__
        summary = _finish_failed(ctx, baseline, run_id, experiment_id, f"{type(error).__name__}: {message}")
        if isinstance(error, Exception):
            return summary
        raise
    finally:
        _upload_and_end(ctx, summary, tracking_uri)


def _flat_params(config: OptimizationConfig, ctx: _Context, baseline: Any) -> dict[str, str]:
    models = config.models.public_dict()
    return {
        "baseline_uri": baseline.uri,
        "dataset": ctx.dataset.source,
        "dataset_rows": str(len(ctx.dataset)),
        "train_rows": str(len(ctx.train)),
        "validation_rows": str(len(ctx.val)),
        "scorer": config.scorer.kind,
        "normalization": ",".join(config.scorer.normalization) or "none",
        "budget": str(config.budget),
        "patience": str(config.patience),
        "minibatch_size": str(config.minibatch_size),
        "selection": config.selection,
        "seed": str(config.seed),
        "split_seed": str(config.split_seed),
        "concurrency": str(config.concurrency),
        "provider": models["provider"],
        "task_model": models["task_model"],
        "reflection_model": models["reflection_model"],
        "base_url": str(models["base_url"] or "default"),
        "optimizer": "GepaPromptOptimizer",
    }


def _search_and_finish(ctx: _Context, baseline: Any, run_id: str, experiment_id: str) -> RunSummary:
    import mlflow
    from gepa.utils import NoImprovementStopper

    config = ctx.config
    endpoint = resolve_endpoint(config.models)
    task_model = TaskModel(config.models, endpoint)
    reflection_model = ReflectionModel(config.models, endpoint)
    outputs_cache: dict[tuple[str, str], str] = {}
    recorder = Recorder(
        ctx.log,
        prompt_name=baseline.name,
        baseline_template=baseline.template,
        train=ctx.train.examples,
        val=ctx.val.examples,
        train_ids=ctx.train_ids,
        val_ids=ctx.val_ids,
        outputs_cache=outputs_cache,
    )
    prompt = mlflow.genai.load_prompt(baseline.uri, link_to_model=False)
    flags = ctx.flags

    def predict_fn(**inputs: Any) -> str:
        if flags.fatal.message:
            raise ModelAccessError(flags.fatal.message)
        text = prompt.format(**inputs)
        template = prompt.template
        try:
            output = task_model.complete(text)
        except ModelAccessError as error:
            flags.fatal.set(str(error))
            raise
        outputs_cache[(template, example_key(inputs))] = output
        return output

    fired: list[StoppedBy] = []
    stoppers: list[Any] = [
        _NamedStopper("cancelled", lambda _s: flags.cancel_requested, fired),
        _NamedStopper(
            "error", lambda _s: flags.fatal.message is not None or _too_many_failures(task_model, flags), fired
        ),
    ]
    if config.stop_on_perfect:
        stoppers.append(
            _NamedStopper("perfect", lambda s: max(s.program_full_scores_val_set, default=0.0) >= 1.0, fired)
        )
    if config.patience:
        stoppers.append(_NamedStopper("patience", NoImprovementStopper(config.patience), fired))

    gepa_log = _GepaLogFile(ctx.run_dir / "gepa.log")
    gepa_kwargs: dict[str, Any] = {
        "reflection_strategy": GuardedReflection(
            reflection_model, baseline_template=baseline.template, recorder=recorder, fatal=flags.fatal
        ),
        "reflection_minibatch_size": config.minibatch_size,
        "candidate_selection_strategy": config.selection,
        "seed": config.seed,
        "stop_callbacks": stoppers,
        "callbacks": [recorder],
        "logger": gepa_log,
    }
    if ctx.val is not ctx.train:
        # Safe here: MLflow's per-iteration logging, which a separate valset breaks, is off.
        gepa_kwargs["valset"] = ctx.val.to_mlflow_records()
    optimizer = _explorer_optimizer(
        reflection_model=f"openai:/{config.models.reflection_model_name}",
        max_metric_calls=config.budget,
        gepa_kwargs=gepa_kwargs,
    )
    os.environ["MLFLOW_GENAI_EVAL_MAX_WORKERS"] = str(config.concurrency)
    _tracing(False)
    try:
        with _no_trace_lookups():
            mlflow.genai.optimize_prompts(
                predict_fn=predict_fn,
                train_data=ctx.train.to_mlflow_records(),
                prompt_uris=[baseline.uri],
                optimizer=optimizer,
                scorers=[_mlflow_scorer(config.scorer)],
                enable_tracking=False,
            )
    finally:
        _tracing(True)
        gepa_log.close()

    stopped_by: StoppedBy = fired[0] if fired else "budget"
    cancelled = stopped_by == "cancelled"
    if stopped_by == "error":
        error = flags.fatal.message or _failure_message(task_model)
        return _finish_failed(ctx, baseline, run_id, experiment_id, error, recorder=recorder, task_model=task_model)

    best = recorder.best_candidate
    best_template = recorder.templates.get(best, baseline.template)
    initial = recorder.aggregates.get(0)
    final = recorder.aggregates.get(best)
    reason = registration_decision(
        baseline_template=baseline.template,
        best_template=best_template,
        baseline_score=initial or 0.0,
        best_score=final or 0.0,
        register=config.register,
        cancelled=cancelled,
        register_best_on_cancel=flags.register_best_on_cancel,
    )
    final_evaluation = None
    if not cancelled:
        ctx.log.emit(
            "stage",
            name="final_evaluation",
            message="Search done: scoring the baseline and the best candidate once more, with tracing on.",
        )
        final_evaluation = final_evaluation_of(ctx, task_model, baseline.template, best_template, best)
    registered = None
    if reason is None:
        ctx.log.emit("stage", name="registering", message="Registering the best candidate as a new prompt version.")
        try:
            registered = register_candidate(
                baseline,
                best_template,
                run_id=run_id,
                candidate=best,
                initial=initial,
                final=final,
                scorer=config.scorer,
            )
        except Exception as error:  # noqa: BLE001 - the search's results stand; say why nothing was added
            reason = f"registering the best candidate failed ({' '.join(str(error).split())[:200]})"
    status: Literal["finished", "cancelled"] = "cancelled" if cancelled else "finished"
    summary = RunSummary(
        run_id=run_id,
        baseline_uri=baseline.uri,
        optimized_uri=registered.uri if registered else None,
        initial_score=initial,
        final_score=final,
        metric_calls=recorder.metric_calls,
        iterations=recorder.iterations,
        candidates=len(recorder.templates),
        max_pareto_front_size=recorder.max_front_size,
        stopped_by=stopped_by,
        failed_predictions=task_model.stats.failures,
        failed_reflections=recorder.failed_reflections,
        status=status,
        not_registered_reason=reason,
        experiment_id=experiment_id,
        run_dir=str(ctx.run_dir),
    )
    ctx.log.emit(
        "run_finished",
        **_finished_fields(summary, recorder, ctx),
        registered={"uri": registered.uri, "version": registered.version} if registered else None,
        final_evaluation=final_evaluation,
    )
    _log_final_metrics(summary, recorder, final_evaluation, config.scorer)
    return summary


def _finished_fields(summary: RunSummary, recorder: Recorder | None, ctx: _Context) -> dict[str, Any]:
    return {
        "status": summary.status,
        "stopped_by": summary.stopped_by,
        "error": summary.error,
        "best_candidate": recorder.best_candidate if recorder else None,
        "initial_score": summary.initial_score,
        "final_score": summary.final_score,
        "metric_calls": summary.metric_calls,
        "iterations": summary.iterations,
        "candidates": summary.candidates,
        "max_pareto_front_size": summary.max_pareto_front_size,
        "failed_predictions": summary.failed_predictions,
        "failed_reflections": summary.failed_reflections,
        "not_registered_reason": summary.not_registered_reason,
        "seconds": round(time.time() - ctx.started, 2),
    }


def _finish_failed(
    ctx: _Context,
    baseline: Any,
    run_id: str,
    experiment_id: str,
    error: str,
    *,
    recorder: Recorder | None = None,
    task_model: TaskModel | None = None,
) -> RunSummary:
    summary = RunSummary(
        run_id=run_id,
        baseline_uri=baseline.uri,
        optimized_uri=None,
        initial_score=recorder.aggregates.get(0) if recorder else None,
        final_score=recorder.aggregates.get(recorder.best_candidate) if recorder else None,
        metric_calls=recorder.metric_calls if recorder else 0,
        iterations=recorder.iterations if recorder else 0,
        candidates=len(recorder.templates) if recorder else 0,
        max_pareto_front_size=recorder.max_front_size if recorder else 0,
        stopped_by="error",
        failed_predictions=task_model.stats.failures if task_model else 0,
        failed_reflections=recorder.failed_reflections if recorder else 0,
        status="failed",
        not_registered_reason="the run failed",
        error=error,
        experiment_id=experiment_id,
        run_dir=str(ctx.run_dir),
    )
    ctx.log.emit("run_finished", **_finished_fields(summary, recorder, ctx), registered=None, final_evaluation=None)
    return summary


def _upload_and_end(ctx: _Context, summary: RunSummary | None, tracking_uri: str) -> None:
    """Log the event log and GEPA's log as artifacts, tag the outcome and end the MLflow run.

    Raises:
        StoreError: the store could not be reached to record the end; the event log stays on disk
            and the message gives its path.
    """
    import mlflow

    from core.store import StoreError, describe_store_error, retry_store

    status = summary.status if summary else "failed"
    tags = {TAG_PREFIX + "status": status}
    if summary is not None:
        tags[TAG_PREFIX + "stopped_by"] = summary.stopped_by
        if summary.optimized_uri:
            tags[TAG_PREFIX + "optimized_uri"] = summary.optimized_uri
        if summary.error:
            tags[TAG_PREFIX + "error"] = summary.error[:4000]
    try:
        mlflow.flush_trace_async_logging()
        retry_store(lambda: mlflow.log_artifact(str(ctx.run_dir / EVENTS_FILE)))
        if (ctx.run_dir / "gepa.log").exists():
            retry_store(lambda: mlflow.log_artifact(str(ctx.run_dir / "gepa.log")))
        retry_store(lambda: mlflow.set_tags(tags))
        ending = {"finished": "FINISHED", "cancelled": "KILLED"}.get(status, "FAILED")
        retry_store(lambda: mlflow.end_run(status=ending))
    except Exception as error:  # noqa: BLE001 - said as one line; nothing recorded is lost
        reason = describe_store_error(error, tracking_uri)
        raise StoreError(
            f"The search finished but the store could not record the run's end. {reason} "
            f"Everything the run recorded is kept in {ctx.run_dir / EVENTS_FILE}."
        ) from None


def _log_final_metrics(
    summary: RunSummary, recorder: Recorder, final_evaluation: dict[str, Any] | None, scorer: ScorerSpec
) -> None:
    import mlflow
    from mlflow.entities import Metric

    from core.store import retry_store

    now = int(time.time() * 1000)
    metrics = [Metric("eval_score", recorder.aggregates[c], now, c) for c in sorted(recorder.aggregates)]
    values = {
        "initial_eval_score": summary.initial_score,
        "final_eval_score": summary.final_score,
        "metric_calls": summary.metric_calls,
        "iterations": summary.iterations,
        "candidates": summary.candidates,
        "max_pareto_front_size": summary.max_pareto_front_size,
        "failed_predictions": summary.failed_predictions,
        "failed_reflections": summary.failed_reflections,
    }
    if final_evaluation:
        values[f"baseline_{scorer.kind}"] = final_evaluation["baseline"]["aggregate"]
        values[f"optimized_{scorer.kind}"] = final_evaluation["best"]["aggregate"]
    metrics += [Metric(k, float(v), now, 0) for k, v in values.items() if v is not None]
    run_id = mlflow.active_run().info.run_id
    retry_store(lambda: mlflow.MlflowClient().log_batch(run_id, metrics=metrics))


def final_evaluation_of(
    ctx: _Context, task_model: TaskModel, baseline_template: str, best_template: str, best: int
) -> dict[str, Any]:
    result = final_evaluation(
        baseline_template=baseline_template,
        best_template=best_template,
        examples=ctx.val.examples,
        task_model=task_model,
        scorer=ctx.config.scorer,
        concurrency=ctx.config.concurrency,
        tag_prefix=TAG_PREFIX,
    )
    return {**result, "best_candidate": best}


def _too_many_failures(task_model: TaskModel, flags: StopFlags) -> bool:
    stats = task_model.stats.snapshot()
    if stats["failures"] >= MIN_FAILURES_TO_STOP and stats["failures"] >= FAILURE_SHARE_TO_STOP * stats["calls"]:
        flags.fatal.set(_failure_message(task_model))
        return True
    return False


def _failure_message(task_model: TaskModel) -> str:
    stats = task_model.stats.snapshot()
    return (
        f"The task model failed on {stats['failures']} of {stats['calls']} calls "
        f"(last error: {stats['last_error']}). Check that the endpoint is up and not overloaded."
    )


def _tracing(enabled: bool) -> None:
    import mlflow

    if enabled:
        mlflow.tracing.enable()
    else:
        mlflow.tracing.disable()
        # optimize_prompts re-enables library autologging (openai, litellm) around every batch it
        # scores, at about 30 ms a batch; turned off explicitly, it stays off. Our final evaluation
        # records its own spans.
        mlflow.autolog(disable=True)


@contextlib.contextmanager
def _no_trace_lookups() -> Iterator[None]:
    """While tracing is off, answer ``mlflow.get_trace`` with ``None`` without asking the store.

    ``optimize_prompts`` looks up a trace after every metric call; with tracing disabled none can
    exist, so each lookup is a wasted query (an HTTP round trip on a shared server). The original
    function is restored on exit.
    """
    import mlflow

    original = mlflow.get_trace
    mlflow.get_trace = lambda *_args, **_kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        mlflow.get_trace = original  # type: ignore[assignment]


def _mlflow_scorer(spec: ScorerSpec):
    from core.scorers import to_mlflow_scorer

    return to_mlflow_scorer(spec)


def _explorer_optimizer(**kwargs: Any):
    """``GepaPromptOptimizer`` that hands MLflow no prompt to register: we decide registration."""
    from mlflow.genai.optimize import GepaPromptOptimizer

    class ExplorerGepaOptimizer(GepaPromptOptimizer):
        def optimize(self, eval_fn, train_data, target_prompts, enable_tracking=True):
            output = super().optimize(eval_fn, train_data, target_prompts, enable_tracking)
            return dataclasses.replace(output, optimized_prompts={})

    return ExplorerGepaOptimizer(**kwargs)


def register_candidate(
    baseline: Any,
    template: str,
    *,
    run_id: str,
    candidate: int,
    initial: float | None,
    final: float | None,
    scorer: ScorerSpec,
    tracking_uri: str | None = None,
):  # -> PromptVersionInfo
    """Register ``template`` as a new version of the baseline's prompt, linked to run ``run_id``.

    Refuses a candidate identical to the baseline or one that lost a template variable. When a
    version with exactly this text exists already, that version is returned instead.
    """
    import mlflow

    from core import prompts

    if lost := lost_variables(baseline.template, template):
        raise prompts.PromptError("Not registered: the candidate dropped " + ", ".join("{{" + v + "}}" for v in lost))
    if template.strip() == baseline.template.strip():
        raise prompts.PromptError("Not registered: the candidate is identical to the baseline.")
    existing = prompts.find_version_with_template(baseline.name, template, tracking_uri=tracking_uri)
    if existing is not None:
        # Same text as a version already registered (say, by an identical earlier run): reuse it
        # rather than add a duplicate version.
        version = existing
    else:
        change = ""
        if initial is not None and final is not None:
            change = f", {scorer.kind} {initial:.1%} -> {final:.1%}"
        version = prompts.register_version(
            baseline.name,
            template,
            commit_message=f"GEPA Explorer: candidate {candidate} optimized from v{baseline.version}{change} "
            f"(run {run_id})",
            tags={
                TAG_PREFIX + "run_id": run_id,
                TAG_PREFIX + "source_version": str(baseline.version),
                TAG_PREFIX + "candidate": str(candidate),
            },
            tracking_uri=tracking_uri,
        )
    from core.store import retry_store

    client = mlflow.MlflowClient(tracking_uri=tracking_uri) if tracking_uri else mlflow.MlflowClient()
    try:
        retry_store(lambda: client.link_prompt_version_to_run(run_id, f"prompts:/{version.name}/{version.version}"))
    except Exception:  # noqa: BLE001 - the link is a convenience; the version exists either way
        _log.warning("could not link %s to run %s", version.uri, run_id)
    return version
