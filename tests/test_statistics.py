import json

import pytest
from scipy.stats import binomtest

from core.statistics import McNemarResult, exact_mcnemar


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


def test_empty_scores_are_refused():
    with pytest.raises(ValueError, match="no examples to compare"):
        exact_mcnemar([], [])


def test_scores_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="got 3 baseline scores and 2 optimized scores"):
        exact_mcnemar([1, 0, 1], [1, 0])


def test_missing_scores_are_refused():
    with pytest.raises(ValueError, match="baseline score 1 is nan"):
        exact_mcnemar([1, float("nan")], [1, 0])
