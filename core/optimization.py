"""One optimization: a frozen config in, ``mlflow.genai.optimize_prompts`` with ``GepaPromptOptimizer``
in the middle, an event log and an MLflow run out.

How it differs from calling ``optimize_prompts`` plainly, and why (see ``shared/DESIGN.md``):

* The prompt is loaded once and ``.format()`` is called per example; MLflow's class-level patch of
  ``PromptVersion.template`` still applies. Loading per call links the prompt to the run each time.
* Tracing and MLflow's per-candidate logging are off during the search (``enable_tracking=False``,
  inside a run we own): they cost more than the search itself. Our own event log records every
  candidate, proposal and score instead, and at the end baseline and best are evaluated once more
  with tracing on, so the before/after comparison is auditable in MLflow's UI.
* Registration is ours (:mod:`core.registration`): the optimizer hands MLflow no prompt to register.
* Model failures are counted, not silently scored: failed predictions are marked in the events, a
  refused key or unknown model stops the run with one line, and failed reflections are recorded.
* Patience, cancellation, perfect score and errors are GEPA stop callbacks, checked at each
  iteration boundary, so stopping never loses a recorded candidate.
* The run keeps no second model of itself: what it decides at the end (the best candidate, whether
  to register it, the summary) comes from :func:`core.analysis.build_run_view` over its own events.

The steps, in order: :func:`prepare_run` checks everything before an MLflow run exists (bad input
raises :class:`~core.errors.InputError` and nothing is registered); :func:`run_optimization` opens the
MLflow run, writes ``run_started``, runs :func:`_search`, then :func:`_finish` (or :func:`_fail`),
and :func:`_upload_and_end` logs the event log and ends the MLflow run.

Run each optimization in its own process (:mod:`core.runs`): MLflow patches classes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import tags
from core.accounting import Accounting, estimate_record, estimate_run_shape, tokens_summary
from core.analysis import RunView, build_run_view
from core.budget import BudgetPlan, plan_budget
from core.config import OptimizationConfig
from core.datasets import Dataset, Splits, bundled_dataset_at, choose_splits, default_dataset, load_dataset
from core.errors import ConfigError, InputError
from core.evaluation import final_evaluation, score_on_test
from core.events import (
    BaselineProgress,
    BudgetRef,
    DatasetRef,
    EventLog,
    ExampleRecord,
    FinalEvaluation,
    JudgeRef,
    MlflowRef,
    ModelsRef,
    PreflightCheck,
    PromptRef,
    RunFinished,
    RunStarted,
    ScoredOnTest,
    ScorerRef,
    Stage,
    StoppedBy,
)
from core.judges import JudgeConfig, check_judge
from core.models import ModelAccessError, ModelCheck, ReflectionModel, TaskModel, check_model, resolve_endpoint
from core.recorder import FatalFlag, GuardedReflection, Recorder, example_key
from core.registration import end_of_run_blocker, register_candidate
from core.rundir import RunDir
from core.scorers import ScorerSpec, Scoring, is_failed_prediction, text_scoring, to_mlflow_scorer
from core.store import StoreInfo
from core.summary import RunSummary
from core.templates import check_template, render

if TYPE_CHECKING:
    from core.estimate import Estimate
    from core.judges import LLMJudge
    from core.prompts import PromptVersionInfo

# Failure-rate guard: stop when at least this many task calls failed and they are this share of all.
MIN_FAILURES_TO_STOP = 10
FAILURE_SHARE_TO_STOP = 0.5

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedRun:
    """Everything checked before the MLflow run exists: the data and its splits, the budget
    preflight, the model preflight checks, the store and experiment, and the baseline prompt."""

    config: OptimizationConfig
    splits: Splits
    plan: BudgetPlan
    checks: list[ModelCheck]
    store: StoreInfo
    experiment_id: str
    baseline: PromptVersionInfo
    accounting: Accounting
    judge: JudgeConfig | None = None
    estimate: Estimate | None = None


@dataclass(frozen=True)
class _Run:
    """One run in progress: what was prepared, its folder, its event log, when it started."""

    prepared: PreparedRun
    folder: RunDir
    log: EventLog
    started: float
    fatal: FatalFlag

    @property
    def config(self) -> OptimizationConfig:
        return self.prepared.config

    @property
    def splits(self) -> Splits:
        return self.prepared.splits

    def view(self) -> RunView:
        return build_run_view(self.log.events)


@dataclass(frozen=True)
class _Models:
    task: TaskModel
    reflection: ReflectionModel
    judge: LLMJudge | None = None

    @classmethod
    def start(cls, prepared: PreparedRun) -> _Models:
        """The run's model clients, all metered by its accounting (the judge only when it scores with one)."""
        from core.judges import LLMJudge

        config, accounting = prepared.config, prepared.accounting
        endpoint = resolve_endpoint(config.models)
        judge = None
        if prepared.judge is not None:
            judge = LLMJudge(prepared.judge, endpoint=endpoint, meter=accounting.meter)
            accounting.judge = judge
        return cls(
            TaskModel(config.models, endpoint, meter=accounting.meter),
            ReflectionModel(config.models, endpoint, meter=accounting.meter),
            judge,
        )

    def scoring(self, spec: ScorerSpec) -> Scoring:
        """How an example is scored outside GEPA: by the judge, or by the text scorer."""
        from core.judges import judge_scoring

        return judge_scoring(self.judge) if self.judge is not None else text_scoring(spec)


