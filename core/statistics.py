"""Paired before/after statistics: is the optimized prompt's gain over the baseline more than chance?

Both prompts are scored on the same examples, so every test here is *paired*: ``before[i]`` (the
baseline) and ``after[i]`` (the optimized prompt) are scores of example ``i``, and a difference is
always ``after - before``. Pure numpy; nothing calls a model, MLflow or Streamlit.

* :func:`exact_mcnemar` for right/wrong scores (exact match, contains): only the examples the two
  prompts disagree on carry information.
* :func:`sign_flip_test` for graded scores (token F1): if the prompts were interchangeable, each
  example's difference would be as likely to have either sign.
* :func:`paired_bootstrap_ci` for how large the gain is: a percentile interval of the mean difference.
* :func:`compare_paired` picks the test for the scores, adds the interval and says the result in one
  sentence; this is what the product shows for each split.
* :func:`overfitting_flag` warns when the validation gain is more than the test split supports.

Every result is a frozen dataclass whose ``to_dict`` is JSON-able (plain ints, floats, strings) and
whose ``from_dict`` reads it back, so results can be stored in a run's event log.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Method = Literal["exact_mcnemar", "sign_flip"]

# A p value below this reads as "unlikely to be chance".
SIGNIFICANCE_LEVEL = 0.05
# Up to this many non-zero differences the sign-flip test enumerates every sign pattern (2**16 rows
# of 16 signs: a few milliseconds); beyond it, it samples them.
EXACT_SIGN_FLIP_LIMIT = 16
# Fewer resamples make a 95% interval's ends move visibly from one seed to the next.
MIN_BOOTSTRAP_RESAMPLES = 5_000
# numpy elements per block when resampling, so memory stays bounded for 5,000 examples.
_BLOCK_ELEMENTS = 2**20


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test of right/wrong scores on the same examples.

    Args:
        n: examples compared.
        before_right, after_right: examples the baseline and the optimized prompt got right.
        regressed: right before and wrong after (McNemar's *b*).
        fixed: wrong before and right after (McNemar's *c*).
        p_value: two-sided exact binomial p value on the ``regressed + fixed`` discordant examples.
    """

    n: int
    before_right: int
    after_right: int
    regressed: int
    fixed: int
    p_value: float

    @property
    def changed(self) -> int:
        """Examples the two prompts disagree on."""
        return self.regressed + self.fixed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> McNemarResult:
        return cls(**_fields_of(cls, data))


def exact_mcnemar(before: Sequence[float], after: Sequence[float]) -> McNemarResult:
    """Exact two-sided McNemar test for scores that are all 0 or 1.

    Under "no difference" each discordant example (right on one side only) is equally likely to
    favour either prompt, so with ``b`` regressed and ``c`` fixed examples the p value is
    ``min(1, 2 * P[X <= min(b, c)])`` for ``X ~ Binomial(b + c, 1/2)``, summed in exact integer
    arithmetic. Examples both prompts got right, or both wrong, do not count.

    Args:
        before, after: the baseline's and the optimized prompt's scores of the same examples, in the
            same order; every score must be 0 or 1 (``True``/``False`` count as 1/0).

    Returns ``p_value = 1.0`` when no example is discordant (including identical scores and n = 1
    with equal scores). Raises ``ValueError`` on empty or mismatched inputs, non-finite scores, or a
    score other than 0 or 1 (use :func:`sign_flip_test` for graded scores).
    """
    b_scores, a_scores = _paired(before, after)
    for name, scores in (("baseline", b_scores), ("optimized", a_scores)):
        odd = np.flatnonzero((scores != 0) & (scores != 1))
        if odd.size:
            raise ValueError(
                f"Exact McNemar needs scores of 0 or 1: the {name} score at position {odd[0]} is {scores[odd[0]]:g}. "
                "Use sign_flip_test for graded scores such as F1."
            )
    regressed = int(np.sum((b_scores == 1) & (a_scores == 0)))
    fixed = int(np.sum((b_scores == 0) & (a_scores == 1)))
    return McNemarResult(
        n=int(b_scores.size),
        before_right=int(np.sum(b_scores == 1)),
        after_right=int(np.sum(a_scores == 1)),
        regressed=regressed,
        fixed=fixed,
        p_value=_binomial_two_sided(regressed, fixed),
    )


