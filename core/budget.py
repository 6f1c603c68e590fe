"""Budget preflight: what a number of GEPA metric calls buys on a dataset, said before a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The workshop's defaults: on the default 30-row validation set the baseline costs 30 calls, each
# proposal 6 and each accepted one 30 more, so 300 leaves room for about 7 accepted proposals; skipped
# iterations (every minibatch answer already right) count against patience, so 6 rather than 4.
DEFAULT_BUDGET = 300
DEFAULT_PATIENCE = 6


@dataclass(frozen=True)
class BudgetPlan:
    """What a budget buys on a dataset: the preflight shown before a run.

    GEPA spends ``val_size`` calls on the baseline, then per iteration ``2 x minibatch`` calls
    (parent and child on the minibatch) plus ``val_size`` when the child is accepted. Stop checks
    come before each iteration, so the last one can overshoot the budget.
    """

    budget: int
    val_size: int
    minibatch_size: int
    max_proposals: int
    min_proposals: int
    level: Literal["ok", "warn", "refuse"]
    message: str


def plan_budget(
    budget: int, val_size: int, minibatch_size: int, *, test_size: int = 0, every_candidate_on_test: bool = False
) -> BudgetPlan:
    """How many proposals ``budget`` allows, and whether that is enough to be worth running.

    With a test set (``test_size`` rows) the message also says what scoring it costs: outside the
    budget, after the search, for baseline and best, and per candidate with ``every_candidate_on_test``.
    """
    minibatch = max(1, minibatch_size)
    remaining = budget - val_size
    rejected_cost = 2 * minibatch
    accepted_cost = rejected_cost + val_size
    max_proposals = max(0, -(-remaining // rejected_cost)) if remaining > 0 else 0
    min_proposals = max(0, -(-remaining // accepted_cost)) if remaining > 0 else 0
    recommended = val_size + 3 * accepted_cost
    if max_proposals == 0:
        level: Literal["ok", "warn", "refuse"] = "refuse"
        message = (
            f"A budget of {budget} does not even cover scoring the baseline on the {val_size} validation "
            f"examples, so GEPA could make no proposal. Raise it to at least {recommended}."
        )
    elif min_proposals < 3:
        level = "warn"
        message = (
            f"{budget} metric calls allow {min_proposals} to {max_proposals} proposals: the baseline costs "
            f"{val_size}, each proposal {rejected_cost}, and each accepted one {val_size} more to validate. "
            f"With fewer than 3 accepted proposals GEPA has little room; {recommended} or more is "
            "recommended."
        )
    else:
        level = "ok"
        message = (
            f"{budget} metric calls allow {min_proposals} to {max_proposals} proposals: the baseline costs "
            f"{val_size}, each proposal {rejected_cost}, and each accepted one {val_size} more to validate."
        )
    if test_size and level != "refuse":
        message += f" {test_note(test_size, every_candidate_on_test)}"
    return BudgetPlan(budget, val_size, minibatch, max_proposals, min_proposals, level, message)


def test_note(test_size: int, every_candidate: bool) -> str:
    """What scoring the test set costs, said beside the budget."""
    each = f", plus {test_size} per candidate to compare every candidate on test" if every_candidate else ""
    return (
        f"After the search, outside the budget: {2 * test_size} calls to score the baseline and the best "
        f"candidate on the {test_size} test examples{each}."
    )