def _quiet_libraries() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # MLflow calls predict_fn once up front only to see whether it is traced; we know it is not.
    os.environ["MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION"] = "true"
    # The final evaluation's spans (one trace, a span per example) go to the store in one batch, one
    # transaction, when the run flushes its trace: MLflow's default batches of 5 cost about 0.6 s more
    # for the default run's 61 spans here.
    os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_SPAN_BATCH_SIZE", "100000")
    # A run is no notebook: MLflow asks whether it is in one (a Databricks one) when tracing starts,
    # importing IPython only to find out (36 MB and 0.4 s here). Unless a notebook already loaded
    # IPython, it is absent from this process, and every such check says no at once.
    sys.modules.setdefault("IPython", None)  # type: ignore[assignment]
    for name in ("mlflow", "gepa", "LiteLLM", "litellm", "httpx", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Its "SQLAlchemy database error" log carries a traceback and SQL; the store error itself reaches
    # the user as one line (core.store.describe_store_error).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


# --------------------------------------------------------------------------------------------------
# Before the MLflow run exists: every check, so bad input registers nothing
# --------------------------------------------------------------------------------------------------


def prepare_data(config: OptimizationConfig) -> Splits:
    """Load the dataset (and the test file, if any) and split it (:func:`core.datasets.choose_splits`)."""
    path = config.dataset_path or str(default_dataset().path)
    bundled = bundled_dataset_at(path)
    return choose_splits(
        load_dataset(path),
        test_fraction=config.test_fraction,
        validation_fraction=config.validation_fraction,
        seed=config.split_seed,
        test_file=load_dataset(config.test_dataset_path) if config.test_dataset_path else None,
        declared=bundled.split if bundled else None,
    )


def check_against_dataset(template: str, dataset: Dataset) -> None:
    """Raise ``ConfigError`` (whole-template problems) or ``DatasetError`` (rows lacking a variable)."""
    present_somewhere = dict.fromkeys(f for example in dataset.examples for f in example.inputs)
    check = check_template(template, present_somewhere)
    if not check.ok:
        raise ConfigError(check.problems[0])
    dataset.check_template(template)


def resolve_baseline(config: OptimizationConfig) -> PromptVersionInfo:
    """The prompt version to optimize: by URI, by registering the given template, or the bundled one.

    Bundled baselines are registered the first time a store is used (all of them at once).
    """
    from core import prompts
    from core.datasets import bundled_datasets

    if config.prompt_uri:
        name, _, _ = prompts.parse_prompt_uri(config.prompt_uri)
        try:
            return prompts.load(config.prompt_uri)
        except prompts.PromptError:
            if name not in {b.prompt_name for b in bundled_datasets()}:
                raise
        prompts.ensure_bundled_prompts()  # a bundled URI (e.g. @baseline) works on a fresh store too
        return prompts.load(config.prompt_uri)
    if config.template is not None and config.prompt_name:
        name = prompts.validate_prompt_name(config.prompt_name)
        version, _ = prompts.find_or_register(
            name, config.template, commit_message="Registered by GEPA Explorer as an optimization baseline"
        )
        return version
    path = os.path.abspath(config.dataset_path or default_dataset().path)
    index = next((i for i, b in enumerate(bundled_datasets()) if os.path.abspath(b.path) == path), None)
    if index is None:
        raise ConfigError(
            "Choose the prompt to optimize with --prompt-uri, or give --prompt-name and --template: "
            "the bundled baselines only fit the bundled datasets."
        )
    return prompts.ensure_bundled_prompts()[index]


def prepare_run(config: OptimizationConfig) -> PreparedRun:
    """Check the data, budget, models and store, and find (or register) the baseline.

    Raises:
        InputError: a subclass saying what to change (``ConfigError``, ``DatasetError``,
            ``PromptError``, ``ModelAccessError``, ``StoreError``); nothing has been registered,
            except a baseline given as a template, once everything else was checked.
    """
    from core.store import configure_mlflow, ensure_experiment, retry_store

    splits = prepare_data(config)
    plan = plan_budget(
        config.budget,
        len(splits.validation),
        config.minibatch_size,
        test_size=len(splits.test_ids),
        every_candidate_on_test=config.scores_candidates_on_test,
    )
    if plan.level == "refuse":
        raise ConfigError(plan.message)
    if config.template is not None:
        # Checked before resolve_baseline registers it: bad input must register nothing.
        check_against_dataset(config.template, splits.dataset)
    accounting = Accounting.for_config(config)
    # The model checks (a round trip each) and opening the store are independent: they overlap. A
    # refused model is still said before a store problem, and both come before anything is registered.
    # Their imports happen here first: importing one package from two threads at once can deadlock.
    import mlflow
    import openai  # noqa: F401

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="preflight") as pool:
        pending = [
            pool.submit(check_model, config.models, role=role, meter=accounting.meter)
            for role in ("task", "reflection")
        ]
        try:
            store = configure_mlflow(config.tracking_uri)
            experiment_id = ensure_experiment(config.experiment)
            with store_errors(store.tracking_uri):
                # Active, MLflow links prompts and traces to it without first looking for a
                # Databricks notebook (a check that imports IPython, about half a second).
                retry_store(lambda: mlflow.set_experiment(experiment_id=experiment_id))
            store_error = None
        except InputError as error:
            store_error = error
        checks = [future.result() for future in pending]
    judge = JudgeConfig(config.models, config.scorer.judge_model) if config.scorer.needs_model else None
    if judge is not None and checks[0].ok:
        checks.append(check_judge(judge, meter=accounting.meter))
    for check in checks:
        if not check.ok:
            raise ModelAccessError(check.message)
    if store_error is not None:
        raise store_error
    with store_errors(store.tracking_uri):
        baseline = resolve_baseline(config)
    check_against_dataset(baseline.template, splits.dataset)
    if splits.test_file is not None:
        check_against_dataset(baseline.template, splits.test_file)
    # One real example through the task model: how long its replies are, for the estimate.
    example = render(baseline.template, splits.train.examples[0].inputs)
    reply = check_model(config.models, role="task", meter=accounting.meter, prompt=example)
    estimate = None
    if reply.ok and reply.usage is not None:
        usage = reply.usage
        reply_tokens, seconds = usage.completion_tokens_per_response or 0.0, usage.seconds_per_response or 0.0
        estimate = estimate_run_shape(config, splits, baseline.template, reply_tokens, seconds, accounting.prices)
    return PreparedRun(
        config, splits, plan, checks, store, experiment_id, baseline, accounting, judge=judge, estimate=estimate
    )


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


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def run_optimization(
    config: OptimizationConfig, run_dir: Path, *, on_event: Callable[[Any], None] | None = None
) -> RunSummary:
    """Run one optimization in this process, recording to ``run_dir/events.jsonl`` and MLflow.

    Raises :class:`~core.errors.InputError` (see :func:`prepare_run`) before any MLflow run exists
    when the inputs or models are unusable, and ``StoreError`` when the store cannot record the run's
    end (its event log is kept). Once the run exists, other failures end it as FAILED and are
    reported in the summary instead.
    """
    _quiet_libraries()
    started = time.time()
    folder = RunDir(Path(run_dir))
    folder.path.mkdir(parents=True, exist_ok=True)
    prepared = prepare_run(config)
    with EventLog(folder.events_path, listener=on_event) as log:
        run = _Run(prepared, folder, log, started, FatalFlag())
        with store_errors(prepared.store.tracking_uri):
            run_id = _open_mlflow_run(run)
        log.emit(_run_started(run, run_id))
        finished: RunFinished | None = None
        try:
            finished = _search_and_finish(run)
        except BaseException as error:
            message = " ".join(str(error).split()) or type(error).__name__
            finished = _fail(run, f"{type(error).__name__}: {message}")
            if not isinstance(error, Exception):
                raise
        finally:
            _upload_and_end(run, finished)
        return RunSummary.of(run.view(), run_dir=str(folder.path))


