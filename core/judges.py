"""The LLM judge: a scorer that asks a judge model whether an output gives the expected answer.

Built on MLflow's judges: :func:`mlflow.genai.judges.make_judge` with :data:`JUDGE_INSTRUCTIONS` and a
yes/no verdict, called with the example's inputs, the output and the expected answer. The judge model
is chosen like the task model: the offline demo model (a *simulated* judge, deterministic, documented in
:mod:`core.offline_model.behaviour`), OpenAI, or any OpenAI-compatible endpoint, by default the task
model itself. Every call goes to the run's endpoint (the offline one too), so the real client path runs.

How a call travels (mlflow 3.17.2, litellm 1.91):

* ``make_judge`` returns an ``InstructionsJudge``; calling it builds MLflow's judge system prompt and a
  user message of ``inputs: / outputs: / expectations:`` JSON lines, and hands the model URI to
  ``invoke_judge_model``, which picks an adapter by the URI's provider.
* ``openai:/NAME`` is claimed by MLflow's *gateway* adapter, not litellm: it reads the key only from the
  ``OPENAI_API_KEY`` environment variable, posts the ``base_url`` verbatim, and retries 429/5xx and
  timeouts ten times with sleeps of 1 to 30 seconds that nobody can see or count.
* Providers the gateway does not know fall through to the *litellm* adapter, which calls
  ``litellm.completion(model="PROVIDER/NAME", api_base=base_url, ...)`` and merges the judge's
  ``inference_params`` into those keyword arguments last. So the judge's URI is
  ``hosted_vllm:/NAME`` (litellm's provider for any OpenAI-compatible server) with the endpoint's base
  URL, and ``inference_params`` carry the key, the timeout and ``retry_policy=None``. Without that None,
  litellm retries inside the call (and here, without ``tenacity`` installed, turns 429s and timeouts into
  an unreadable "tenacity import failed" error). Retries are ours: :func:`core.models.call_with_retries`,
  counted in :attr:`LLMJudge.stats`.

Identical (output, expected) pairs are judged once per run: a :class:`VerdictCache` the run owns. A judge
that fails after every retry raises :class:`JudgeError` (or :class:`~core.models.ModelAccessError` for
a refused key, which stops the run): it is never silently scored as wrong.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError
from core.models import (
    OFFLINE_MODEL_NAME,
    CallStats,
    Endpoint,
    ModelAccessError,
    ModelCallError,
    ModelCheck,
    ModelConfig,
    ModelError,
    RetryPolicy,
    UsageMeter,
    call_with_retries,
    public_url,
    resolve_endpoint,
)

JUDGE_NAME = "llm_judge"
# litellm's OpenAI-compatible provider; MLflow's gateway adapter does not claim it (see the module docstring).
LITELLM_PROVIDER = "hosted_vllm"
JUDGE_INSTRUCTIONS = (
    "Decide whether the answer in {{ outputs }} gives the expected answer in {{ expectations }} to the "
    "question in {{ inputs }}. Answer yes when it states the expected answer, however it is worded: a full "
    "sentence, other capitalisation, a trailing period, a number in words or in digits, 'Yes, ...' for "
    "yes, or extra words around the answer. Answer no when it gives a different answer, gives only part "
    "of the expected answer, hedges instead of committing to one answer, or names several candidates."
)
JUDGE_FAILED_PREFIX = "The judge gave no verdict"
# A pair the check judges: any sensible judge says yes, exact match says no.
CHECK_PAIR = ("How many edges does a cube have?", "Twelve.", "12")


class JudgeError(ModelCallError):
    """The judge gave no usable verdict after every retry. Count it; do not score the answer as wrong."""


@dataclass(frozen=True)
class JudgeConfig:
    """Which judge a run uses: a model name on the run's endpoint (``models``), by default the task model.

    The offline provider's judge is the simulated one; its only name is the demo model's.
    """

    models: ModelConfig = field(default_factory=ModelConfig)
    model: str | None = None

    def __post_init__(self) -> None:
        if self.model is not None and not self.model.strip():
            raise ConfigError("The judge model name is empty: give a name, or leave it out to use the task model.")
        if self.models.is_offline and self.model not in (None, OFFLINE_MODEL_NAME):
            raise ConfigError(
                f"The offline demo model's simulated judge is only '{OFFLINE_MODEL_NAME}': to use another judge "
                "model, choose the openai provider (with --base-url for an OpenAI-compatible endpoint)."
            )

    @property
    def judge_model(self) -> str:
        return self.model or self.models.task_model

    @property
    def simulated(self) -> bool:
        return self.models.is_offline

    @property
    def mlflow_model_uri(self) -> str:
        return f"{LITELLM_PROVIDER}:/{self.judge_model}"

    @property
    def label(self) -> str:
        if self.simulated:
            return "Simulated judge (offline demo model, deterministic rules, not a language model)"
        return f"LLM judge {self.judge_model} ({self.models.label})"

    def public_dict(self) -> dict[str, Any]:
        """Everything about the judge that is safe to log: never the key."""
        return {
            "judge_model": self.judge_model,
            "simulated": self.simulated,
            "provider": self.models.provider,
            "base_url": public_url(self.models.base_url),
        }


@dataclass(frozen=True)
class Verdict:
    """The judge's score (1.0 right, 0.0 wrong) and its reason. ``cached``: reused, no call was made."""

    score: float
    rationale: str
    cached: bool = field(default=False, compare=False)


