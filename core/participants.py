"""Each participant of a class in their own space on one shared app and store.

A participant's name tags every run they start (``gepa_explorer.participant``) and prefixes the prompts
their runs register (``alice.short-answer-qa``), so thirty people optimizing the same bundled prompt
never add versions to each other's prompts. The run list filters to "mine" or "everyone"; the class
view puts everyone's runs on one dataset side by side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core import tags
from core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")


def participant_name(text: str) -> str | None:
    """The participant name in ``text`` (trimmed, lower-cased); None for an empty one.

    Raises:
        ConfigError: not 1 to 31 letters, digits, '-' or '_' starting with a letter or digit.
    """
    name = text.strip().lower()
    if not name:
        return None
    if not NAME_RULE.match(name):
        raise ConfigError(
            f"'{text.strip()}' is not a participant name: use 1 to 31 letters, digits, '-' or '_' "
            "(for example alice or team-3)."
        )
    return name


def prompt_name_for(participant: str | None, base: str) -> str:
    """The prompt a participant's run registers into: ``participant.base`` (``base`` alone without one)."""
    if not participant or base.startswith(f"{participant}."):
        return base
    return f"{participant}.{base}"


def runs_of(runs: Sequence[Any], participant: str | None) -> list[Any]:
    """The runs ``participant`` started (every run for None)."""
    if participant is None:
        return list(runs)
    return [run for run in runs if run.tags.get(tags.PARTICIPANT) == participant]


def class_table(runs: Sequence[Any], *, dataset: str | None = None) -> pd.DataFrame:
    """One row per finished run of the class (on ``dataset`` only, when given): who, the best validation
    and test scores, metric calls, budget, patience, seed, cost, how it stopped. Newest first."""
    import pandas as pd

    rows = []
    for run in runs:
        if run.status == "RUNNING" or (dataset is not None and run.dataset != dataset):
            continue
        metrics, params = run.metrics, run.params
        rows.append(
            {
                "participant": run.tags.get(tags.PARTICIPANT, "(none)"),
                "validation before": metrics.get("initial_eval_score"),
                "validation after": metrics.get("final_eval_score"),
                "test after": metrics.get("test_best_score"),
                "metric calls": metrics.get("metric_calls"),
                "budget": _number(params.get("budget")),
                "patience": _number(params.get("patience")),
                "seed": _number(params.get("seed")),
                "scorer": run.scorer,
                "cost": metrics.get("cost_usd"),
                "stopped by": run.stopped_by,
                "run id": run.run_id,
            }
        )
    columns = [
        "participant",
        "validation before",
        "validation after",
        "test after",
        "metric calls",
        "budget",
        "patience",
        "seed",
        "scorer",
        "cost",
        "stopped by",
        "run id",
    ]
    return pd.DataFrame(rows, columns=columns)


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