def _open_mlflow_run(run: _Run) -> str:
    """Create the MLflow run with its tags and params, make it this process's active run; its id."""
    import mlflow

    from core.store import retry_store

    prepared = run.prepared
    baseline = prepared.baseline
    run_name = run.config.run_name or f"{baseline.name} v{baseline.version} · budget {run.config.budget}"
    # create_run + start_run(run_id): mlflow.start_run alone resolves context tags (git, notebook...)
    # at a cost of about 0.7 s; we set the few that matter ourselves.
    run_id = retry_store(
        lambda: (
            mlflow.MlflowClient()
            .create_run(
                prepared.experiment_id,
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
        retry_store(lambda: mlflow.set_tags(_run_tags(run)))
        retry_store(lambda: mlflow.log_params(_flat_params(run)))
    except Exception:
        with contextlib.suppress(Exception):  # not left RUNNING for ever; the error itself is what counts
            mlflow.MlflowClient().set_terminated(run_id, status="FAILED")
        raise
    run.folder.write_run_id(run_id)
    return run_id


def _run_tags(run: _Run) -> dict[str, str]:
    prepared, config = run.prepared, run.config
    group = {tags.GROUP: config.group} if config.group else {}
    who = {tags.PARTICIPANT: config.participant} if config.participant else {}
    # Set in an RQ work horse only (core.queue): which job and worker this run is.
    queued = {
        tag: os.environ[name]
        for tag, name in ((tags.QUEUE_REF, "GEPA_EXPLORER_QUEUE_REF"), (tags.WORKER, "GEPA_EXPLORER_WORKER_NAME"))
        if os.environ.get(name)
    }
    resumed = {tags.RESUMED_FROM: run.folder.resumed_from} if run.folder.resumed_from else {}
    return (
        group
        | who
        | queued
        | resumed
        | {
            tags.KIND: tags.KIND_OPTIMIZATION,
            tags.STATUS: "running",
            tags.LIVE_DIR: str(run.folder.path),
            tags.HOST: socket.gethostname(),
            tags.PID: str(os.getpid()),
            tags.BASELINE_URI: prepared.baseline.uri,
            tags.PROMPT_NAME: prepared.baseline.name,
            tags.DATASET: prepared.splits.dataset.name,
            tags.SCORER: config.scorer.label,
            tags.MODEL: config.models.label,
        }
    )


def _flat_params(run: _Run) -> dict[str, str]:
    prepared, config = run.prepared, run.config
    models = config.models.public_dict()
    return {
        "baseline_uri": prepared.baseline.uri,
        "dataset": prepared.splits.dataset.source,
        "dataset_rows": str(len(prepared.splits.dataset)),
        "train_rows": str(len(prepared.splits.train)),
        "validation_rows": str(len(prepared.splits.validation)),
        "test_rows": str(len(prepared.splits.test_ids)),
        "test_dataset": prepared.splits.test_file.source if prepared.splits.test_file else "none",
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


def _run_started(run: _Run, run_id: str) -> RunStarted:
    prepared, config, splits = run.prepared, run.config, run.splits
    plan, baseline = prepared.plan, prepared.baseline
    return RunStarted(
        config=config.to_dict(),
        models=ModelsRef(**config.models.public_dict()),
        scorer=ScorerRef(config.scorer.kind, config.scorer.normalization),
        dataset=_dataset_ref(splits.dataset),
        examples=tuple(ExampleRecord(i, e.row, e.inputs, e.expected) for i, e in enumerate(splits.examples)),
        train_ids=splits.train_ids,
        val_ids=splits.validation_ids,
        test_ids=splits.test_ids,
        test_dataset=_dataset_ref(splits.test_file) if splits.test_file else None,
        baseline=PromptRef(baseline.uri, baseline.name, baseline.version, baseline.template),
        budget=BudgetRef(plan.budget, plan.min_proposals, plan.max_proposals, plan.level, plan.message),
        preflight=tuple(PreflightCheck(c.role, c.model, c.ok, round(c.seconds, 3)) for c in prepared.checks),
        mlflow=MlflowRef(run_id, prepared.experiment_id, prepared.store.tracking_uri),
        judge=JudgeRef(prepared.judge.judge_model, prepared.judge.simulated) if prepared.judge else None,
        prices=prepared.accounting.price_refs(),
        estimate=estimate_record(prepared.estimate) if prepared.estimate else None,
    )


def _dataset_ref(dataset: Dataset) -> DatasetRef:
    return DatasetRef(dataset.name, dataset.source, dataset.fields)


def _search_and_finish(run: _Run) -> RunFinished:
    models = _Models.start(run.prepared)
    stopped_by = _search(run, models)
    if stopped_by == "error":
        return _fail(run, run.fatal.message or _failure_message("task", models.task.stats), models.task)
    return _finish(run, models, stopped_by)


# --------------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------------


def _search(run: _Run, models: _Models) -> StoppedBy:
    """Run GEPA through ``optimize_prompts`` with tracing off; which stop condition ended it."""
    import mlflow

    prepared, config = run.prepared, run.config
    progress = _BaselineProgress(run.log, total=len(prepared.splits.validation))
    outputs_cache: dict[tuple[str, str], str] = {}
    recorder = Recorder(
        run.log,
        prompt_name=prepared.baseline.name,
        train_ids=prepared.splits.train_ids,
        val=prepared.splits.validation.examples,
        outputs_cache=outputs_cache,
        rationale_of=models.judge.rationale_of if models.judge is not None else None,
        usage_update=prepared.accounting.update,
    )
    recorder.known_candidates, recorder.metric_calls = _replay_resumed(run)
    randomness = _SearchRandomness(config, run.folder.gepa_dir)
    fired: list[StoppedBy] = []
    gepa_log = _GepaLogFile(run.folder.gepa_log_path)
    gepa_kwargs: dict[str, Any] = {
        "reflection_strategy": GuardedReflection(
            models.reflection, baseline_template=prepared.baseline.template, recorder=recorder, fatal=run.fatal
        ),
        # GEPA's own strategies, built here on one seeded generator as gepa.optimize would, so their
        # random state is saved beside GEPA's state (which lacks it) and a resumed run draws on.
        "candidate_selection_strategy": randomness.selector,
        "batch_sampler": randomness.sampler,
        "seed": config.seed,
        "stop_callbacks": _stoppers(run, models, fired),
        "callbacks": [recorder, randomness],
        "logger": gepa_log,
        # GEPA saves its state here before each iteration and resumes from it when it exists
        # (core.resume); it is logged with the run (artifact gepa/gepa_state.bin).
        "run_dir": str(run.folder.gepa_dir),
    }
    if prepared.splits.validation is not prepared.splits.train:
        # Safe here: MLflow's per-iteration logging, which a separate valset breaks, is off.
        gepa_kwargs["valset"] = prepared.splits.validation.to_mlflow_records()
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
                predict_fn=_predict_fn(prepared.baseline.uri, models.task, run.fatal, outputs_cache, progress),
                train_data=prepared.splits.train.to_mlflow_records(),
                prompt_uris=[prepared.baseline.uri],
                optimizer=optimizer,
                scorers=[to_mlflow_scorer(config.scorer, judge=models.judge)],
                enable_tracking=False,
            )
    finally:
        _tracing(True)
        gepa_log.close()
    return fired[0] if fired else "budget"


class _SearchRandomness:
    """GEPA's random generator, parent selector and minibatch sampler, held here (GEPA's saved state
    has none of them): a GEPA callback that pickles the generator's and sampler's state to
    ``gepa/random_state.pkl`` whenever GEPA saves its own (before each iteration, and at the end),
    and restores it when that file is there, so a resumed run makes the draws the uninterrupted run
    would have made."""

    FILE = "random_state.pkl"

    def __init__(self, config: OptimizationConfig, gepa_dir: Path):
        import random

        from gepa.strategies.batch_sampler import EpochShuffledBatchSampler
        from gepa.strategies.candidate_selector import CurrentBestCandidateSelector, ParetoCandidateSelector

        self.rng = random.Random(config.seed)
        self.sampler = EpochShuffledBatchSampler(minibatch_size=config.minibatch_size, rng=self.rng)
        pareto = config.selection == "pareto"
        self.selector = ParetoCandidateSelector(rng=self.rng) if pareto else CurrentBestCandidateSelector()
        self.path = gepa_dir / self.FILE
        self._restore()

    def _restore(self) -> None:
        import pickle

        try:
            saved = pickle.loads(self.path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError):
            return
        self.rng.setstate(saved["rng"])
        self.sampler.__dict__.update(saved["sampler"])

    def _save(self) -> None:
        import pickle

        sampler = {k: v for k, v in self.sampler.__dict__.items() if k != "rng"}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(pickle.dumps({"rng": self.rng.getstate(), "sampler": sampler}))
        os.replace(temporary, self.path)

    def on_state_saved(self, _event: Any) -> None:
        self._save()

    def on_optimization_end(self, _event: Any) -> None:
        self._save()


def _replay_resumed(run: _Run) -> tuple[set[int], int]:
    """For a resumed run (:mod:`core.resume`): copy the search events of the run it continues into
    this log, up to the last iteration GEPA's saved state holds (a later, unfinished one is redone),
    so the log tells the whole search; the candidates already recorded and the metric calls spent."""
    from gepa.core.state import GEPAState

    from core.events import BudgetUsed, Candidate, FrontUpdated, Proposal, read_events

    earlier = run.folder.path / "resumed_events.jsonl"
    if not (run.folder.resumed_from and earlier.exists() and run.folder.gepa_state_path.exists()):
        return set(), 0
    state = GEPAState.load(str(run.folder.gepa_dir))
    done = state.i + 1  # GEPA saves before each iteration: iterations 1..i+1 are in the state
    known: set[int] = set()
    for event in read_events(earlier):
        if isinstance(event, Candidate) and event.iteration <= done:
            known.add(event.index)
        elif not (isinstance(event, (FrontUpdated, BudgetUsed, Proposal)) and event.iteration <= done):
            continue
        run.log.emit(event)
    return known, int(state.total_num_evals)


def _predict_fn(
    prompt_uri: str,
    task_model: TaskModel,
    fatal: FatalFlag,
    outputs_cache: dict[tuple[str, str], str],
    progress: _BaselineProgress,
) -> Callable[..., str]:
    """The task model on one example, with the prompt loaded once (see the module docstring); a refused
    key stops the run, every output is kept for the recorder, and the baseline's scoring is counted."""
    import mlflow

    prompt = mlflow.genai.load_prompt(prompt_uri, link_to_model=False)

    def predict_fn(**inputs: Any) -> str:
        try:
            if fatal.message:
                raise ModelAccessError(fatal.message)
            text = prompt.format(**inputs)
            template = prompt.template
            try:
                output = task_model.complete(text)
            except ModelAccessError as error:
                fatal.set(str(error))
                raise
            outputs_cache[(template, example_key(inputs))] = output
            return output
        finally:
            progress.scored_one()

    return predict_fn


class _BaselineProgress:
    """Counts the baseline's scoring on the validation set (GEPA's first ``total`` metric calls) and
    writes :class:`~core.events.BaselineProgress`: once when it starts, then at most every
    :attr:`INTERVAL` seconds, so the live view shows progress before the first candidate is in."""

    INTERVAL = 0.25

    def __init__(self, log: EventLog, *, total: int):
        self._log = log
        self.total = total
        self._scored = 0
        self._last = time.monotonic()
        self._lock = threading.Lock()
        log.emit(BaselineProgress(scored=0, total=total, metric_calls=0))

    def scored_one(self) -> None:
        with self._lock:
            if self._scored >= self.total:
                return
            self._scored += 1
            now = time.monotonic()
            if self._scored == self.total or now - self._last < self.INTERVAL:
                return
            self._last = now
            scored = self._scored
        self._log.emit(BaselineProgress(scored=scored, total=self.total, metric_calls=scored))


class _NamedStopper:
    """A GEPA stop callback that remembers it fired, so the summary can say why the run stopped."""

    def __init__(self, name: StoppedBy, stopper: Callable[[Any], bool], fired: list[StoppedBy]):
        self.name = name
        self._stopper = stopper
        self._fired = fired

    def __call__(self, state: Any) -> bool:
        if self._stopper(state):
            if not self._fired:
                self._fired.append(self.name)
            return True
        return False


class _ModelFailureStopper:
    """Stops the run after a permanent model error, or when most task (or judge) calls fail even after
    retries: scores made of failures would mean nothing."""

    def __init__(self, fatal: FatalFlag, models: _Models):
        self._fatal = fatal
        self._models = models

    def __call__(self, _state: Any) -> bool:
        if self._fatal.message is not None:
            return True
        for who, stats in (
            ("task", self._models.task.stats),
            ("judge", self._models.judge and self._models.judge.stats),
        ):
            if stats is None:
                continue
            counts = stats.snapshot()
            if (
                counts["failures"] >= MIN_FAILURES_TO_STOP
                and counts["failures"] >= FAILURE_SHARE_TO_STOP * counts["calls"]
            ):
                self._fatal.set(_failure_message(who, stats))
                return True
        return False


def _stoppers(run: _Run, models: _Models, fired: list[StoppedBy]) -> list[_NamedStopper]:
    """GEPA's own stop conditions (its stop file for Stop, its score threshold for a perfect score,
    its no-improvement stopper for patience) plus the model-failure guard, in the order they are
    named when several fire at once."""
    from gepa.utils import FileStopper, NoImprovementStopper, ScoreThresholdStopper

    stoppers = [
        _NamedStopper("cancelled", FileStopper(str(run.folder.cancel_path)), fired),
        _NamedStopper("error", _ModelFailureStopper(run.fatal, models), fired),
    ]
    if run.config.stop_on_perfect:
        stoppers.append(_NamedStopper("perfect", ScoreThresholdStopper(1.0), fired))
    if run.config.patience:
        stoppers.append(_NamedStopper("patience", NoImprovementStopper(run.config.patience), fired))
    return stoppers


def _failure_message(who: str, stats: Any) -> str:
    counts = stats.snapshot()
    return (
        f"The {who} model failed on {counts['failures']} of {counts['calls']} calls "
        f"(last error: {counts['last_error']}). Check that the endpoint is up and not overloaded."
    )


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


def _explorer_optimizer(**kwargs: Any):
    """``GepaPromptOptimizer`` that hands MLflow no prompt to register: we decide registration."""
    from mlflow.genai.optimize import GepaPromptOptimizer

    class ExplorerGepaOptimizer(GepaPromptOptimizer):
        def optimize(self, eval_fn, train_data, target_prompts, enable_tracking=True):
            output = super().optimize(eval_fn, train_data, target_prompts, enable_tracking)
            return dataclasses.replace(output, optimized_prompts={})

    return ExplorerGepaOptimizer(**kwargs)


# --------------------------------------------------------------------------------------------------
# After the search
# --------------------------------------------------------------------------------------------------


def _finish(run: _Run, models: _Models, stopped_by: StoppedBy) -> RunFinished:
    """The traced final evaluation, registration, ``run_finished`` and the run's metrics."""
    view = run.view()
    cancelled = stopped_by == "cancelled"
    reason = end_of_run_blocker(
        view,
        register=run.config.register,
        cancelled=cancelled,
        register_best_on_cancel=run.folder.register_best_on_cancel,
    )
    evaluation = None
    if not cancelled:
        evaluation = _evaluate_after_search(run, models, view)
    registered = None
    if reason is None:
        run.log.emit(Stage(name="registering", message="Registering the best candidate as a new prompt version."))
        try:
            registration = register_candidate(view, view.best_candidate, participant=run.config.participant)
            registered = registration.as_event()
        except Exception as error:  # noqa: BLE001 - the search's results stand; say why nothing was added
            reason = f"registering the best candidate failed ({' '.join(str(error).split())[:200]})"
    run.log.emit(run.prepared.accounting.update(view.metric_calls))
    finished = run.log.emit(
        RunFinished(
            status="cancelled" if cancelled else "finished",
            stopped_by=stopped_by,
            registered=registered,
            not_registered_reason=reason,
            final_evaluation=evaluation,
            failed_predictions=models.task.stats.failures,
            seconds=round(time.time() - run.started, 2),
        )
    )
    _log_final_metrics(run.view())
    return finished


def _evaluate_after_search(run: _Run, models: _Models, view: RunView) -> FinalEvaluation:
    """Baseline and best once more on validation and test, traced; then, if asked, every candidate on
    the test set (``ScoredOnTest`` events), which the search never saw."""
    splits, concurrency = run.splits, run.config.concurrency
    test = splits.test.examples if splits.test else ()
    on_test = f" and the {len(test)} test" if test else ""
    run.log.emit(
        Stage(
            name="final_evaluation",
            message=f"Search done: scoring the baseline and the best candidate once more on the "
            f"{len(splits.validation)} validation{on_test} examples, with tracing on.",
        )
    )
    scoring = models.scoring(view.scorer)
    evaluation = final_evaluation(view, splits.validation.examples, test, models.task, scoring, concurrency=concurrency)
    if test and run.config.scores_candidates_on_test:
        run.log.emit(
            Stage(
                name="test_scoring",
                message=f"Scoring each of the {len(view.candidates)} candidates on the {len(test)} test examples "
                "the search never saw, to compare validation with test.",
            )
        )
        for candidate in view.candidates:
            scored = score_on_test(candidate.template, test, models.task, scoring, concurrency=concurrency)
            failed = sum(1 for output in scored.outputs if is_failed_prediction(output))
            run.log.emit(
                ScoredOnTest(
                    index=candidate.index,
                    scores=scored.scores,
                    outputs=scored.outputs,
                    aggregate=scored.aggregate,
                    failed=failed,
                    rationales=scored.rationales if models.judge is not None else (),
                )
            )
    return evaluation


def _fail(run: _Run, error: str, task_model: TaskModel | None = None) -> RunFinished:
    run.log.emit(run.prepared.accounting.update(run.view().metric_calls))
    return run.log.emit(
        RunFinished(
            status="failed",
            stopped_by="error",
            error=error,
            not_registered_reason="the run failed",
            failed_predictions=task_model.stats.failures if task_model else 0,
            seconds=round(time.time() - run.started, 2),
        )
    )


def _log_final_metrics(view: RunView) -> None:
    import mlflow
    from mlflow.entities import Metric

    from core.store import retry_store

    now = int(time.time() * 1000)
    metrics = [Metric("eval_score", c.aggregate, now, c.index) for c in view.candidates]
    values = {
        "initial_eval_score": view.initial_score,
        "final_eval_score": view.final_score,
        "metric_calls": view.metric_calls,
        "iterations": view.iterations,
        "candidates": len(view.candidates),
        "max_pareto_front_size": view.max_front_size,
        "failed_predictions": view.failed_predictions,
        "failed_reflections": view.failed_reflections,
        "seconds": view.seconds,
        "cost_usd": view.cost.total if view.cost else None,
    }
    for role, tally in tokens_summary(view.usage).items():
        values |= {f"{role}_prompt_tokens": tally["prompt"], f"{role}_completion_tokens": tally["completion"]}
        values[f"{role}_calls"] = tally["calls"]
    evaluation = view.final_evaluation
    if evaluation:
        values[f"baseline_{view.scorer.kind}"] = evaluation.baseline.aggregate
        values[f"optimized_{view.scorer.kind}"] = evaluation.best.aggregate
        if evaluation.test_baseline and evaluation.test_best:
            values["test_baseline_score"] = evaluation.test_baseline.aggregate
            values["test_best_score"] = evaluation.test_best.aggregate
    metrics += [Metric(k, float(v), now, 0) for k, v in values.items() if v is not None]
    # Cost over metric calls, one point per usage update (known prices only).
    metrics += [Metric("cost_usd_so_far", cost, now, calls) for calls, cost in view.cost_series() if cost is not None]
    run_id = view.run_id
    retry_store(lambda: mlflow.MlflowClient().log_batch(run_id, metrics=metrics))


def _upload_and_end(run: _Run, finished: RunFinished | None) -> None:
    """Log the event log and GEPA's log as artifacts, tag the outcome and end the MLflow run.

    Raises:
        StoreError: the store could not be reached to record the end; the event log stays on disk
            and the message gives its path.
    """
    import mlflow

    from core.store import StoreError, describe_store_error, retry_store

    status = finished.status if finished else "failed"
    outcome = {tags.STATUS: status}
    if finished is not None:
        outcome[tags.STOPPED_BY] = finished.stopped_by
        if finished.registered:
            outcome[tags.OPTIMIZED_URI] = finished.registered.uri
        if finished.error:
            outcome[tags.ERROR] = finished.error[:4000]
    try:
        # The run records no trace after this one. Terminating the export threads, rather than
        # flushing and restarting them, spares a second wait of up to a second (MLflow's export queue
        # is polled once a second); a later trace would be written at once, without them.
        mlflow.flush_trace_async_logging(terminate=True)
        retry_store(lambda: mlflow.log_artifact(str(run.folder.events_path)))
        if run.folder.gepa_log_path.exists():
            retry_store(lambda: mlflow.log_artifact(str(run.folder.gepa_log_path)))
        for saved in run.folder.gepa_saved_files():
            retry_store(lambda saved=saved: mlflow.log_artifact(str(saved), artifact_path="gepa"))
        retry_store(lambda: mlflow.set_tags(outcome))
        ending = {"finished": "FINISHED", "cancelled": "KILLED"}.get(status, "FAILED")
        retry_store(lambda: mlflow.end_run(status=ending))
    except Exception as error:  # noqa: BLE001 - said as one line; nothing recorded is lost
        reason = describe_store_error(error, run.prepared.store.tracking_uri)
        raise StoreError(
            f"The search finished but the store could not record the run's end. {reason} "
            f"Everything the run recorded is kept in {run.folder.events_path}."
        ) from None
