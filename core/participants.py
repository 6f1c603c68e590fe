"""Each participant of a class in their own space on one shared app and store.

A participant's name tags every run they start (``gepa_explorer.participant``) and prefixes the prompts
their runs register (``alice.short-answer-qa``), so thirty people optimizing the same bundled prompt
never add versions to each other's prompts. The run list filters to "mine" or "everyone"; the class
view puts everyone's runs on one dataset side by side (:func:`class_table`) and says in one sentence
what their budget and patience choices did (:func:`class_finding`). Pure: runs in, tables and text out.
"""

from __future__ import annotations

import re
from collections import Counter
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


NO_NAME = "(no name)"
"""How the class view names a run started without a participant name."""
CLASS_COLUMNS = (
    "participant",
    "best validation",
    "test",
    "metric calls",
    "budget",
    "patience",
    "scorer",
    "seed",
    "cost",
    "seconds",
    "status",
    "best of participant",
    "run",
    "run id",
    "started",
)
MIN_RUNS_PER_SIDE = 2
"""The fewest finished runs on each side of a comparison before :func:`class_finding` says anything."""


def class_datasets(runs: Sequence[Any]) -> list[tuple[str, int]]:
    """The datasets the runs used, each with its number of runs: the most used first (ties by name)."""
    counts = Counter(run.dataset or "?" for run in runs)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def class_table(runs: Sequence[Any], *, dataset: str | None = None) -> pd.DataFrame:
    """One row per run of the class (on ``dataset`` only, when given), in the order given (the store's:
    newest first), with :data:`CLASS_COLUMNS`.

    ``best validation`` is the run's best candidate's validation score and ``test`` that candidate's test
    score (None without a test set, or while the run is going); ``status`` is the run's own (running,
    finished, cancelled, failed). ``best of participant`` marks each participant's run with the highest
    best validation score (fewer metric calls break a tie, then the earlier run); runs without a name are
    one more participant, :data:`NO_NAME`.
    """
    import pandas as pd

    rows = []
    for run in runs:
        if dataset is not None and (run.dataset or "?") != dataset:
            continue
        metrics, params = run.metrics, run.params
        rows.append(
            {
                "participant": run.tags.get(tags.PARTICIPANT) or NO_NAME,
                "best validation": metrics.get("final_eval_score"),
                "test": metrics.get("test_best_score"),
                "metric calls": _whole(metrics.get("metric_calls")),
                "budget": _number(params.get("budget")),
                "patience": _number(params.get("patience")),
                "scorer": run.scorer or params.get("scorer", ""),
                "seed": _number(params.get("seed")),
                "cost": metrics.get("cost_usd"),
                "seconds": metrics.get("seconds"),
                "status": run.explorer_status,
                "best of participant": False,
                "run": run.name,
                "run id": run.run_id,
                "started": pd.Timestamp(run.start_ms, unit="ms") if run.start_ms else pd.NaT,
            }
        )
    table = pd.DataFrame(rows, columns=list(CLASS_COLUMNS))
    for column in ("metric calls", "budget", "patience", "seed"):
        table[column] = table[column].astype("Int64")
    for column in ("best validation", "test", "cost", "seconds"):
        table[column] = table[column].astype("float64")
    table["best of participant"] = table.index.isin(_best_rows(table))
    return table


def _best_rows(table: pd.DataFrame) -> list[Any]:
    scored = table[table["best validation"].notna()].copy()
    scored["order"] = range(len(scored))  # the table is newest first: a higher order is an earlier run
    ranked = scored.sort_values(
        ["best validation", "metric calls", "order"], ascending=[False, True, False], na_position="last"
    )
    return list(ranked.drop_duplicates("participant").index)


def best_of_each(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`class_table` marked best of their participant, best score first."""
    best = table[table["best of participant"]]
    return best.sort_values(["best validation", "participant"], ascending=[False, True])


def named_participants(table: pd.DataFrame) -> list[str]:
    """The participant names in the table, without :data:`NO_NAME`, sorted."""
    return sorted(name for name in set(table["participant"]) if name != NO_NAME)


def class_finding(table: pd.DataFrame) -> str | None:
    """One plain sentence on what the class's budget and patience choices did, computed from the finished
    runs of :func:`class_table`: runs without a patience (0) against runs with one, or else runs above
    the median budget against the others; the metric calls used and the best validation score, on
    average. Runs of different scorers are not compared: with several, only the most used one's runs
    count, and the sentence says so. None when either side has fewer than :data:`MIN_RUNS_PER_SIDE`
    runs."""
    done = table[
        (table["status"] == "finished")
        & table["best validation"].notna()
        & table["metric calls"].notna()
        & (table["metric calls"] > 0)
    ]
    if done.empty:
        return None
    scorers = done["scorer"].value_counts()
    scope = ""
    if len(scorers) > 1:
        scorer = sorted(scorers.index, key=lambda name: (-scorers[name], name))[0]
        done = done[done["scorer"] == scorer]
        scope = f"Among the {scorer} runs: "
    comparison = _patience_sides(done) or _budget_sides(done)
    if comparison is None:
        return None
    (label, first), (other, second) = comparison
    ratio = first["metric calls"].mean() / second["metric calls"].mean()
    points = round((first["best validation"].mean() - second["best validation"].mean()) * 100)
    gain = "the same best validation score" if points == 0 else f"{points:+d} points of best validation score"
    sentence = (
        f"{label} used {ratio:.1f}× the metric calls of {other}, for {gain} on average "
        f"({_runs(len(first))} against {len(second)})."
    )
    return scope + (sentence if not scope else sentence[0].lower() + sentence[1:])


Sides = tuple[tuple[str, "pd.DataFrame"], tuple[str, "pd.DataFrame"]]


def _patience_sides(done: pd.DataFrame) -> Sides | None:
    without, with_one = done[done["patience"] == 0], done[done["patience"] > 0]
    if min(len(without), len(with_one)) < MIN_RUNS_PER_SIDE:
        return None
    return ("Runs with patience 0 (no early stop)", without), ("runs with a patience", with_one)


def _budget_sides(done: pd.DataFrame) -> Sides | None:
    budgets = done["budget"].dropna()
    if budgets.nunique() < 2:
        return None
    median = float(budgets.median())
    cut = int(median) if median == int(median) else median
    large, small = done[done["budget"] > median], done[done["budget"] <= median]
    if min(len(large), len(small)) < MIN_RUNS_PER_SIDE:
        return None
    return (f"Runs with a budget above {cut}", large), (f"runs with {cut} or less", small)


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
