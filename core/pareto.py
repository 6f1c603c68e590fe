"""Pareto fronts over per-example validation scores. Pure Python, no dependencies.

A candidate is on the front when no other candidate scores at least as well on every validation
example and strictly better on at least one. Candidates with identical scores are all kept.
This is the one definition used by the recorder, the Results page and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    strictly = False
    for x, y in zip(a, b, strict=True):
        if x < y:
            return False
        if x > y:
            strictly = True
    return strictly


def pareto_front(scores: Mapping[int, Sequence[float]]) -> list[int]:
    """The non-dominated candidates of ``{candidate: per-example scores}``, sorted."""
    front: list[int] = []
    for candidate in sorted(scores):
        front = update_front(front, scores, candidate)
    return front


def update_front(front: Sequence[int], scores: Mapping[int, Sequence[float]], new: int) -> list[int]:
    """The front after ``new`` joins the pool, from the front before it.

    Exact because dominance is transitive: whatever dominates ``new`` is itself dominated by, or is,
    a member of the old front.
    """
    new_scores = scores[new]
    if any(dominates(scores[member], new_scores) for member in front):
        return list(front)
    kept = [member for member in front if not dominates(new_scores, scores[member])]
    return sorted([*kept, new])


def best_on_example(scores: Mapping[int, Sequence[float]], example: int) -> list[int]:
    """Candidates with the highest score on validation example ``example``."""
    top = max(s[example] for s in scores.values())
    return sorted(c for c, s in scores.items() if s[example] == top)
