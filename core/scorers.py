"""Scorers: exact match with normalisation switches, token F1, contains-answer, and the LLM judge.

Each scorer compares a model output with the expected answer and returns a score in [0, 1]. The first
three are pure Python (:data:`SCORER_KINDS`); the LLM judge (``llm_judge``) asks a judge model and is
run by :class:`core.judges.LLMJudge`, which a run owns: :meth:`ScorerSpec.score` cannot judge.
Normalisation follows the SQuAD evaluation script, with every step switchable on its own:

* ``case``: lower-case both texts;
* ``punctuation``: drop punctuation characters (any Unicode punctuation, not only ASCII);
* ``articles``: drop the words *a*, *an*, *the* wherever they stand (SQuAD drops them everywhere);
* ``whitespace``: trim the ends and collapse inner runs of white space to one space.

:func:`to_mlflow_scorer` wraps a :class:`ScorerSpec` as an MLflow scorer for
``mlflow.genai.optimize_prompts`` and ``mlflow.genai.evaluate``; MLflow is imported only there.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from core.errors import ConfigError

if TYPE_CHECKING:
    from mlflow.genai.scorers import Scorer

    from core.judges import LLMJudge

ScorerKind = Literal["exact_match", "f1", "contains", "llm_judge"]
Normalization = Literal["case", "whitespace", "punctuation", "articles"]

ALL_SCORER_KINDS: tuple[ScorerKind, ...] = get_args(ScorerKind)
# Computed from the two texts alone, no model call: what compare_scorers and previews can run anywhere.
SCORER_KINDS: tuple[ScorerKind, ...] = ("exact_match", "f1", "contains")
ALL_NORMALIZATIONS: tuple[Normalization, ...] = ("case", "whitespace", "punctuation", "articles")
DEFAULT_NORMALIZATION: tuple[Normalization, ...] = ("case", "whitespace")
SCORER_LABELS: dict[ScorerKind, str] = {
    "exact_match": "Exact match",
    "f1": "Token F1",
    "contains": "Contains answer",
    "llm_judge": "LLM judge",
}
# MLflow turns an exception raised by predict_fn into an output string starting with this.
FAILED_PREDICTION_PREFIX = "Failed to invoke the predict_fn"

_ARTICLES = re.compile(r"\b(?:a|an|the)\b\s*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def normalize(text: str, steps: Iterable[Normalization]) -> str:
    """Apply the chosen normalisation steps in SQuAD order: case, punctuation, articles, spaces."""
    chosen = set(steps)
    if "case" in chosen:
        text = text.lower()
    if "punctuation" in chosen:
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    if "articles" in chosen:
        text = _ARTICLES.sub("", text)
    if "whitespace" in chosen:
        text = _SPACES.sub(" ", text).strip()
    return text


def exact_match(output: str, expected: str, *, steps: Iterable[Normalization] = DEFAULT_NORMALIZATION) -> float:
    """1.0 when the normalised output equals the normalised expected answer, else 0.0."""
    steps = tuple(steps)
    return float(normalize(output, steps) == normalize(expected, steps))


def token_f1(output: str, expected: str, *, steps: Iterable[Normalization] = DEFAULT_NORMALIZATION) -> float:
    """Harmonic mean of token precision and recall (SQuAD's F1), on normalised texts.

    Tokens are split on white space. Two empty texts score 1.0; one empty text scores 0.0.
    """
    steps = tuple(steps)
    out_tokens = normalize(output, steps).split()
    exp_tokens = normalize(expected, steps).split()
    if not out_tokens or not exp_tokens:
        return float(out_tokens == exp_tokens)
    common = Counter(out_tokens) & Counter(exp_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(out_tokens)
    recall = overlap / len(exp_tokens)
    return 2 * precision * recall / (precision + recall)


def contains_answer(output: str, expected: str, *, steps: Iterable[Normalization] = DEFAULT_NORMALIZATION) -> float:
    """1.0 when the normalised expected answer appears in the output as whole words.

    "no" is not found in "not"; "Paris" is found in "It is Paris.".
    """
    steps = tuple(steps)
    needle = normalize(expected, steps)
    if not needle.strip():
        return 0.0
    pattern = r"(?<!\w)" + re.escape(needle) + r"(?!\w)"
    return float(re.search(pattern, normalize(output, steps)) is not None)


_SCORE_FUNCTIONS = {"exact_match": exact_match, "f1": token_f1, "contains": contains_answer}


@dataclass(frozen=True)
class ScorerSpec:
    """Which scorer, with which normalisation. Validates itself on creation.

    For the LLM judge, ``judge_model`` names the judge (None: the task model) and ``normalization`` is
    the exact match it is compared with (:func:`core.judges.agreement`).
    """

    kind: ScorerKind = "exact_match"
    normalization: tuple[Normalization, ...] = DEFAULT_NORMALIZATION
    judge_model: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ALL_SCORER_KINDS:
            raise ConfigError(f"Unknown scorer '{self.kind}': choose one of {', '.join(ALL_SCORER_KINDS)}.")
        unknown = [s for s in self.normalization if s not in ALL_NORMALIZATIONS]
        if unknown:
            raise ConfigError(
                f"Unknown normalisation '{unknown[0]}': choose from {', '.join(ALL_NORMALIZATIONS)} or none."
            )
        if self.judge_model is not None and self.kind != "llm_judge":
            raise ConfigError("A judge model only applies to the LLM judge scorer (llm_judge).")
        if self.judge_model is not None and not self.judge_model.strip():
            raise ConfigError("The judge model name is empty: give a name, or leave it out to use the task model.")
        ordered = tuple(s for s in ALL_NORMALIZATIONS if s in self.normalization)
        object.__setattr__(self, "normalization", ordered)

    @classmethod
    def parse(cls, kind: str, normalization: str, judge_model: str | None = None) -> ScorerSpec:
        """Build from CLI-style text: ``normalization`` is comma-separated steps, or ``none``."""
        text = normalization.strip().lower()
        steps = () if text in ("", "none") else tuple(s.strip() for s in text.split(",") if s.strip())
        judge = judge_model.strip() if judge_model is not None else None
        return cls(kind=kind, normalization=steps, judge_model=judge)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        return self.kind

    @property
    def needs_model(self) -> bool:
        """True for the LLM judge: scoring calls a model, costs money and can fail."""
        return self.kind == "llm_judge"

    @property
    def label(self) -> str:
        if self.needs_model:
            return f"{SCORER_LABELS[self.kind]} ({self.judge_model or 'the task model'})"
        steps = ", ".join(self.normalization) if self.normalization else "no normalisation"
        return f"{SCORER_LABELS[self.kind]} ({steps})"

    def score(self, output: str, expected: str) -> float:
        if is_failed_prediction(output):
            return 0.0
        self._refuse_judge()
        return _SCORE_FUNCTIONS[self.kind](output, expected, steps=self.normalization)

    def normalized(self, text: str) -> str:
        return normalize(text, self.normalization)

    def explain(self, output: str, expected: str) -> str:
        """One sentence a reflection model (or a person) can act on."""
        if is_failed_prediction(output):
            return "The model call failed, so there is no answer to score."
        value = self.score(output, expected)
        steps = ", ".join(self.normalization) if self.normalization else "nothing"
        got, want = self.normalized(output), self.normalized(expected)
        if self.kind == "exact_match":
            verdict = "matches" if value == 1.0 else "does not match"
            return (
                f"The response {verdict} the expected answer exactly (after normalising {steps}): "
                f"expected '{want}', got '{got}'."
            )
        if self.kind == "contains":
            verdict = "contains" if value == 1.0 else "does not contain"
            return f"The response {verdict} the expected answer '{want}' (after normalising {steps})."
        return f"Token F1 {value:.2f} between the response '{got}' and the expected answer '{want}'."

    def _refuse_judge(self) -> None:
        if self.needs_model:
            raise ValueError(
                "The LLM judge calls a model, so it cannot score from the texts alone: "
                "judge with core.judges.LLMJudge (or wrap one with to_mlflow_scorer(spec, judge=...))."
            )


def sample_outputs(expected: str) -> list[str]:
    """Typical ways a chat model answers when ``expected`` is right: for previewing what a scorer
    and its normalisation count as a match."""
    variants = [expected, f"{expected}.", expected.upper(), f"The {expected}", f"The answer is {expected}."]
    return list(dict.fromkeys(variants))


def preview(spec: ScorerSpec, pairs: Iterable[tuple[str, str]]) -> list[dict[str, object]]:
    """One row per (output, expected) pair: both texts, their normalised forms and the score."""
    return [
        {
            "output": output,
            "expected": expected,
            "normalised output": spec.normalized(output),
            "normalised expected": spec.normalized(expected),
            "score": spec.score(output, expected),
        }
        for output, expected in pairs
    ]


def simulated_judge_preview(
    pairs: Iterable[tuple[str, str]], normalization: Iterable[Normalization] = DEFAULT_NORMALIZATION
) -> list[dict[str, object]]:
    """One row per (output, expected) pair: the simulated judge's verdict and reason (its deterministic
    rules, :func:`core.offline_model.behaviour.judge_answer`, applied here without a call: the same
    rules the offline endpoint answers judge requests with) beside exact match with ``normalization``.
    A real judge model's verdicts cannot be previewed without calling it."""
    from core.offline_model.behaviour import judge_answer

    exact = ScorerSpec("exact_match", tuple(normalization))
    rows = []
    for output, expected in pairs:
        decision = judge_answer(output, expected)
        rows.append(
            {
                "output": output,
                "expected": expected,
                "score": 1.0 if decision.correct else 0.0,
                "exact match": exact.score(output, expected),
                "judge's reason": decision.rationale,
            }
        )
    return rows


