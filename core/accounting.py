"""What a run spends: tokens, seconds and dollars of every model call, per role (task, reflection,
judge), from the preflight checks to the final evaluation; its prices; and the estimate made before it.

One :class:`Accounting` belongs to a run: its :class:`~core.models.UsageMeter` is handed to every model
client (and the judge), and :meth:`Accounting.update` turns what it counted so far into a
:class:`~core.events.UsageUpdate` event. Prices come from the user (``--task-price IN,OUT`` ...),
litellm's bundled cost map for OpenAI's own models, or zero for the simulated model; a model with no
known price costs *unknown* (None), never zero (:mod:`core.pricing`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.events import EstimateRecord, PriceRef, RoleTally, UsageRecord, UsageUpdate
from core.models import ROLES, Role, Usage, UsageMeter
from core.pricing import Cost, Price, cost_of, run_prices

if TYPE_CHECKING:
    from core.config import OptimizationConfig
    from core.datasets import Splits
    from core.estimate import Estimate
    from core.judges import LLMJudge


@dataclass
class Accounting:
    """A run's meter, its judge (if it scores with one), and the price of each role's model."""

    prices: dict[Role, Price | None]
    meter: UsageMeter = field(default_factory=UsageMeter)
    judge: LLMJudge | None = None

    @classmethod
    def for_config(cls, config: OptimizationConfig) -> Accounting:
        return cls(
            prices=run_prices(config.models, judge_model=config.scorer.judge_model, user_prices=user_prices(config))
        )

    def update(self, metric_calls: int) -> UsageUpdate:
        """Everything counted so far, as an event."""
        judge = self.judge
        cache = judge.cache.snapshot() if judge is not None else {}
        return UsageUpdate(
            metric_calls=metric_calls,
            by_role={role: usage_record(u) for role, u in self.meter.snapshot().items()},
            judge_cache_hits=int(cache.get("hits", 0)),
            judge_cache_misses=int(cache.get("misses", 0)),
            judge_failures=judge.stats.failures if judge is not None else 0,
        )

    def price_refs(self) -> dict[str, PriceRef | None]:
        return {role: price_ref(price) for role, price in self.prices.items()}


def user_prices(config: OptimizationConfig) -> dict[Role, Price]:
    """The prices the user gave (dollars per million input and output tokens), by role."""
    given = {"task": config.task_price, "reflection": config.reflection_price, "judge": config.judge_price}
    return {role: Price(low, high, "you") for role, value in given.items() if value for low, high in [value]}


def price_ref(price: Price | None) -> PriceRef | None:
    return None if price is None else PriceRef(price.input_per_million, price.output_per_million, price.source)


def usage_record(usage: Usage) -> UsageRecord:
    return UsageRecord(
        usage.responses, usage.prompt_tokens, usage.completion_tokens, round(usage.seconds, 4), usage.unreported
    )


def usage_of(record: UsageRecord) -> Usage:
    return Usage(record.responses, record.prompt_tokens, record.completion_tokens, record.seconds, record.unreported)


def cost_from(update: UsageUpdate | None, prices: Mapping[str, PriceRef | None]) -> Cost | None:
    """What the usage so far cost at the run's prices; None before any usage is known."""
    if update is None:
        return None
    usage = {role: usage_of(record) for role, record in update.by_role.items()}
    known = {
        role: Price(p.input_per_million, p.output_per_million, p.source) if p is not None else None
        for role, p in prices.items()
    }
    return cost_of(usage, known)  # type: ignore[arg-type]


def estimate_run_shape(
    config: OptimizationConfig,
    splits: Splits,
    template: str,
    reply_tokens: float,
    seconds_per_call: float,
    prices: Mapping[Role, Price | None],
) -> Estimate:
    """The pre-run estimate (:func:`core.estimate.estimate_run`) from the data, the baseline template,
    and a call on a real example (its reply length and a warm call's latency)."""
    from core.estimate import RunShape, estimate_run
    from core.tokens import text_tokens

    train = splits.train.examples
    values = [value for example in train for value in example.inputs.values()]
    test = len(splits.test_ids)
    final_calls = 2 * (len(splits.validation) + test)
    shape = RunShape(
        budget=config.budget,
        validation_size=len(splits.validation),
        train_size=len(train),
        minibatch_size=config.minibatch_size,
        template_tokens=text_tokens(template),
        example_tokens=sum(text_tokens(v) for v in values) / max(1, len(values)),
        expected_tokens=sum(text_tokens(e.expected) for e in train) / max(1, len(train)),
        reply_tokens=reply_tokens,
        seconds_per_call=seconds_per_call,
        prices=prices,
        judge=config.scorer.needs_model,
        train_is_validation=splits.validation is splits.train,
        concurrency=config.concurrency,
        final_evaluation_calls=final_calls,
    )
    # The test rows' outputs were never judged in the search: the baseline's are all new to the judge's
    # cache, and of every other candidate scored on test, the share no earlier candidate gave.
    fresh = 1.0 - shape.output_overlap
    shape = dataclasses.replace(shape, final_new_outputs=test * (1 + fresh))
    first = estimate_run(shape)
    if test and config.scores_candidates_on_test:
        # Every candidate scored on test too: about one candidate per accepted proposal, plus the baseline.
        candidates = 1 + round(first.iterations * (1 - shape.skip_rate) * shape.acceptance_rate)
        first = estimate_run(
            dataclasses.replace(
                shape,
                final_evaluation_calls=final_calls + candidates * test,
                final_new_outputs=test * (1 + fresh * max(1, candidates - 1)),
            )
        )
    return first


def estimate_record(estimate: Estimate) -> EstimateRecord:
    return EstimateRecord(
        metric_calls=estimate.metric_calls,
        seconds=estimate.seconds,
        cost=estimate.cost,
        simulated=estimate.simulated,
        summary=estimate.summary(),
        judge_effect=estimate.judge_effect,
        by_role={
            role: RoleTally(r.calls, r.prompt_tokens, r.completion_tokens, r.cost)
            for role, r in estimate.by_role.items()
        },
    )


def tokens_summary(update: UsageUpdate | None) -> dict[str, dict[str, int]]:
    """The CLI's ``tokens``: prompt and completion tokens and calls per role, every role present."""
    by_role = update.by_role if update is not None else {}
    return {
        role: {
            "prompt": by_role[role].prompt_tokens if role in by_role else 0,
            "completion": by_role[role].completion_tokens if role in by_role else 0,
            "calls": by_role[role].responses if role in by_role else 0,
        }
        for role in ROLES
    }


def judged_share(updates: Sequence[UsageUpdate]) -> float | None:
    """Judge calls made per judge-scored pair asked, from the latest update; None without a judge."""
    if not updates:
        return None
    last = updates[-1]
    asked = last.judge_cache_hits + last.judge_cache_misses
    return last.judge_cache_misses / asked if asked else None
