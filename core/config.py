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
    experiment: str = DEFAULT_EXPERIMENT
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