def compare_scorers(
    expected: list[str], before: list[str], after: list[str], normalization: Iterable[Normalization]
) -> list[dict[str, object]]:
    """Mean score of ``before`` and ``after`` outputs under every scorer, with the same normalisation."""
    rows = []
    for kind in SCORER_KINDS:
        spec = ScorerSpec(kind, tuple(normalization))
        mean = [
            sum(spec.score(o, e) for o, e in zip(outputs, expected, strict=True)) / max(1, len(expected))
            for outputs in (before, after)
        ]
        rows.append({"scorer": spec.label, "baseline": mean[0], "optimized": mean[1], "change": mean[1] - mean[0]})
    return rows


Scoring = Callable[[Mapping[str, Any], str, str], tuple[float, str]]
"""Scores one (inputs, output, expected) triple: (score, the reason in a sentence)."""


def text_scoring(spec: ScorerSpec) -> Scoring:
    """A text scorer (exact match, F1, contains) as a :data:`Scoring`; the judge's is
    :func:`core.judges.judge_scoring`."""
    return lambda _inputs, output, expected: (spec.score(output, expected), spec.explain(output, expected))


def is_failed_prediction(output: object) -> bool:
    return isinstance(output, str) and output.startswith(FAILED_PREDICTION_PREFIX)


def to_mlflow_scorer(spec: ScorerSpec, *, judge: LLMJudge | None = None) -> Scorer:
    """Wrap ``spec`` as an MLflow scorer returning ``Feedback`` with a rationale.

    The LLM judge needs the run's ``judge``. A prediction that already failed is scored 0 without a
    judge call. A judge that fails after its retries gives ``Feedback`` with value 0.0 (GEPA needs a
    number), a rationale starting with :data:`core.judges.JUDGE_FAILED_PREFIX`, the error, and metadata
    ``{"judge_failed": True}``; it is counted in ``judge.stats``. A refused key or unknown judge model
    (:class:`~core.models.ModelAccessError`) is raised: every later call would fail the same way.
    """
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    if spec.needs_model:
        if judge is None:
            raise ValueError("The LLM judge scorer needs the run's judge: to_mlflow_scorer(spec, judge=LLMJudge(...)).")
        return _judge_scorer(spec, judge)

    def score(outputs: object, expectations: dict[str, object]) -> Feedback:
        output = "" if outputs is None else str(outputs)
        expected = str(expectations.get("expected_response", ""))
        return Feedback(value=spec.score(output, expected), rationale=spec.explain(output, expected))

    # timeout=0: these scorers are pure and instant; a timeout would cost a thread per metric call.
    return scorer(name=spec.name, timeout=0)(score)


def _judge_scorer(spec: ScorerSpec, judge: LLMJudge) -> Scorer:
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    from core.judges import JUDGE_FAILED_PREFIX, JudgeError

    def score(inputs: object, outputs: object, expectations: dict[str, object]) -> Feedback:
        output = "" if outputs is None else str(outputs)
        expected = str(expectations.get("expected_response", ""))
        if is_failed_prediction(output):
            return Feedback(value=0.0, rationale="The model call failed, so there is no answer to judge.")
        question = inputs if isinstance(inputs, dict) else {"question": str(inputs)}
        try:
            verdict = judge.judge(question, output, expected)
        except JudgeError as error:
            return Feedback(
                value=0.0,
                rationale=f"{JUDGE_FAILED_PREFIX}: {error}",
                error=error,
                metadata={"judge_failed": True},
            )
        return Feedback(value=verdict.score, rationale=verdict.rationale, metadata={"judge_cached": verdict.cached})

    # timeout=0: the judge's own calls time out (the model timeout) and are retried; no scorer thread.
    return scorer(name=spec.name, timeout=0)(score)
