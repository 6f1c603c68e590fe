"""The pre-run estimate: GEPA's accounting, tokens, cost, time and the judge's effect in words."""

import dataclasses
from pathlib import Path

import pytest

from core.estimate import RunShape, estimate_run, judge_effect
from core.pricing import SIMULATED_PRICE, Price

ROOT = Path(__file__).resolve().parent.parent
MINI, FOUR_O = Price(0.15, 0.60), Price(2.50, 10.00)
PRICES = {"task": MINI, "reflection": FOUR_O, "judge": MINI}


def default_run(**changes) -> RunShape:
    """The workshop's default run: budget 150 on the 90-row set, train = validation, minibatch 3."""
    shape = RunShape(
        budget=150,
        validation_size=90,
        train_size=90,
        train_is_validation=True,
        template_tokens=6,
        example_tokens=11,
        expected_tokens=2,
        reply_tokens=8,
        seconds_per_call=0.5,
        prices=PRICES,
    )
    return dataclasses.replace(shape, **changes)


def test_the_baseline_costs_the_validation_set_and_the_first_accepted_proposal_overshoots():
    estimate = estimate_run(default_run())
    assert estimate.metric_calls == 90 + 2 * 3 + 90 and estimate.iterations == 1
    assert estimate.by_role["reflection"].calls == 1 + 1  # one proposal and the preflight check
    assert estimate.by_role["task"].calls == 186 + 180 + 1  # the search, the final evaluation, the check


def test_later_iterations_follow_the_acceptance_and_skip_rates():
    shape = default_run(budget=300, validation_size=30, train_size=30, acceptance_rate=0.5, skip_rate=0.0)
    estimate = estimate_run(shape)
    # 30 + (6 + 30) for the first, then 6 + 15 per iteration while fewer than 300 are spent: 12 more.
    assert estimate.iterations == 13 and estimate.metric_calls == pytest.approx(66 + 12 * 21)
    assert estimate.by_role["reflection"].calls == 13 + 1


def test_a_budget_below_the_baseline_runs_no_iteration():
    estimate = estimate_run(default_run(budget=50))
    assert (estimate.metric_calls, estimate.iterations, estimate.by_role["reflection"].calls) == (90, 0, 1)


def test_a_judge_without_cache_hits_doubles_the_calls_and_says_what_it_adds():
    estimate = estimate_run(default_run(judge=True, judge_hit_rate=0.0))
    assert estimate.by_role["judge"].calls == estimate.by_role["task"].calls  # task calls + 1 check, both
    assert estimate.judge_effect.startswith("the judge doubles the calls and adds about $0.0")
    assert estimate.summary().endswith(f"With the judge: {estimate.judge_effect}.")


def test_the_cache_cuts_the_judge_calls():
    cached = estimate_run(default_run(judge=True, judge_hit_rate=0.75))
    assert cached.by_role["judge"].calls == pytest.approx(366 * 0.25 + 1)


def test_the_expected_hit_rate_follows_from_the_search_when_not_given():
    shared = estimate_run(default_run(judge=True, output_overlap=0.0))
    # Only repeats: the final evaluation (180), the parent's minibatch (3), the child's minibatch examples (3).
    assert shared.judge_hit_rate == pytest.approx(186 / 366)
    disjoint = estimate_run(default_run(judge=True, output_overlap=0.0, train_is_validation=False))
    assert disjoint.judge_hit_rate < shared.judge_hit_rate
    assert estimate_run(default_run(judge=True)).judge_hit_rate > shared.judge_hit_rate  # converging answers


def test_an_unknown_price_makes_the_cost_unknown_not_zero():
    estimate = estimate_run(default_run(judge=True, prices={"task": MINI, "reflection": FOUR_O, "judge": None}))
    assert estimate.by_role["judge"].cost is None and estimate.cost is None
    assert "an unknown amount" in estimate.summary() and "adds an unknown cost" in estimate.judge_effect


def test_the_simulated_model_costs_nothing_and_says_so():
    prices = dict.fromkeys(("task", "reflection", "judge"), SIMULATED_PRICE)
    estimate = estimate_run(default_run(judge=True, prices=prices))
    assert estimate.cost == 0 and estimate.simulated
    assert "nothing (simulated model)" in estimate.summary() and "costs nothing (simulated)" in estimate.judge_effect


def test_tokens_and_cost_add_up_per_role():
    estimate = estimate_run(default_run())
    task = estimate.by_role["task"]
    assert task.cost == pytest.approx(MINI.cost(task.prompt_tokens, task.completion_tokens))
    assert estimate.cost == pytest.approx(task.cost + estimate.by_role["reflection"].cost)
    one_reflection = estimate.by_role["reflection"].prompt_tokens - 14  # without the preflight probe
    assert one_reflection > 300  # GEPA's frame, the instruction, three examples with their feedback


def test_more_concurrency_takes_less_time():
    slow, fast = estimate_run(default_run(concurrency=1)), estimate_run(default_run(concurrency=8))
    assert fast.seconds < slow.seconds


def test_the_judge_effect_is_worded_by_the_ratio():
    base = estimate_run(default_run())
    more = dataclasses.replace(base, by_role={**base.by_role, "judge": dataclasses.replace(base.by_role["task"])})
    assert judge_effect(more, base).startswith("the judge doubles the calls")
    assert judge_effect(base, base).startswith("the judge adds almost no calls")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budget": 0}, "must be 1 or more"),
        ({"judge_hit_rate": 1.5}, "judge hit rate must be between 0 and 1"),
        ({"skip_rate": 1.0}, "never proposes anything"),
        ({"reply_tokens": -1}, "cannot be negative"),
        ({"concurrency": 0}, "Concurrency"),
    ],
)
def test_a_shape_that_cannot_run_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        default_run(**change)


def test_test_rows_scored_after_the_search_are_new_to_the_judges_cache():
    repeats_only = estimate_run(default_run(judge=True, final_evaluation_calls=240))
    with_test = estimate_run(default_run(judge=True, final_evaluation_calls=240, final_new_outputs=60))
    assert with_test.by_role["judge"].calls == pytest.approx(repeats_only.by_role["judge"].calls + 60)
