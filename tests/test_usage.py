"""Tokens and seconds of every model call, metered per role, against what the endpoint served."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from core.models import (
    Endpoint,
    ModelConfig,
    ReflectionModel,
    RetryPolicy,
    TaskModel,
    Usage,
    UsageMeter,
    check_model,
    reported_usage,
)
from core.offline_model.behaviour import MODEL_NAME
from core.tokens import chat_prompt_tokens, text_tokens

FAST = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05)
QUESTIONS = [
    "Answer: How many legs does an insect have?",
    "Answer: Who wrote the novel Pride and Prejudice?",
    "Answer: What is the capital city of Turkey?",
    "Answer: Is a tomato a fruit in the botanical sense?",
]


def config_for(server) -> ModelConfig:
    return ModelConfig("openai", model=MODEL_NAME, base_url=server.base_url, api_key="x")


def models_for(server, meter: UsageMeter) -> tuple[TaskModel, ReflectionModel]:
    endpoint = Endpoint(server.base_url, "x")
    config = config_for(server)
    return TaskModel(config, endpoint, FAST, meter=meter), ReflectionModel(config, endpoint, FAST, meter=meter)


def reflection_prompt(question: str) -> str:
    return (
        "I provided an assistant with the following instructions to perform a task for me:\n```\n"
        "Answer this question: {{question}}\n```\n\nThe following are examples of different task inputs "
        "provided to the assistant along with the assistant's response for each of them, and some feedback "
        f"on how the assistant's response could be better:\n```\n# Example 1\n## Inputs\n### question\n{question}"
        "\n\n## Generated Outputs\nAn insect has six legs.\n\n## Expectations\n### expected_response\n6\n\n"
        "## Score\n0.0\n```\n\nYour task is to write a new instruction for the assistant."
    )


def within_one_percent(client: int, served: int) -> bool:
    return abs(client - served) <= 0.01 * max(served, 1)


def test_the_client_meters_what_the_endpoint_served_per_role(endpoint_factory):
    server = endpoint_factory()
    meter = UsageMeter()
    task, reflection = models_for(server, meter)
    for question in QUESTIONS:
        task.complete(question)
    reflection(reflection_prompt(QUESTIONS[0]))
    served = server.served.snapshot()
    for role, kind in (("task", "task"), ("reflection", "reflection")):
        usage = meter.usage(role)
        assert usage.responses == served[kind].responses
        assert within_one_percent(usage.prompt_tokens, served[kind].prompt_tokens)
        assert within_one_percent(usage.completion_tokens, served[kind].completion_tokens)
    assert meter.usage("task").responses == 4 and meter.usage("reflection").responses == 1
    assert meter.usage("judge") == Usage()


def test_concurrent_calls_are_all_counted(endpoint_factory):
    server = endpoint_factory()
    meter = UsageMeter()
    task, _ = models_for(server, meter)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(task.complete, QUESTIONS * 10))
    served = server.served.snapshot()["task"]
    usage = meter.usage("task")
    assert (usage.responses, usage.prompt_tokens, usage.completion_tokens) == (
        40,
        served.prompt_tokens,
        served.completion_tokens,
    )


def test_failed_attempts_cost_no_tokens_and_only_the_success_is_metered(endpoint_factory):
    server = endpoint_factory(fault_plan=("500", "429", "garbage"))
    meter = UsageMeter()
    task, _ = models_for(server, meter)
    task.complete(QUESTIONS[0])
    assert task.stats.retries == 3
    assert meter.usage("task").responses == 1 == server.served.snapshot()["task"].responses
    assert meter.usage("task").seconds > 0


def test_preflight_checks_are_metered_under_their_role(endpoint_factory):
    server = endpoint_factory()
    meter = UsageMeter()
    config = config_for(server)
    for role in ("task", "reflection", "judge"):
        check = check_model(config, role=role, meter=meter)
        assert check.ok and check.usage is not None and check.usage.responses == 1
        assert meter.usage(role) == check.usage
    served = server.served.snapshot()["task"]  # every probe is a task-style prompt
    assert meter.total().prompt_tokens == served.prompt_tokens and meter.total().responses == 3


def test_a_real_example_as_the_probe_shows_the_reply_length(offline_server):
    check = check_model(config_for(offline_server), role="task", prompt=QUESTIONS[0])
    assert check.usage.completion_tokens == text_tokens("An insect has six legs.")


def test_a_failed_check_reports_no_usage(endpoint_factory):
    locked = endpoint_factory(api_key="sk-good")
    config = ModelConfig("openai", model=MODEL_NAME, base_url=locked.base_url, api_key="sk-bad")
    meter = UsageMeter()
    check = check_model(config, role="task", meter=meter)
    assert not check.ok and check.usage is None and meter.total() == Usage()


def test_the_offline_usage_is_a_plausible_estimate_not_a_word_count(offline_server):
    import openai

    client = openai.OpenAI(base_url=offline_server.base_url, api_key="x")
    messages = [{"role": "user", "content": QUESTIONS[0]}]
    reply = client.chat.completions.create(model=MODEL_NAME, messages=messages)
    assert reply.usage.prompt_tokens == chat_prompt_tokens(messages) == 17  # 8 words -> 11 tokens, + 3 + 3 framing
    assert reply.usage.completion_tokens == text_tokens("An insect has six legs.") == 7


def test_token_estimate_rounds_up_four_tokens_per_three_words():
    assert text_tokens("") == 0
    assert text_tokens("Paris") == 2
    assert text_tokens("one two three") == 4
    messages = [{"role": "system", "content": "a b c"}, {"role": "user", "content": [{"text": "d"}]}]
    assert chat_prompt_tokens(messages) == (4 + 3) + (2 + 3) + 3


def test_usage_without_counts_is_unreported_not_zero():
    meter = UsageMeter()
    meter.record("task", prompt_tokens=None, completion_tokens=None, seconds=0.1)
    meter.record("task", prompt_tokens=10, completion_tokens=2, seconds=0.3)
    usage = meter.usage("task")
    assert (usage.responses, usage.unreported, usage.total_tokens) == (2, 1, 12)
    assert usage.completion_tokens_per_response == 2 and usage.seconds_per_response == pytest.approx(0.2)
    assert reported_usage({"usage": None}) == (None, None)
    assert reported_usage({"usage": {"prompt_tokens": 3, "completion_tokens": 1}}) == (3, 1)


def test_unknown_roles_are_refused():
    with pytest.raises(ValueError, match="Unknown role 'grader'"):
        UsageMeter().record("grader", prompt_tokens=1, completion_tokens=1, seconds=0)  # type: ignore[arg-type]
