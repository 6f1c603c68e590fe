"""Prices per million tokens, and what a tally of usage costs per role and in total.

A price comes from the user (:meth:`Price.parse`, text like ``0.15,0.60``: dollars per million input
and output tokens), from litellm's bundled cost map for the model names it knows when the model is
OpenAI's own, or is the offline demo model's zero, labelled simulated. Anything else is **unknown**
(None), never a made-up zero: a model on an OpenAI-compatible endpoint is priced by whoever runs it.

The cost map is the JSON file litellm ships and loads itself when ``LITELLM_LOCAL_MODEL_COST_MAP=True``
(``model_prices_and_context_window_backup.json``, read by ``litellm/litellm_core_utils/
get_model_cost_map.py``). Importing litellm to get ``litellm.model_cost`` takes 2.6 to 4 s here; reading
that file takes 12 to 19 ms, so this module reads it (once, on first use) and never imports litellm.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from core.models import ROLES, ModelConfig, Role, Usage

COST_MAP_FILE = "model_prices_and_context_window_backup.json"
PriceSource = Literal["cost map", "user", "simulated"]
_PRICE_TEXT = re.compile(r"^\s*\$?\s*([0-9]*\.?[0-9]+)\s*[,;/]\s*\$?\s*([0-9]*\.?[0-9]+)\s*$")


@dataclass(frozen=True)
class Price:
    """Dollars per million input (prompt) and output (completion) tokens, and where they come from."""

    input_per_million: float
    output_per_million: float
    source: PriceSource = "user"

    def __post_init__(self) -> None:
        for value in (self.input_per_million, self.output_per_million):
            if not math.isfinite(value) or value < 0:
                raise ValueError("A price is a number of dollars per million tokens, 0 or more.")

    @classmethod
    def parse(cls, text: str) -> Price:
        """``"0.15,0.60"``: input then output dollars per million tokens (``$`` and spaces allowed)."""
        match = _PRICE_TEXT.match(text or "")
        if not match:
            raise ValueError(
                f"The price '{(text or '').strip()[:40]}' is not two numbers: write dollars per million input "
                "and output tokens, for example 0.15,0.60."
            )
        return cls(float(match.group(1)), float(match.group(2)), "user")

    @property
    def simulated(self) -> bool:
        return self.source == "simulated"

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1_000_000

    @property
    def label(self) -> str:
        if self.simulated:
            return "free: simulated model"
        return f"${self.input_per_million:g} in / ${self.output_per_million:g} out per million tokens ({self.source})"


SIMULATED_PRICE = Price(0.0, 0.0, "simulated")


def _cost_map_path() -> Path | None:
    spec = importlib.util.find_spec("litellm")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / COST_MAP_FILE
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def cost_map() -> Mapping[str, Mapping[str, Any]]:
    """litellm's bundled cost map, read once; empty when litellm or its file is missing."""
    path = _cost_map_path()
    if path is None:
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def known_price(model: str) -> Price | None:
    """The cost map's price for a model name (``gpt-4o-mini``, ``openai/gpt-4o-mini``), or None."""
    entries = cost_map()
    for name in dict.fromkeys((model, model.split("/", 1)[-1])):
        entry = entries.get(name)
        if not isinstance(entry, Mapping) or name == "sample_spec":
            continue
        per_input, per_output = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if isinstance(per_input, int | float) and isinstance(per_output, int | float):
            return Price(per_input * 1_000_000, per_output * 1_000_000, "cost map")
    return None


def _is_openai_itself(config: ModelConfig) -> bool:
    if config.provider != "openai":
        return False
    return config.base_url is None or urlsplit(config.base_url).hostname == "api.openai.com"


def price_for(config: ModelConfig, model: str, user_price: Price | None = None) -> Price | None:
    """What ``model`` costs on ``config``'s endpoint: the user's price, else the simulated zero for the
    offline model, else the cost map's price when the endpoint is OpenAI's own, else unknown (None)."""
    if user_price is not None:
        return user_price
    if config.is_offline:
        return SIMULATED_PRICE
    return known_price(model) if _is_openai_itself(config) else None


def run_prices(
    config: ModelConfig, *, judge_model: str | None = None, user_prices: Mapping[Role, Price] | None = None
) -> dict[Role, Price | None]:
    """The price of each role's model (the judge's by default is the task model's)."""
    user_prices = user_prices or {}
    names: dict[Role, str] = {
        "task": config.task_model,
        "reflection": config.reflection_model_name,
        "judge": judge_model or config.task_model,
    }
    return {role: price_for(config, names[role], user_prices.get(role)) for role in ROLES}


@dataclass(frozen=True)
class Cost:
    """Dollars per role (None: unknown, because the role's price is unknown or some of its responses
    reported no usage) and in total (None when any role that was used is unknown)."""

    by_role: Mapping[Role, float | None]
    simulated: bool = False

    @property
    def total(self) -> float | None:
        values = list(self.by_role.values())
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    def describe(self) -> str:
        """One line: ``$0.0412 (task $0.0210, reflection $0.0150, judge $0.0052)``, or why it is unknown."""
        if self.simulated:
            return "$0 (simulated model: no money is spent)"
        unknown = [role for role, value in self.by_role.items() if value is None]
        parts = ", ".join(f"{role} {_dollars(value)}" for role, value in self.by_role.items() if value is not None)
        if unknown:
            return f"unknown: no price for the {' and '.join(unknown)} model" + (f" (known: {parts})" if parts else "")
        return f"{_dollars(self.total)} ({parts})" if parts else "$0"

    def to_dict(self) -> dict[str, Any]:
        return {"by_role": dict(self.by_role), "total": self.total, "simulated": self.simulated}


def _dollars(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def cost_of(usage: Mapping[Role, Usage], prices: Mapping[Role, Price | None]) -> Cost:
    """What a usage tally cost. A role that made no calls costs 0 whatever its price."""
    by_role: dict[Role, float | None] = {}
    used_prices = []
    for role, tally in usage.items():
        if not tally.responses:
            continue
        price = prices.get(role)
        used_prices.append(price)
        if price is None or tally.unreported:
            by_role[role] = None
        else:
            by_role[role] = price.cost(tally.prompt_tokens, tally.completion_tokens)
    simulated = bool(used_prices) and all(p is not None and p.simulated for p in used_prices)
    return Cost(by_role, simulated)
