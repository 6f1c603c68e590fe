import json
import math

import pytest
from scipy.stats import binomtest

from core.statistics import (
    Interval,
    McNemarResult,
    PairedComparison,
    PermutationResult,
    compare_paired,
    exact_mcnemar,
    format_p_value,
    overfitting_flag,
    paired_bootstrap_ci,
    sign_flip_test,
)


def right_wrong(regressed: int, fixed: int, both_right: int = 0, both_wrong: int = 0) -> tuple[list, list]:
    """Baseline and optimized 0/1 scores with the given counts of each kind of example."""
    before = [1] * regressed + [0] * fixed + [1] * both_right + [0] * both_wrong
    after = [0] * regressed + [1] * fixed + [1] * both_right + [0] * both_wrong
    return before, after


def test_mcnemar_with_five_fixed_and_none_regressed_is_two_over_thirty_two():
    assert exact_mcnemar(*right_wrong(0, 5)).p_value == 0.0625


def test_mcnemar_with_one_regressed_and_nine_fixed_sums_two_binomial_terms():
    assert exact_mcnemar(*right_wrong(1, 9)).p_value == 2 * (1 + 10) / 1024 == 0.021484375


def test_mcnemar_with_equal_discordant_counts_is_one():
    assert exact_mcnemar(*right_wrong(4, 4, both_right=3)).p_value == 1.0


def test_mcnemar_ignores_examples_both_prompts_agree_on():
    assert exact_mcnemar(*right_wrong(1, 9, both_right=20, both_wrong=7)).p_value == 0.021484375


def test_mcnemar_counts_right_answers_and_discordant_examples():
    result = exact_mcnemar(*right_wrong(2, 6, both_right=3, both_wrong=1))
    assert (result.n, result.before_right, result.after_right, result.regressed, result.fixed) == (12, 5, 9, 2, 6)


def test_mcnemar_without_discordant_examples_is_one():
    assert exact_mcnemar([1, 0, 1], [1, 0, 1]).p_value == 1.0
    assert exact_mcnemar([1], [0]).p_value == 1.0


@pytest.mark.parametrize(("regressed", "fixed"), [(0, 1), (3, 11), (7, 8), (12, 30), (40, 61)])
def test_mcnemar_agrees_with_scipy_binomtest(regressed, fixed):
    expected = binomtest(fixed, regressed + fixed, 0.5).pvalue
    assert exact_mcnemar(*right_wrong(regressed, fixed)).p_value == pytest.approx(expected, rel=1e-12)


def test_mcnemar_refuses_graded_scores_and_names_the_alternative():
    with pytest.raises(ValueError, match=r"optimized score at position 1 is 0\.5.*sign_flip_test"):
        exact_mcnemar([1, 0], [1, 0.5])


def test_mcnemar_result_round_trips_through_json():
    result = exact_mcnemar(*right_wrong(1, 9, both_right=2))
    assert McNemarResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def half_point_steps(up: int, down: int) -> tuple[list, list]:
    """Graded scores where ``up`` examples gain 0.5 and ``down`` examples lose 0.5."""
    return [0.25] * up + [0.75] * down, [0.75] * up + [0.25] * down


def test_sign_flip_enumerates_a_tiny_case_by_hand():
    # Differences +0.6, +0.2, -0.1 and a tie: of the 8 sign patterns, +-0.9 and +-0.7 are at least
    # as far from 0 as the observed +0.7.
    result = sign_flip_test([0.2, 0.5, 0.6, 0.3], [0.8, 0.7, 0.5, 0.3])
    assert result.exact and result.p_value == 4 / 8
    assert result.n == 4 and result.mean_difference == pytest.approx(0.7 / 4)


def test_sign_flip_with_equal_steps_is_a_binomial_tail():
    # 7 of 10 equal steps up: patterns with 7 or more steps on one side, 2 * (120 + 45 + 10 + 1) of 1024.
    assert sign_flip_test(*half_point_steps(7, 3)).p_value == 352 / 1024


def test_sign_flip_on_right_wrong_scores_agrees_with_mcnemar():
    before, after = right_wrong(1, 9, both_right=4)
    assert sign_flip_test(before, after).p_value == pytest.approx(exact_mcnemar(before, after).p_value)