class VerdictCache:
    """Verdicts a run has already paid for, keyed by (output, expected). Thread-safe: when several
    threads ask for the same pair at once, one calls the judge and the others wait for its verdict.
    Failures are not cached: the next request for that pair calls again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[tuple[str, str], Future[Verdict]] = {}
        self.hits = 0
        self.misses = 0

    def get_or_judge(self, output: str, expected: str, judge: Callable[[], Verdict]) -> Verdict:
        key = (output, expected)
        with self._lock:
            future = self._verdicts.get(key)
            owner = future is None
            if owner:
                future = self._verdicts[key] = Future()
                self.misses += 1
            else:
                self.hits += 1
        if not owner:
            return dataclasses.replace(future.result(), cached=True)
        try:
            verdict = judge()
        except BaseException as error:
            with self._lock:
                del self._verdicts[key]
            future.set_exception(error)
            raise
        future.set_result(verdict)
        return verdict

    def peek(self, output: str, expected: str) -> Verdict | None:
        """The verdict already given on this pair, without judging it; None if there is none yet."""
        with self._lock:
            future = self._verdicts.get((output, expected))
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()

    @property
    def hit_rate(self) -> float | None:
        with self._lock:
            asked = self.hits + self.misses
            return self.hits / asked if asked else None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "pairs": len(self._verdicts)}


def _verdict_score(value: object) -> float:
    """1.0 or 0.0 from the judge's value; ValueError for anything else (an unreadable verdict)."""
    text = str(getattr(value, "value", value)).strip().lower()
    if text in ("yes", "true", "1", "1.0", "correct", "pass"):
        return 1.0
    if text in ("no", "false", "0", "0.0", "incorrect", "fail"):
        return 0.0
    raise ValueError(f"the judge's verdict {text[:40]!r} is neither yes nor no")


def _unwrap(error: Exception) -> Exception:
    """The client error behind an MlflowException (it raises ``from`` the litellm error), so that its
    status code and Retry-After are classified like any model error."""
    cause = error.__cause__
    if type(error).__name__ == "MlflowException" and isinstance(cause, Exception):
        return cause
    return error