@dataclass(frozen=True)
class PermutationResult:
    """Paired sign-flip permutation test of the mean difference ``after - before``.

    Args:
        n: examples compared (examples with equal scores included).
        changed: examples whose two scores differ, the only ones with a sign to flip.
        mean_difference: the optimized prompt's mean score minus the baseline's.
        p_value: two-sided p value.
        exact: ``True`` when every sign pattern was enumerated, ``False`` for a Monte Carlo estimate.
    """

    n: int
    changed: int
    mean_difference: float
    p_value: float
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PermutationResult:
        return cls(**_fields_of(cls, data))


def sign_flip_test(
    before: Sequence[float], after: Sequence[float], *, resamples: int = 10_000, seed: int = 0
) -> PermutationResult:
    """Two-sided paired sign-flip test: is the mean of ``after - before`` further from 0 than chance?

    Under "no difference" the sign of each example's difference is a coin flip. The p value is the
    share of sign patterns whose mean difference is at least as far from 0 as the observed one.
    Examples with equal scores have a difference of 0 and no sign to flip, so they are left out of
    the patterns (they still count in ``n`` and in the mean).

    Args:
        before, after: the baseline's and the optimized prompt's scores of the same examples, in the
            same order; any finite numbers.
        resamples: random sign patterns drawn when there are more than
            :data:`EXACT_SIGN_FLIP_LIMIT` non-zero differences. The estimate is
            ``(count + 1) / (resamples + 1)``, so it is never 0 and never below ``1 / (resamples + 1)``.
        seed: seeds the ``numpy.random.Generator`` of the Monte Carlo estimate; the same inputs and
            seed give the same p value. Unused when the test is exact.

    With up to :data:`EXACT_SIGN_FLIP_LIMIT` non-zero differences every pattern is enumerated and
    the p value is exact; identical scores (no non-zero difference) give ``p_value = 1.0``, and so
    does n = 1. Raises ``ValueError`` on empty or mismatched inputs, non-finite scores or
    ``resamples < 1``.
    """
    if resamples < 1:
        raise ValueError(f"The sign-flip test needs at least 1 resample (got {resamples}); 10,000 is usual.")
    b_scores, a_scores = _paired(before, after)
    differences = a_scores - b_scores
    nonzero = differences[differences != 0]
    exact = nonzero.size <= EXACT_SIGN_FLIP_LIMIT
    if exact:
        p_value = _sign_flip_exact(nonzero)
    else:
        p_value = _sign_flip_sampled(nonzero, resamples, np.random.default_rng(seed))
    return PermutationResult(
        n=int(differences.size),
        changed=int(nonzero.size),
        mean_difference=float(differences.mean()),
        p_value=p_value,
        exact=exact,
    )


def _sign_flip_exact(nonzero: np.ndarray) -> float:
    if nonzero.size == 0:
        return 1.0
    patterns = (np.arange(2**nonzero.size)[:, None] >> np.arange(nonzero.size)) & 1
    sums = (2 * patterns - 1) @ nonzero
    return float(np.mean(_as_extreme(sums, nonzero)))


