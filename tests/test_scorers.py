import pytest

from core.scorers import ScorerSpec, contains_answer, exact_match, normalize, token_f1


def test_squad_normalisation_in_full():
    assert normalize("  The  Pacific, Ocean! ", ["case", "whitespace", "punctuation", "articles"]) == "pacific ocean"


def test_each_normalisation_switch_is_independent():
    assert normalize("The Hague.", ["case"]) == "the hague."
    assert normalize("The Hague.", ["punctuation"]) == "The Hague"
    assert normalize("The Hague.", ["articles"]) == "Hague."
    assert normalize(" a  b ", ["whitespace"]) == "a b"


def test_unicode_punctuation_is_removed():
    assert normalize("“Paris”…", ["punctuation"]) == "Paris"


def test_exact_match_default_ignores_case_and_spaces_only():
    assert exact_match(" paris ", "Paris") == 1.0
    assert exact_match("Paris.", "Paris") == 0.0


def test_token_f1_gives_partial_credit():
    assert token_f1("Marie Curie", "Curie") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_contains_needs_whole_words():
    assert contains_answer("It is Paris.", "Paris") == 1.0
    assert contains_answer("I do not know", "no") == 0.0


def test_failed_model_calls_score_zero_with_their_own_explanation():
    spec = ScorerSpec("contains")
    output = "Failed to invoke the predict_fn with {}: timeout"
    assert spec.score(output, "Failed") == 0.0
    assert "call failed" in spec.explain(output, "x")


def test_spec_parses_cli_text():
    spec = ScorerSpec.parse("f1", "articles, case")
    assert spec.normalization == ("case", "articles")
    assert ScorerSpec.parse("exact_match", "none").normalization == ()


def test_spec_rejects_unknown_names():
    with pytest.raises(ValueError, match="Unknown normalisation 'accents'"):
        ScorerSpec.parse("exact_match", "case,accents")
    with pytest.raises(ValueError, match="Unknown scorer 'bleu'"):
        ScorerSpec("bleu")  # type: ignore[arg-type]


def test_explanation_states_normalised_forms():
    assert "expected 'paris', got 'the answer is paris.'" in ScorerSpec().explain("The answer is Paris.", "Paris")


def test_mlflow_scorer_returns_feedback_with_rationale():
    from mlflow.entities import Feedback

    scorer = __import__("core.scorers", fromlist=["x"]).to_mlflow_scorer(ScorerSpec())
    result = scorer.run(outputs="Paris", expectations={"expected_response": "paris"})
    assert isinstance(result, Feedback) and result.value == 1.0 and "matches" in result.rationale
