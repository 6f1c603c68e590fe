"""Repeats over seeds: the same settings run with several seeds at once, each in its own process, and
read back as a group, so a class compares distributions instead of single lucky runs.

The runs of a group share the ``gepa_explorer.group`` tag (and ``group`` in their config); their
splits are the same rows whatever the seed (``split_seed`` is not the search's ``seed``).
"""

from __future__ import annotations

import dataclasses
import statistics
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from core.analysis import RunView
    from core.config import OptimizationConfig
    from core.runs import RunHandle

SCORE_KEYS = ("initial_score", "final_score", "test_initial_score", "test_final_score")
MAX_SEEDS = 10


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; ``"0-4"`` -> [0, 1, 2, 3, 4]. Distinct, at most :data:`MAX_SEEDS`.

    Raises:
        ConfigError: not whole numbers, a repeat, or too many.
    """
    from core.errors import ConfigError

    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            if "-" in part.lstrip("-"):
                low, high = (int(v) for v in part.split("-", 1))
                seeds.extend(range(low, high + 1))
            elif part:
                seeds.append(int(part))
        except ValueError:
            raise ConfigError(f"'{text}' is not a list of seeds: write them like 0,1,2 or 0-4.") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"'{text}' is not a list of seeds: write them like 0,1,2 or 0-4.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"The seeds {text} repeat one: each seed runs once.")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"{len(seeds)} seeds are too many to run at once here: give at most {MAX_SEEDS}.")
    return seeds


def new_group_id() -> str:
    return uuid.uuid4().hex[:12]


def group_configs(config: OptimizationConfig, seeds: Sequence[int], group: str) -> list[OptimizationConfig]:
    """One config per seed, the rest unchanged, all in ``group``."""
    return [dataclasses.replace(config, seed=seed, group=group) for seed in seeds]


def start_group(config: OptimizationConfig, seeds: Sequence[int], *, group: str | None = None) -> list[RunHandle]:
    """Start one run per seed at once, each in its own process (see :func:`core.runs.start_run`)."""
    from core.runs import start_run

    group = group or new_group_id()
    return [start_run(one) for one in group_configs(config, seeds, group)]


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation of one score over a group's runs (``n`` of them had it)."""

    mean: float | None
    std: float | None
    n: int


def spread(values: Sequence[float | None]) -> Spread:
    known = [float(v) for v in values if v is not None]
    if not known:
        return Spread(None, None, 0)
    return Spread(statistics.fmean(known), statistics.stdev(known) if len(known) > 1 else 0.0, len(known))


def aggregate(summaries: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Mean and standard deviation of each score over the runs' summaries (CLI summary dicts)."""
    return {key: dataclasses.asdict(spread([s.get(key) for s in summaries])) for key in SCORE_KEYS}


def group_table(views: Sequence[RunView]) -> pd.DataFrame:
    """One row per run of a group: seed, validation and test scores before and after, iterations,
    metric calls, how it stopped. Sorted by seed."""
    import pandas as pd

    rows = []
    for view in views:
        evaluation = view.final_evaluation
        rows.append(
            {
                "seed": view.seed,
                "validation before": view.initial_score,
                "validation after": view.final_score,
                "test before": evaluation.test_baseline.aggregate if evaluation and evaluation.test_baseline else None,
                "test after": evaluation.test_best.aggregate if evaluation and evaluation.test_best else None,
                "iterations": view.iterations,
                "metric calls": view.metric_calls,
                "stopped by": view.stopped_by or "still running",
                "run id": view.run_id,
            }
        )
    return pd.DataFrame(rows).sort_values("seed", ignore_index=True)


def what_if_over_group(
    views: Sequence[RunView], budgets: Sequence[int], patiences: Sequence[int | None]
) -> pd.DataFrame:
    """:func:`core.analysis.what_if` replayed on every run of a group: per (budget, patience), the mean,
    lowest and highest best validation score the runs would have ended with, and how many runs."""
    import pandas as pd

    from core.analysis import what_if

    tables = [what_if(view, budgets, patiences) for view in views if view.candidates]
    if not tables:
        return pd.DataFrame(columns=["budget", "patience", "best_score", "lowest", "highest", "runs"])
    stacked = pd.concat(tables, ignore_index=True)
    stacked["patience"] = stacked["patience"].map(lambda p: 0 if p is None else int(p))
    grouped = stacked.groupby(["budget", "patience"], sort=False)["best_score"]
    table = grouped.agg(best_score="mean", lowest="min", highest="max", runs="count").reset_index()
    table["patience"] = table["patience"].map(lambda p: None if p == 0 else int(p)).astype(object)
    table["beyond_recording"] = False
    return table
