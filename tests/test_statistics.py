import json
import math

import pytest
from scipy.stats import binomtest

from core.statistics import (
    Interval,
    McNemarResult,
    PermutationResult,
    exact_mcnemar,
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
    with pytest.raises(ValueError, match=r"optimized score 1 is 0\.5.*sign_flip_test"):
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


def test_empty_scores_are_refused():
    with pytest.raises(ValueError, match="no examples to compare"):
        exact_mcnemar([], [])


def test_scores_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="got 3 baseline scores and 2 optimized scores"):
        exact_mcnemar([1, 0, 1], [1, 0])


def test_missing_scores_are_refused():
    with pytest.raises(ValueError, match="baseline score 1 is nan"):
        exact_mcnemar([1, float("nan")], [1, 0])
