"""The LLM judge through MLflow's judge machinery, against the offline endpoint at the HTTP boundary."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from core.judges import (
    JUDGE_FAILED_PREFIX,
    JudgeConfig,
    JudgeError,
    LLMJudge,
    Verdict,
    VerdictCache,
    agreement,
    agreement_lesson,
    check_judge,
)
from core.models import Endpoint, ModelAccessError, ModelConfig, RetryPolicy, UsageMeter
from core.offline_model.behaviour import MODEL_NAME
from core.scorers import SCORER_KINDS, ScorerSpec, compare_scorers, to_mlflow_scorer

FAST = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.05)
QUESTION = "How many edges does a cube have?"


def judge_on(server, *, key: str = "x", timeout: float = 10.0, **kwargs) -> LLMJudge:
    models = ModelConfig("openai", model=MODEL_NAME, base_url=server.base_url, api_key=key, timeout_seconds=timeout)
    return LLMJudge(JudgeConfig(models), endpoint=Endpoint(server.base_url, key), policy=FAST, **kwargs)


def judge_requests(server) -> int:
    return server.served.snapshot()["judge"].responses


def test_a_judgement_runs_end_to_end_through_mlflows_judge(endpoint_factory):
    server = endpoint_factory()
    meter = UsageMeter()
    verdict = judge_on(server, meter=meter).judge(QUESTION, "Twelve.", "12")
    assert verdict == Verdict(1.0, "The answer 'Twelve.' gives the expected answer '12', written differently.")
    served = server.served.snapshot()["judge"]
    assert served.responses == 1 and server.served.snapshot()["task"].responses == 0
    usage = meter.usage("judge")
    assert (usage.responses, usage.prompt_tokens, usage.completion_tokens) == (
        1,
        served.prompt_tokens,
        served.completion_tokens,
    )
    assert usage.prompt_tokens > 150  # MLflow's judge prompt and our instructions come with every call


def test_the_simulated_judge_rejects_a_hedge_that_contains_the_answer(offline_server):
    verdict = judge_on(offline_server).judge("Capital of Peru?", "I'm not sure, but maybe Lima", "Lima")
    assert verdict.score == 0.0 and "hedges" in verdict.rationale


def test_the_offline_provider_gives_the_simulated_judge_labelled_as_such():
    config = JudgeConfig(ModelConfig())
    assert config.simulated and "Simulated judge" in config.label and config.judge_model == MODEL_NAME
    assert LLMJudge(config).judge({"question": QUESTION}, "A cube has twelve edges.", "12").score == 1.0


def test_an_identical_pair_is_judged_once(endpoint_factory):
    server = endpoint_factory()
    judge = judge_on(server)
    first = judge.judge(QUESTION, "Twelve.", "12")
    second = judge.judge("How many months are in a year?", "Twelve.", "12")
    assert second == first and second.cached and not first.cached
    assert judge_requests(server) == 1 and judge.stats.calls == 1
    assert judge.cache.hit_rate == 0.5


def test_concurrent_identical_pairs_make_one_call(endpoint_factory):
    server = endpoint_factory(delay_ms=100)
    judge = judge_on(server)
    judge.judge(QUESTION, "warm-up", "12")  # MLflow's judge module is imported once, outside the race
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda _: judge.judge(QUESTION, "Twelve.", "12"), range(8)))
    assert {v.score for v in verdicts} == {1.0} and judge_requests(server) == 2
    assert judge.cache.snapshot() == {"hits": 7, "misses": 2, "pairs": 2}


def test_a_run_shares_one_cache_between_judges():
    cache = VerdictCache()
    calls = []
    for _ in range(3):
        cache.get_or_judge("Six.", "6", lambda: calls.append(1) or Verdict(1.0, "ok"))
    assert len(calls) == 1 and cache.hits == 2


@pytest.mark.parametrize("fault", ["500", "429", "garbage"])
def test_a_failing_judge_endpoint_is_retried_and_counted(endpoint_factory, fault):
    server = endpoint_factory(fault_plan=(fault, fault))
    judge = judge_on(server)
    assert judge.judge(QUESTION, "Twelve.", "12").score == 1.0
    assert judge.stats.snapshot()["retries"] == 2 and judge.stats.failures == 0
    assert judge_requests(server) == 1  # each fault was one request: MLflow and litellm did not retry


def test_a_judge_timeout_is_retried(endpoint_factory):
    judge = judge_on(endpoint_factory(fault_plan=("timeout",), timeout_fault_seconds=3), timeout=0.5)
    assert judge.judge(QUESTION, "Twelve.", "12").score == 1.0 and judge.stats.retries == 1


def test_a_judge_that_keeps_failing_raises_and_is_not_scored(endpoint_factory):
    server = endpoint_factory(fault_plan=("500",) * 4)
    judge = judge_on(server)
    with pytest.raises(JudgeError, match=r"judge model call failed after 4 attempt\(s\): server error \(500\)"):
        judge.judge(QUESTION, "Twelve.", "12")
    assert judge.stats.failures == 1
    assert judge.judge(QUESTION, "Twelve.", "12").score == 1.0  # failures are not cached: asked again


def test_a_refused_key_stops_at_once_and_never_shows_the_key(endpoint_factory):
    server = endpoint_factory(api_key="sk-good")
    judge = judge_on(server, key="sk-bad-5678")
    with pytest.raises(ModelAccessError, match=r"refused the API key \(401\)") as error:
        judge.judge(QUESTION, "Twelve.", "12")
    assert judge.stats.retries == 0 and "sk-bad-5678" not in str(error.value) + repr(judge)


def test_the_mlflow_scorer_gives_the_verdict_and_rationale(offline_server):
    from mlflow.entities import Feedback

    judge = judge_on(offline_server)
    scorer = to_mlflow_scorer(ScorerSpec("llm_judge"), judge=judge)
    result = scorer.run(inputs={"question": QUESTION}, outputs="Twelve.", expectations={"expected_response": "12"})
    assert isinstance(result, Feedback) and result.value == 1.0 and "written differently" in result.rationale
    failed = scorer.run(
        inputs={"question": QUESTION}, outputs="Failed to invoke the predict_fn with {}: boom", expectations={}
    )
    assert failed.value == 0.0 and judge.stats.calls == 1  # a failed prediction is not sent to the judge


def test_the_mlflow_scorer_marks_a_failed_judgement(endpoint_factory):
    judge = judge_on(endpoint_factory(fault_plan=("500",) * 4))
    scorer = to_mlflow_scorer(ScorerSpec("llm_judge"), judge=judge)
    result = scorer.run(inputs={"question": QUESTION}, outputs="Twelve.", expectations={"expected_response": "12"})
    assert result.value == 0.0 and result.metadata == {"judge_failed": True}
    assert result.rationale.startswith(JUDGE_FAILED_PREFIX) and result.error is not None
    assert judge.stats.failures == 1


def test_check_judge_proves_the_whole_path(endpoint_factory):
    server = endpoint_factory()
    meter = UsageMeter()
    models = ModelConfig("openai", model=MODEL_NAME, base_url=server.base_url, api_key="x")
    check = check_judge(JudgeConfig(models), meter=meter)
    assert check.ok and "said yes" in check.message and meter.usage("judge") == check.usage
    locked = endpoint_factory(api_key="sk-good")
    bad = ModelConfig("openai", model=MODEL_NAME, base_url=locked.base_url, api_key="sk-bad")
    assert not check_judge(JudgeConfig(bad)).ok


def test_judge_config_validates_the_model_name():
    with pytest.raises(ValueError, match="simulated judge is only 'gepa-offline-demo'"):
        JudgeConfig(ModelConfig(), model="gpt-4o-mini")
    with pytest.raises(ValueError, match="judge model name is empty"):
        JudgeConfig(ModelConfig(), model=" ")
    openai = ModelConfig("openai", api_key="sk-1")
    assert JudgeConfig(openai).judge_model == "gpt-4o-mini"  # default: the task model
    assert JudgeConfig(openai, model="gpt-4o").mlflow_model_uri == "hosted_vllm:/gpt-4o"
    assert "sk-1" not in str(JudgeConfig(openai).public_dict())


# --- the scorer spec ---------------------------------------------------------------------------


def test_the_judge_is_a_scorer_kind_that_cannot_score_without_a_model():
    spec = ScorerSpec.parse("llm_judge", "case,whitespace", judge_model="gpt-4o")
    assert spec.needs_model and spec.label == "LLM judge (gpt-4o)"
    assert ScorerSpec("llm_judge").label == "LLM judge (the task model)"
    with pytest.raises(ValueError, match="cannot score from the texts alone"):
        spec.score("Twelve.", "12")
    with pytest.raises(ValueError, match="needs the run's judge"):
        to_mlflow_scorer(spec)


def test_a_judge_model_only_goes_with_the_judge():
    with pytest.raises(ValueError, match="only applies to the LLM judge"):
        ScorerSpec("exact_match", judge_model="gpt-4o")


def test_the_pure_scorers_are_unchanged():
    assert SCORER_KINDS == ("exact_match", "f1", "contains")
    rows = compare_scorers(["12"], ["Twelve."], ["12"], ("case", "whitespace"))
    assert [r["scorer"].split(" (")[0] for r in rows] == ["Exact match", "Token F1", "Contains answer"]


# --- agreement ---------------------------------------------------------------------------------


def test_agreement_counts_the_two_by_two_table_and_the_disagreements():
    result = agreement([1, 1, 0, 0, 1], [1, 0, 0, 1, 0])
    assert (result.both_right, result.both_wrong, result.judge_only, result.exact_only) == (1, 1, (1, 4), (3,))
    assert result.disagreements == (1, 3, 4) and result.rate == 0.4
    assert result.table() == [
        {"judge": "right", "exact match right": 1, "exact match wrong": 2},
        {"judge": "wrong", "exact match right": 1, "exact match wrong": 1},
    ]


def test_agreement_needs_one_score_of_each_per_output():
    with pytest.raises(ValueError, match="3 judge scores and 2 exact-match scores"):
        agreement([1, 0, 1], [1, 0])


def test_the_lesson_names_the_direction_of_the_disagreement():
    one_way = agreement([1, 1, 0], [0, 1, 0])
    lesson = agreement_lesson(one_way, ["Twelve.", "6", "x"], ["12", "6", "y"])
    assert lesson.startswith("The judge accepts 1 of 3 outputs that exact match rejects")
    assert '"Twelve." for "12"' in lesson and "undercounts" in lesson
    assert "agree on all 2" in agreement_lesson(agreement([1, 0], [1, 0]))
    assert "both directions" in agreement_lesson(agreement([1, 0], [0, 1]))
    assert "rejects 1 of 1" in agreement_lesson(agreement([0], [1]))
    assert agreement_lesson(agreement([], [])) == "There are no outputs to compare."
