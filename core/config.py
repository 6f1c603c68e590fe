"""The settings of one optimization, validated before any work starts.

:class:`OptimizationConfig` is what a page or the CLI builds from a user's choices; it refuses
unusable settings with a message a user can act on (:class:`~core.errors.ConfigError`). Its public
form (:meth:`OptimizationConfig.to_dict`, never a key) goes into the run folder and the event log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.budget import DEFAULT_BUDGET, DEFAULT_PATIENCE
from core.errors import ConfigError
from core.models import ModelConfig
from core.scorers import ScorerSpec
from core.templates import check_template

Selection = Literal["pareto", "current_best"]
SELECTIONS: tuple[Selection, ...] = ("pareto", "current_best")
DEFAULT_EXPERIMENT = "GEPA Explorer"


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
        test_dataset_path: a separate test file (either shape, the dataset's fields), scored once at
            the end and never seen by the search.
        test_fraction: hold out this share of the dataset's rows for test, before the validation split.
        validation_fraction: hold out this share of the remaining rows for validation; 0 validates on
            the training rows (MLflow's default, where train and validation are the same rows).
            When none of the three is given, a bundled dataset's declared split applies (the default
            set: 30 test, 30 validation, 30 train); 0 for both fractions turns it off.
        split_seed: shuffles the rows before they are split, apart from ``seed`` (GEPA's own
            randomness), so runs repeated over seeds are scored on the same held-out rows.
        task_price, reflection_price, judge_price: dollars per million input and output tokens of that
            role's model, when litellm's cost map does not know it (or to override it).
        score_candidates_on_test: after the search, score every candidate on the test set (one call per
            candidate and test row, outside the budget); None: on for the offline demo model, off for
            real models, whose calls cost money. Baseline and best are scored on it either way.
        concurrency: model calls in flight at once while scoring a batch.
        group: the id shared by the runs of one repeat over seeds (:mod:`core.groups`).
        participant: who of a class runs it (:mod:`core.participants`): tags the run and prefixes the
            prompt its best candidate is registered into.
    """

    dataset_path: str | None = None
    prompt_uri: str | None = None
    prompt_name: str | None = None
    template: str | None = None
    scorer: ScorerSpec = field(default_factory=ScorerSpec)
    budget: int = DEFAULT_BUDGET
    patience: int = DEFAULT_PATIENCE
    minibatch_size: int = 3
    selection: Selection = "pareto"
    seed: int = 0
    test_dataset_path: str | None = None
    test_fraction: float | None = None
    validation_fraction: float | None = None
    split_seed: int = 0
    score_candidates_on_test: bool | None = None
    task_price: tuple[float, float] | None = None
    reflection_price: tuple[float, float] | None = None
    judge_price: tuple[float, float] | None = None
    models: ModelConfig = field(default_factory=ModelConfig)
    concurrency: int = 8
    register: bool = True
    stop_on_perfect: bool = True
    tracking_uri: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    run_name: str | None = None
    group: str | None = None
    participant: str | None = None

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ConfigError(f"The budget must be at least 1 metric call (try {DEFAULT_BUDGET}).")
        if self.patience < 0:
            raise ConfigError("Patience must be 0 (never stop early) or more iterations.")
        if not 1 <= self.minibatch_size <= 100:
            raise ConfigError("The minibatch size must be between 1 and 100 (GEPA's default is 3).")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"Unknown selection '{self.selection}': choose pareto or current_best.")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError("Concurrency must be between 1 and 64 calls at once.")
        for name, value in (("validation", self.validation_fraction), ("test", self.test_fraction)):
            if value is not None and not 0 <= value < 1:
                raise ConfigError(
                    f"The {name} fraction must be 0 or more and below 1 (for example 0.3), or left empty."
                )
        for role, price in (
            ("task", self.task_price),
            ("reflection", self.reflection_price),
            ("judge", self.judge_price),
        ):
            if price is not None and (len(price) != 2 or any(not isinstance(v, int | float) or v < 0 for v in price)):
                raise ConfigError(
                    f"The {role} price must be two numbers of dollars per million input and output tokens, "
                    "0 or more (for example 0.15,0.60)."
                )
        if self.participant is not None:
            from core.participants import participant_name

            if participant_name(self.participant) != self.participant:
                raise ConfigError(f"'{self.participant}' is not a participant name: use lower-case letters and digits.")
        if self.test_dataset_path and self.test_fraction:
            raise ConfigError("Give either a test file or a test fraction, not both.")
        if self.prompt_uri and self.template:
            raise ConfigError("Give either a prompt URI or a template with a prompt name, not both.")
        if self.template is not None and not self.prompt_name:
            raise ConfigError("A template needs a prompt name to be registered under (--prompt-name).")
        if self.template is not None:
            check = check_template(self.template)
            if not check.ok:
                raise ConfigError(check.problems[0])

    @property
    def scores_candidates_on_test(self) -> bool:
        """Whether every candidate is scored on the test set (see ``score_candidates_on_test``)."""
        return self.models.is_offline if self.score_candidates_on_test is None else self.score_candidates_on_test

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form with no secret (the API key stays in :class:`ModelConfig` only)."""
        data = dataclasses.asdict(self)
        data["scorer"] = {
            "kind": self.scorer.kind,
            "normalization": list(self.scorer.normalization),
            "judge_model": self.scorer.judge_model,
        }
        models = data["models"]
        models.pop("api_key", None)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, api_key: str | None = None) -> OptimizationConfig:
        values = dict(data)
        scorer = values.pop("scorer", None) or {}
        models = dict(values.pop("models", None) or {})
        models["api_key"] = api_key
        for price in ("task_price", "reflection_price", "judge_price"):
            if values.get(price) is not None:
                values[price] = tuple(values[price])
        return cls(
            scorer=ScorerSpec(
                scorer.get("kind", "exact_match"), tuple(scorer.get("normalization", ())), scorer.get("judge_model")
            ),
            models=ModelConfig(**models),
            **values,
        )