def _sign_flip_sampled(nonzero: np.ndarray, resamples: int, rng: np.random.Generator) -> float:
    # One random byte signs a group of eight differences at once: with a table of the 256 sums a
    # byte can give its group, a resample is len/8 look-ups instead of len products (measured 5x
    # faster than a matrix of signs at 5,000 examples).
    groups = -(-nonzero.size // 8)
    padded = np.zeros(groups * 8)
    padded[: nonzero.size] = nonzero
    byte_bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(float)
    plus_table = padded.reshape(groups, 8) @ byte_bits.T  # [group, byte]: sum of the group's "+" members
    total = float(nonzero.sum())
    block = max(1, _BLOCK_ELEMENTS // groups)
    count = 0
    for start in range(0, resamples, block):
        draws = rng.integers(0, 256, size=(min(block, resamples - start), groups), dtype=np.uint8)
        plus = plus_table[np.arange(groups), draws].sum(axis=1)
        count += int(np.sum(_as_extreme(2 * plus - total, nonzero)))
    return (count + 1) / (resamples + 1)


def _as_extreme(sums: np.ndarray, nonzero: np.ndarray) -> np.ndarray:
    """Which signed sums are at least as far from 0 as the observed sum (all signs +)."""
    # The observed pattern is summed in another order than the matrix product, so equal sums can
    # differ in their last bits; a tolerance far below any real score difference keeps them tied.
    tolerance = 1e-9 * float(np.abs(nonzero).sum())
    return np.abs(sums) >= abs(float(nonzero.sum())) - tolerance


@dataclass(frozen=True)
class Interval:
    """Percentile bootstrap interval of the mean difference ``after - before``.

    Args:
        low, high: the interval's ends.
        mean_difference: the observed mean difference (the optimized prompt's mean minus the baseline's).
        level: the coverage asked for, e.g. 0.95.
        resamples: bootstrap samples drawn.
    """

    low: float
    high: float
    mean_difference: float
    level: float
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interval:
        return cls(**_fields_of(cls, data))


def paired_bootstrap_ci(
    before: Sequence[float],
    after: Sequence[float],
    *,
    resamples: int = 5_000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of the mean paired difference ``after - before``.

    Each resample draws ``n`` example indices with replacement and keeps the pairs together, so
    the interval reflects which examples happen to be in the set, not noise between the two prompts.
    The ends are the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled means
    (numpy's linear interpolation).

    Args:
        before, after: the baseline's and the optimized prompt's scores of the same examples, in the
            same order; any finite numbers.
        resamples: at least :data:`MIN_BOOTSTRAP_RESAMPLES`; fewer raise ``ValueError``.
        level: between 0 and 1, exclusive.
        seed: seeds the ``numpy.random.Generator``; the same inputs, resamples and seed give the
            same interval.

    Identical scores give ``[0, 0]``; a single example gives an interval of zero width at its own
    difference (a resample of one example is always that example), which says nothing about
    uncertainty: read it with the p value. Raises ``ValueError`` on empty or mismatched inputs and
    non-finite scores.
    """
    if resamples < MIN_BOOTSTRAP_RESAMPLES:
        raise ValueError(
            f"A bootstrap interval needs at least {MIN_BOOTSTRAP_RESAMPLES:,} resamples (got {resamples:,}): "
            "with fewer, its ends change from one seed to the next."
        )
    if not 0 < level < 1:
        raise ValueError(f"The interval's level must be between 0 and 1, such as 0.95 (got {level}).")
    b_scores, a_scores = _paired(before, after)
    differences = a_scores - b_scores
    means = _bootstrap_means(differences, resamples, np.random.default_rng(seed))
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(
        low=float(low),
        high=float(high),
        mean_difference=float(differences.mean()),
        level=float(level),
        resamples=int(resamples),
    )


@dataclass(frozen=True)
class PairedComparison:
    """Baseline against optimized prompt on one split: the test the scores call for, and the interval.

    Args:
        split: the examples' split in the user's words, e.g. ``"validation"`` or ``"test"``.
        before_mean, after_mean: the baseline's and the optimized prompt's mean scores.
        significance_test: :class:`McNemarResult` for 0/1 scores, :class:`PermutationResult` otherwise.
        interval: bootstrap interval of the mean difference.
        score_label: the graded score's name in :attr:`sentence`: ``"F1"`` reads "mean F1". Unused
            by the right/wrong sentence, which counts examples right.
    """

    split: str
    before_mean: float
    after_mean: float
    significance_test: McNemarResult | PermutationResult
    interval: Interval
    score_label: str = "F1"

    @property
    def method(self) -> Method:
        return "exact_mcnemar" if isinstance(self.significance_test, McNemarResult) else "sign_flip"

    @property
    def n(self) -> int:
        return self.significance_test.n

    @property
    def p_value(self) -> float:
        return self.significance_test.p_value

    @property
    def mean_difference(self) -> float:
        return self.interval.mean_difference

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE_LEVEL

    @property
    def sentence(self) -> str:
        """The result in words an instructor can read aloud."""
        examples = f"{self.n} {self.split} example{'' if self.n == 1 else 's'}"
        p_text = format_p_value(self.p_value)
        test = self.significance_test
        if isinstance(test, McNemarResult):
            said = f"the optimized prompt got {test.after_right} right and the baseline {test.before_right}"
        else:
            said = (
                f"the optimized prompt's mean {self.score_label} is {self.after_mean:.2f} "
                f"against {self.before_mean:.2f} for the baseline"
            )
        if test.changed == 0:
            verdict = "no example scored differently"
        elif self.significant:
            verdict = "unlikely to be chance"
        else:
            verdict = "not distinguishable from chance at this size"
        return f"On {examples} {said} ({p_text}): {verdict}."

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with the test tagged by :attr:`method`; ``sentence`` is included for readers of
        the JSON and recomputed, not read, by :meth:`from_dict`."""
        return {
            "split": self.split,
            "before_mean": self.before_mean,
            "after_mean": self.after_mean,
            "method": self.method,
            "significance_test": self.significance_test.to_dict(),
            "interval": self.interval.to_dict(),
            "score_label": self.score_label,
            "sentence": self.sentence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairedComparison:
        values = _fields_of(cls, data)
        test_type = _TEST_TYPES.get(data.get("method"))  # type: ignore[arg-type]
        if test_type is None:
            raise ValueError(f"A stored PairedComparison names an unknown test {data.get('method')!r}.")
        values["significance_test"] = test_type.from_dict(values["significance_test"])
        values["interval"] = Interval.from_dict(values["interval"])
        return cls(**values)


_TEST_TYPES: dict[Method, type[McNemarResult] | type[PermutationResult]] = {
    "exact_mcnemar": McNemarResult,
    "sign_flip": PermutationResult,
}


def compare_paired(
    before: Sequence[float], after: Sequence[float], *, split: str, seed: int = 0, score_label: str = "F1"
) -> PairedComparison:
    """Compare the baseline's and the optimized prompt's scores of the same examples of one split.

    The test follows the scores: when every score on both sides is 0 or 1 (exact match, contains, or
    an F1 that happened to be all-or-nothing) it is :func:`exact_mcnemar`, otherwise
    :func:`sign_flip_test` with ``seed``. The :func:`paired_bootstrap_ci` interval with ``seed`` is
    always added.

    Args:
        before, after: the baseline's and the optimized prompt's scores, one per example, same order.
        split: the split's name as the sentence should say it (``"validation"``, ``"test"``).
        seed: seeds the sampled parts (sign-flip Monte Carlo, bootstrap); same inputs, same result.
        score_label: the graded score's name in the sentence: ``"F1"`` reads "mean F1".

    Raises ``ValueError`` on an empty split name, empty or mismatched inputs and non-finite scores.
    """
    if not split.strip():
        raise ValueError("Name the split the scores come from, such as 'validation' or 'test'.")
    b_scores, a_scores = _paired(before, after)
    right_wrong = bool(np.all(np.isin(b_scores, (0, 1))) and np.all(np.isin(a_scores, (0, 1))))
    test = exact_mcnemar(b_scores, a_scores) if right_wrong else sign_flip_test(b_scores, a_scores, seed=seed)
    return PairedComparison(
        split=split.strip(),
        before_mean=float(b_scores.mean()),
        after_mean=float(a_scores.mean()),
        significance_test=test,
        interval=paired_bootstrap_ci(b_scores, a_scores, seed=seed),
        score_label=score_label,
    )


def overfitting_flag(validation: PairedComparison, test: PairedComparison) -> str | None:
    """A one-sentence warning when the validation gain is larger than the test split supports, else ``None``.

    GEPA picks the optimized prompt by its validation score, so its validation gain is biased
    upwards; the held-out test split is the honest measure. The rule: warn when the validation mean
    difference is above the top of the test mean difference's bootstrap interval
    (``validation.mean_difference > test.interval.high``), i.e. when the validation gain is not a
    plausible value of the test gain. A validation gain equal to the top is not flagged; neither is
    a test gain above the validation gain.

    Args:
        validation, test: :func:`compare_paired` results of the same two prompts on the validation
            and the test split.

    The interval of a very small test split understates its uncertainty (one example: zero width),
    so the flag fires more readily there; the test comparison's own sentence says how little it shows.
    """
    gain, top = validation.mean_difference, test.interval.high
    if gain <= top:
        return None
    return (
        f"The validation gain ({gain:+.2f}) is above the whole {test.interval.level:.0%} interval of the "
        f"test gain ({test.interval.low:+.2f} to {top:+.2f}): the optimized prompt may be fitted to the "
        "validation examples, so quote the test result."
    )


def format_p_value(p_value: float) -> str:
    """``"p < 0.0001"``, or ``"p = "`` and the value with 2 decimals from 0.01 up, 3 from 0.001, 4 below.

    More decimals are shown when rounding would carry the value across :data:`SIGNIFICANCE_LEVEL`
    (0.0496 is ``"p = 0.0496"``, not ``"p = 0.05"``); trailing zeros are dropped (``"p = 1"``).
    """
    if p_value < 0.0001:
        return "p < 0.0001"
    decimals = 2 if p_value >= 0.01 else 3 if p_value >= 0.001 else 4
    text = f"{p_value:.{decimals}f}"
    while (float(text) < SIGNIFICANCE_LEVEL) != (p_value < SIGNIFICANCE_LEVEL):
        decimals += 1
        text = f"{p_value:.{decimals}f}"
    return f"p = {text.rstrip('0').rstrip('.')}"


def _bootstrap_means(differences: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = differences.size
    block = max(1, _BLOCK_ELEMENTS // n)
    means = [
        differences[rng.integers(0, n, size=(min(block, resamples - start), n))].mean(axis=1)
        for start in range(0, resamples, block)
    ]
    return np.concatenate(means)


def _binomial_two_sided(b: int, c: int) -> float:
    discordant = b + c
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(b, c) + 1))
    # Integer numerator over 2**(n-1): exact, and Python rounds the quotient once.
    return min(1.0, tail / 2 ** (discordant - 1))


def _paired(before: Sequence[float], after: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Both score lists as float arrays, after checking they describe the same examples.

    Positions in messages count from 0, as :mod:`core.analysis` does.
    """
    arrays = []
    for name, scores in (("baseline", before), ("optimized", after)):
        array = np.asarray(scores, dtype=float)
        if array.ndim != 1:
            raise ValueError(f"The {name} scores must be a flat list of numbers, one per example.")
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(
                f"Scores must be finite numbers: the {name} score at position {bad[0]} is {array[bad[0]]}."
            )
        arrays.append(array)
    b_scores, a_scores = arrays
    if b_scores.size == 0 and a_scores.size == 0:
        raise ValueError("There are no examples to compare: both score lists are empty.")
    if b_scores.size != a_scores.size:
        raise ValueError(
            f"Paired scores must cover the same examples: got {b_scores.size} baseline scores "
            f"and {a_scores.size} optimized scores."
        )
    return b_scores, a_scores


def _fields_of(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The dataclass fields of ``cls`` read from ``data``; a missing one is a ``ValueError``."""
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [name for name in names if name not in data]
    if missing:
        raise ValueError(f"A stored {cls.__name__} lacks '{missing[0]}'.")
    return {name: data[name] for name in names}