def test_sign_flip_of_identical_scores_is_one():
    result = sign_flip_test([0.3, 0.9, 0.5], [0.3, 0.9, 0.5])
    assert result.p_value == 1.0 and result.mean_difference == 0.0


def test_sign_flip_of_one_example_is_one():
    assert sign_flip_test([0.2], [0.9]).p_value == 1.0


def test_sign_flip_samples_beyond_sixteen_differences_close_to_the_exact_value():
    exact = 2 * sum(math.comb(20, k) for k in range(14, 21)) / 2**20  # 0.1153...
    result = sign_flip_test(*half_point_steps(14, 6))
    assert not result.exact and result.p_value == pytest.approx(exact, abs=0.015)


def test_sign_flip_sampling_is_reproducible_with_its_seed():
    scores = half_point_steps(14, 6)
    assert sign_flip_test(*scores, seed=3) == sign_flip_test(*scores, seed=3)
    assert sign_flip_test(*scores, seed=3).p_value != sign_flip_test(*scores, seed=4).p_value


def test_sampled_p_value_is_never_zero():
    assert sign_flip_test(*half_point_steps(30, 0), resamples=999).p_value == 1 / 1000


def test_sign_flip_refuses_no_resamples():
    with pytest.raises(ValueError, match="at least 1 resample"):
        sign_flip_test([0.1], [0.2], resamples=0)


def test_permutation_result_round_trips_through_json():
    result = sign_flip_test(*half_point_steps(14, 6))
    assert PermutationResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def graded(repeats: int = 1) -> tuple[list, list]:
    """Twenty F1-like baseline and optimized scores (mean gain 0.2), the whole set ``repeats`` times."""
    before = [0.0, 0.5, 0.2, 1.0, 0.4, 0.0, 0.6, 0.3, 0.8, 0.1, 0.5, 0.0, 0.9, 0.2, 0.7, 0.4, 0.0, 0.3, 1.0, 0.6]
    after = [0.8, 0.5, 0.6, 1.0, 0.2, 0.5, 0.9, 0.3, 1.0, 0.6, 0.4, 0.3, 0.9, 0.7, 0.6, 0.8, 0.2, 0.3, 1.0, 0.9]
    return before * repeats, after * repeats


def test_bootstrap_interval_brackets_the_observed_mean_difference():
    interval = paired_bootstrap_ci(*graded())
    assert interval.mean_difference == pytest.approx(0.2)
    assert interval.low < interval.mean_difference < interval.high


def test_bootstrap_interval_is_reproducible_with_its_seed():
    assert paired_bootstrap_ci(*graded(), seed=5) == paired_bootstrap_ci(*graded(), seed=5)


def test_bootstrap_interval_differs_with_another_seed():
    assert paired_bootstrap_ci(*graded(), seed=5).low != paired_bootstrap_ci(*graded(), seed=6).low


def test_bootstrap_interval_shrinks_with_more_data():
    small, large = paired_bootstrap_ci(*graded()), paired_bootstrap_ci(*graded(repeats=5))
    assert large.high - large.low < 0.6 * (small.high - small.low)


def test_bootstrap_interval_of_identical_scores_is_zero():
    interval = paired_bootstrap_ci([0.2, 1.0, 0.0], [0.2, 1.0, 0.0])
    assert (interval.low, interval.high, interval.mean_difference) == (0.0, 0.0, 0.0)


def test_bootstrap_interval_of_one_example_has_no_width():
    interval = paired_bootstrap_ci([0.25], [0.75])
    assert interval.low == interval.high == interval.mean_difference == 0.5


def test_bootstrap_refuses_fewer_than_five_thousand_resamples():
    with pytest.raises(ValueError, match="at least 5,000 resamples \\(got 1,000\\)"):
        paired_bootstrap_ci(*graded(), resamples=1_000)


def test_bootstrap_refuses_a_level_outside_zero_and_one():
    with pytest.raises(ValueError, match="between 0 and 1"):
        paired_bootstrap_ci(*graded(), level=95)