class LLMJudge:
    """Judges (question, output, expected) through MLflow's judge machinery; thread-safe.

    ``cache`` and ``meter`` belong to the run: pass the run's own so that its judge calls are judged once
    and metered with its other calls (role ``"judge"``). ``stats`` counts calls, retries and failures.
    """

    def __init__(
        self,
        config: JudgeConfig,
        *,
        endpoint: Endpoint | None = None,
        policy: RetryPolicy | None = None,
        cache: VerdictCache | None = None,
        meter: UsageMeter | None = None,
    ):
        self.config = config
        self.endpoint = endpoint or resolve_endpoint(config.models)
        self.policy = policy or RetryPolicy(max_retries=config.models.max_retries)
        self.cache = cache if cache is not None else VerdictCache()
        self.meter = meter if meter is not None else UsageMeter()
        self.stats = CallStats()
        self.failed_pairs: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._mlflow_judge: Any = None

    def __repr__(self) -> str:
        return f"LLMJudge({self.config.public_dict()})"

    def judge(self, question: str | Mapping[str, Any], output: str, expected: str) -> Verdict:
        """The verdict on ``output``; cached per (output, expected). ``question`` is the example's inputs
        (a mapping of template variables, or the question text). Raises :class:`JudgeError` after every
        retry failed, :class:`~core.models.ModelAccessError` when the endpoint refuses the key or model."""
        inputs = dict(question) if isinstance(question, Mapping) else {"question": question}
        try:
            return self.cache.get_or_judge(output, expected, lambda: self._call(inputs, output, expected))
        except JudgeError:
            with self._lock:
                self.failed_pairs.add((output, expected))
            raise

    def rationale_of(self, output: str, expected: str) -> str | None:
        """Why the judge scored this pair as it did (the failure said as such when it gave no verdict);
        None when it has not judged it."""
        verdict = self.cache.peek(output, expected)
        if verdict is not None:
            return verdict.rationale
        with self._lock:
            failed = (output, expected) in self.failed_pairs
        return f"{JUDGE_FAILED_PREFIX} after its retries, so this example scored 0." if failed else None

    def _judge_object(self) -> Any:
        with self._lock:
            if self._mlflow_judge is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                from typing import Literal

                from mlflow.genai.judges import make_judge

                self._mlflow_judge = make_judge(
                    name=JUDGE_NAME,
                    instructions=JUDGE_INSTRUCTIONS,
                    model=self.config.mlflow_model_uri,
                    feedback_value_type=Literal["yes", "no"],
                    base_url=self.endpoint.base_url,
                    # Merged last into litellm.completion's keyword arguments (see the module docstring);
                    # the key is here, so this object is never shown or logged.
                    inference_params={
                        "api_key": self.endpoint.api_key,
                        "timeout": self.config.models.timeout_seconds,
                        "retry_policy": None,
                    },
                )
            return self._mlflow_judge

    def _call(self, inputs: dict[str, Any], output: str, expected: str) -> Verdict:
        from mlflow.tracing.constant import AssessmentMetadataKey

        mlflow_judge = self._judge_object()

        def attempt() -> Verdict:
            started = time.perf_counter()
            try:
                feedback = mlflow_judge(inputs=inputs, outputs=output, expectations={"expected_response": expected})
            except Exception as error:  # noqa: BLE001 - classified by call_with_retries
                raise _unwrap(error) from None
            score = _verdict_score(feedback.value)
            metadata = feedback.metadata or {}
            self.meter.record(
                "judge",
                prompt_tokens=metadata.get(AssessmentMetadataKey.JUDGE_INPUT_TOKENS),
                completion_tokens=metadata.get(AssessmentMetadataKey.JUDGE_OUTPUT_TOKENS),
                seconds=time.perf_counter() - started,
            )
            return Verdict(score, feedback.rationale or "")

        try:
            return call_with_retries(
                attempt,
                who="judge model",
                model=self.config.judge_model,
                base_url=self.endpoint.base_url,
                policy=self.policy,
                stats=self.stats,
                secrets=(self.endpoint.api_key, self.config.models.api_key),
            )
        except ModelAccessError:
            raise
        except ModelCallError as error:
            raise JudgeError(str(error)) from None


def check_judge(
    config: JudgeConfig, *, meter: UsageMeter | None = None, policy: RetryPolicy | None = None
) -> ModelCheck:
    """One real judgement through MLflow (:data:`CHECK_PAIR`), proving the judge answers and its verdict
    can be read; its usage is recorded in ``meter`` (role ``"judge"``). Imports MLflow's judges and
    litellm: seconds on a cold process, so not for a status line."""
    started = time.perf_counter()
    policy = policy or RetryPolicy(max_retries=2, base_delay=0.2, max_delay=1.0, max_wait=5.0)
    probe_meter = UsageMeter()
    judge = LLMJudge(config, policy=policy, meter=probe_meter)
    try:
        verdict = judge.judge(*CHECK_PAIR)
    except ModelError as error:
        return ModelCheck("judge", config.judge_model, False, str(error), time.perf_counter() - started)
    if meter is not None:
        meter.add(probe_meter)
    said = "yes" if verdict.score else "no"
    message = f"{config.judge_model} judges (said {said} to {CHECK_PAIR[1]!r} for {CHECK_PAIR[2]!r})"
    return ModelCheck(
        "judge", config.judge_model, True, message, time.perf_counter() - started, probe_meter.usage("judge")
    )