def test_interval_round_trips_through_json():
    interval = paired_bootstrap_ci(*graded())
    assert Interval.from_dict(json.loads(json.dumps(interval.to_dict()))) == interval


def test_right_wrong_scores_are_compared_with_mcnemar():
    comparison = compare_paired(*right_wrong(1, 9, both_right=2), split="test")
    assert comparison.method == "exact_mcnemar" and isinstance(comparison.significance_test, McNemarResult)


def test_graded_scores_are_compared_with_the_sign_flip_test():
    comparison = compare_paired(*graded(), split="test")
    assert comparison.method == "sign_flip" and isinstance(comparison.significance_test, PermutationResult)


def test_one_graded_side_is_enough_for_the_sign_flip_test():
    assert compare_paired([1, 0, 1], [1, 0.5, 1], split="test").method == "sign_flip"


def test_comparison_carries_means_and_the_bootstrap_interval():
    comparison = compare_paired(*graded(), split="validation", seed=2)
    assert comparison.interval == paired_bootstrap_ci(*graded(), seed=2)
    assert comparison.mean_difference == pytest.approx(comparison.after_mean - comparison.before_mean)


def test_sentence_for_a_significant_right_wrong_gain():
    comparison = compare_paired(*right_wrong(1, 19, both_right=6, both_wrong=4), split="test")
    assert comparison.sentence == (
        "On 30 test examples the optimized prompt got 25 right and the baseline 7 (p < 0.0001): unlikely to be chance."
    )


def test_sentence_for_a_right_wrong_gain_within_chance():
    comparison = compare_paired(*right_wrong(3, 5, both_right=10, both_wrong=2), split="validation")
    assert comparison.sentence == (
        "On 20 validation examples the optimized prompt got 15 right and the baseline 13 (p = 0.73): "
        "not distinguishable from chance at this size."
    )


def test_sentence_for_a_significant_graded_gain():
    comparison = compare_paired(*half_point_steps(12, 0), split="validation")
    assert comparison.sentence == (
        "On 12 validation examples the optimized prompt's mean F1 is 0.75 against 0.25 for the baseline "
        "(p = 0.0005): unlikely to be chance."
    )


def test_sentence_for_a_graded_gain_within_chance():
    comparison = compare_paired(*half_point_steps(7, 3), split="test")
    assert comparison.sentence == (
        "On 10 test examples the optimized prompt's mean F1 is 0.60 against 0.40 for the baseline "
        "(p = 0.34): not distinguishable from chance at this size."
    )


def test_sentence_names_another_graded_score():
    assert (
        "mean judge score is 0.60"
        in compare_paired(*half_point_steps(7, 3), split="test", score_label="judge score").sentence
    )


def test_sentence_when_no_example_changed():
    comparison = compare_paired([1, 0, 1], [1, 0, 1], split="test")
    assert comparison.sentence == (
        "On 3 test examples the optimized prompt got 2 right and the baseline 2 (p = 1): no example scored differently."
    )
    assert (comparison.interval.low, comparison.interval.high) == (0.0, 0.0)


def test_sentence_of_one_example_is_singular_and_never_significant():
    comparison = compare_paired([0.2], [0.9], split="test")
    assert comparison.sentence.startswith("On 1 test example the optimized")
    assert comparison.p_value == 1.0 and not comparison.significant


@pytest.mark.parametrize(
    ("p_value", "text"),
    [
        (0.00004, "p < 0.0001"),
        (0.0001, "p = 0.0001"),
        (0.00031, "p = 0.0003"),
        (0.0031, "p = 0.003"),
        (0.0312, "p = 0.03"),
        (0.41, "p = 0.41"),
        (1.0, "p = 1"),
    ],
)
def test_p_values_are_shown_with_the_decimals_they_need(p_value, text):
    assert format_p_value(p_value) == text


def test_p_value_rounding_never_crosses_the_significance_level():
    assert format_p_value(0.0496) == "p = 0.0496"
    assert format_p_value(0.0504) == "p = 0.05"


@pytest.mark.parametrize("scores", [right_wrong(1, 9, both_right=2), graded()], ids=["mcnemar", "sign_flip"])
def test_comparison_round_trips_through_json(scores):
    comparison = compare_paired(*scores, split="validation")
    assert PairedComparison.from_dict(json.loads(json.dumps(comparison.to_dict()))) == comparison