# --------------------------------------------------------------------------------------------------
# Where the judge and exact match disagree
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """The 2x2 table of judge against exact match over the same outputs, and where they disagree.

    A score of at least 0.5 counts as right. ``judge_only``: positions the judge accepts and exact match
    rejects; ``exact_only``: the reverse.
    """

    both_right: int
    both_wrong: int
    judge_only: tuple[int, ...]
    exact_only: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.both_right + self.both_wrong + len(self.judge_only) + len(self.exact_only)

    @property
    def disagreements(self) -> tuple[int, ...]:
        return tuple(sorted(self.judge_only + self.exact_only))

    @property
    def rate(self) -> float | None:
        """Share of outputs on which the two agree; None for no outputs."""
        return (self.both_right + self.both_wrong) / self.total if self.total else None

    def table(self) -> list[dict[str, Any]]:
        """Rows of the 2x2 table: judge verdict by exact-match verdict, with counts."""
        return [
            {"judge": "right", "exact match right": self.both_right, "exact match wrong": len(self.judge_only)},
            {"judge": "wrong", "exact match right": len(self.exact_only), "exact match wrong": self.both_wrong},
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "both_right": self.both_right,
            "both_wrong": self.both_wrong,
            "judge_only": list(self.judge_only),
            "exact_only": list(self.exact_only),
        }


def agreement(judge_scores: Sequence[float], exact_scores: Sequence[float]) -> Agreement:
    """Where the judge and exact match agree and disagree on the same outputs, position by position."""
    if len(judge_scores) != len(exact_scores):
        raise ValueError(
            f"There are {len(judge_scores)} judge scores and {len(exact_scores)} exact-match scores: "
            "give one of each per output."
        )
    cells: dict[tuple[bool, bool], list[int]] = {(j, e): [] for j in (True, False) for e in (True, False)}
    for position, (judge, exact) in enumerate(zip(judge_scores, exact_scores, strict=True)):
        cells[(judge >= 0.5, exact >= 0.5)].append(position)
    return Agreement(
        both_right=len(cells[(True, True)]),
        both_wrong=len(cells[(False, False)]),
        judge_only=tuple(cells[(True, False)]),
        exact_only=tuple(cells[(False, True)]),
    )


def agreement_lesson(result: Agreement, outputs: Sequence[str] = (), expected: Sequence[str] = ()) -> str:
    """One sentence on what the table means; with ``outputs`` and ``expected`` it quotes a disagreement."""

    def example(positions: tuple[int, ...]) -> str:
        if not positions or len(outputs) <= positions[0] or len(expected) <= positions[0]:
            return ""
        first = positions[0]
        return f" (for example {json.dumps(outputs[first])} for {json.dumps(expected[first])})"

    n, judge_only, exact_only = result.total, len(result.judge_only), len(result.exact_only)
    if n == 0:
        return "There are no outputs to compare."
    if not judge_only and not exact_only:
        return f"The judge and exact match agree on all {n} outputs, so here the free scorer measures the same."
    if judge_only and not exact_only:
        return (
            f"The judge accepts {judge_only} of {n} outputs that exact match rejects{example(result.judge_only)}, "
            "and never the reverse: exact match scores the form, so it undercounts right answers."
        )
    if exact_only and not judge_only:
        return (
            f"The judge rejects {exact_only} of {n} outputs that exact match accepts{example(result.exact_only)}: "
            "read its rationales, a judge that fails right answers is costing you signal."
        )
    return (
        f"They disagree on {judge_only + exact_only} of {n} outputs in both directions ({judge_only} accepted only "
        f"by the judge{example(result.judge_only)}, {exact_only} only by exact match{example(result.exact_only)}): "
        "read those outputs before trusting either score."
    )


def judge_scoring(judge: LLMJudge) -> Callable[[Mapping[str, Any], str, str], tuple[float, str]]:
    """Score an (inputs, output, expected) triple with the run's judge outside GEPA (the final
    evaluation, the test set), as :func:`core.scorers.to_mlflow_scorer` does inside it: a failed
    prediction scores 0 without a call; a judge that fails after its retries scores 0 with a
    :data:`JUDGE_FAILED_PREFIX` rationale and is counted in ``judge.stats``."""
    from core.scorers import is_failed_prediction

    def score(inputs: Mapping[str, Any], output: str, expected: str) -> tuple[float, str]:
        if is_failed_prediction(output):
            return 0.0, "The model call failed, so there is no answer to judge."
        try:
            verdict = judge.judge(inputs, output, expected)
        except JudgeError as error:
            return 0.0, f"{JUDGE_FAILED_PREFIX}: {error}"
        return verdict.score, verdict.rationale

    return score


def is_judge_failure(rationale: str) -> bool:
    return rationale.startswith(JUDGE_FAILED_PREFIX)