def test_comparison_dict_holds_only_plain_values():
    def plain(value):
        if isinstance(value, dict):
            return all(plain(v) for v in value.values())
        return type(value) in (int, float, str, bool)

    assert plain(compare_paired(*graded(), split="test").to_dict())


def test_stored_comparison_with_an_unknown_test_is_refused():
    data = compare_paired(*graded(), split="test").to_dict() | {"method": "t_test"}
    with pytest.raises(ValueError, match="unknown test 't_test'"):
        PairedComparison.from_dict(data)


def test_comparison_needs_a_split_name():
    with pytest.raises(ValueError, match="Name the split"):
        compare_paired([1], [1], split=" ")


def comparison_with_gain(gain: float, low: float, high: float, split: str) -> PairedComparison:
    """A comparison whose mean difference is ``gain`` with the interval ``[low, high]``."""
    return PairedComparison(
        split=split,
        before_mean=0.4,
        after_mean=0.4 + gain,
        significance_test=PermutationResult(n=30, changed=20, mean_difference=gain, p_value=0.01, exact=False),
        interval=Interval(low=low, high=high, mean_difference=gain, level=0.95, resamples=5_000),
    )


def test_overfitting_flag_fires_when_the_validation_gain_is_above_the_test_interval():
    validation = comparison_with_gain(0.40, 0.25, 0.55, "validation")
    test = comparison_with_gain(0.05, -0.05, 0.12, "test")
    assert overfitting_flag(validation, test) == (
        "The validation gain (+0.40) is above the whole 95% interval of the test gain (-0.05 to +0.12): "
        "the optimized prompt may be fitted to the validation examples, so quote the test result."
    )


def test_overfitting_flag_is_silent_when_the_validation_gain_is_inside_the_test_interval():
    validation = comparison_with_gain(0.30, 0.15, 0.45, "validation")
    assert overfitting_flag(validation, comparison_with_gain(0.20, 0.05, 0.35, "test")) is None


def test_overfitting_flag_is_silent_at_the_top_of_the_test_interval():
    validation = comparison_with_gain(0.35, 0.15, 0.45, "validation")
    assert overfitting_flag(validation, comparison_with_gain(0.20, 0.05, 0.35, "test")) is None


def test_overfitting_flag_is_silent_when_the_test_gain_is_larger():
    validation = comparison_with_gain(0.10, 0.0, 0.2, "validation")
    assert overfitting_flag(validation, comparison_with_gain(0.40, 0.25, 0.55, "test")) is None


def test_overfitting_flag_on_real_comparisons():
    validation = compare_paired(*right_wrong(0, 12, both_right=8), split="validation")  # gain 0.6
    test = compare_paired(*right_wrong(3, 4, both_right=8, both_wrong=5), split="test")  # gain 0.05
    assert overfitting_flag(validation, test) is not None
    assert overfitting_flag(test, validation) is None


EVERY_FUNCTION = [
    exact_mcnemar,
    sign_flip_test,
    paired_bootstrap_ci,
    lambda before, after: compare_paired(before, after, split="test"),
]
FUNCTION_IDS = ["exact_mcnemar", "sign_flip_test", "paired_bootstrap_ci", "compare_paired"]


@pytest.mark.parametrize("function", EVERY_FUNCTION, ids=FUNCTION_IDS)
def test_empty_scores_are_refused(function):
    with pytest.raises(ValueError, match="no examples to compare"):
        function([], [])


@pytest.mark.parametrize("function", EVERY_FUNCTION, ids=FUNCTION_IDS)
def test_scores_of_different_lengths_are_refused(function):
    with pytest.raises(ValueError, match="got 3 baseline scores and 2 optimized scores"):
        function([1, 0, 1], [1, 0])


@pytest.mark.parametrize("function", EVERY_FUNCTION, ids=FUNCTION_IDS)
def test_missing_scores_are_refused(function):
    with pytest.raises(ValueError, match="baseline score at position 1 is nan"):
        function([1, float("nan")], [1, 0])
