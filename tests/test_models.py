"""Model calls against a loopback endpoint that injects 429, 500, timeouts and garbage bodies."""

import pytest

from core.models import (
    Endpoint,
    ModelAccessError,
    ModelCallError,
    ModelConfig,
    ReflectionModel,
    RetryPolicy,
    TaskModel,
    check_model,
    public_url,
    redact,
)
from core.offline_model.behaviour import MODEL_NAME

FAST = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05)
PROMPT = "Answer: How many legs does an insect have?"


def task_model(server, *, retries: int = 4, timeout: float = 5.0, key: str = "x", model: str = MODEL_NAME) -> TaskModel:
    config = ModelConfig("openai", model=model, base_url=server.base_url, api_key=key, timeout_seconds=timeout)
    return TaskModel(config, Endpoint(server.base_url, key), RetryPolicy(retries, 0.01, 0.05))


@pytest.mark.parametrize("fault", ["429", "500", "garbage"])
def test_transient_fault_is_retried_and_counted(endpoint_factory, fault):
    model = task_model(endpoint_factory(fault_plan=(fault, fault)))
    assert model.complete(PROMPT) == "An insect has six legs."
    assert model.stats.snapshot()["retries"] == 2 and model.stats.failures == 0


def test_timeout_is_retried(endpoint_factory):
    model = task_model(endpoint_factory(fault_plan=("timeout",), timeout_fault_seconds=3), timeout=0.5)
    assert model.complete(PROMPT) == "An insect has six legs."
    assert model.stats.retries == 1


def test_retry_after_header_sets_the_wait(endpoint_factory):
    import time

    model = task_model(endpoint_factory(fault_plan=("429",), retry_after_seconds=0.6))
    started = time.perf_counter()
    model.complete(PROMPT)
    assert time.perf_counter() - started >= 0.6  # the backoff alone would wait about 0.01 s


def test_backoff_grows_and_is_capped():
    import random

    policy = RetryPolicy(max_retries=9, base_delay=0.5, max_delay=4.0)
    rng = random.Random(0)
    delays = [policy.delay(attempt, None, rng) for attempt in range(6)]
    assert delays[0] <= 0.5 and max(delays) <= 4.0 and delays[3] > delays[0]
    assert policy.delay(0, 120.0, rng) == policy.max_wait


def test_exhausted_retries_raise_a_call_error_with_the_cause(endpoint_factory):
    model = task_model(endpoint_factory(fault_plan=("500",) * 3), retries=2)
    with pytest.raises(ModelCallError, match=r"failed after 3 attempt\(s\): server error \(500\)"):
        model.complete(PROMPT)
    assert model.stats.failures == 1


def test_refused_key_is_permanent_and_not_retried(endpoint_factory):
    model = task_model(endpoint_factory(api_key="sk-good"), key="sk-bad-1234")
    with pytest.raises(ModelAccessError, match=r"refused the API key \(401\)") as error:
        model.complete(PROMPT)
    assert "sk-bad-1234" not in str(error.value)
    assert model.stats.retries == 0


def test_unknown_model_is_permanent(offline_server):
    with pytest.raises(ModelAccessError, match="does not know the model 'gpt-9'"):
        task_model(offline_server, model="gpt-9").complete(PROMPT)


def test_unreachable_endpoint_is_reported_after_retries():
    config = ModelConfig("openai", model="m", base_url="http://127.0.0.1:9/v1", api_key="x", timeout_seconds=1)
    model = TaskModel(config, Endpoint("http://127.0.0.1:9/v1", "x"), RetryPolicy(1, 0.01, 0.01))
    with pytest.raises(ModelCallError, match="127.0.0.1:9"):
        model.complete("hi")


def test_reflection_is_retried_like_the_task_model(endpoint_factory):
    server = endpoint_factory(fault_plan=("429", "garbage"))
    config = ModelConfig("openai", model=MODEL_NAME, base_url=server.base_url, api_key="x")
    reflection = ReflectionModel(config, Endpoint(server.base_url, "x"), FAST)
    assert reflection("Answer: Who wrote the novel Pride and Prejudice?") == "Jane Austen"
    assert reflection.stats.retries == 2


def test_check_model_reports_ok_and_failure(offline_server, endpoint_factory):
    good = ModelConfig("openai", model=MODEL_NAME, base_url=offline_server.base_url, api_key="x")
    assert check_model(good, role="task").ok
    locked = endpoint_factory(api_key="sk-good")
    bad = ModelConfig("openai", model=MODEL_NAME, base_url=locked.base_url, api_key="sk-bad")
    result = check_model(bad, role="reflection")
    assert not result.ok and "401" in result.message


def test_offline_config_needs_no_key_and_is_labelled_simulated():
    config = ModelConfig()
    assert config.task_model == MODEL_NAME and "simulated" in config.label
    assert config.public_dict()["simulated"] is True


def test_openai_without_key_is_refused_with_advice():
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        ModelConfig("openai")


def test_key_never_appears_in_public_form_or_repr():
    config = ModelConfig("openai", api_key="sk-secret-123", base_url="https://user:pw@host/v1")
    assert "sk-secret-123" not in repr(config)
    assert "sk-secret-123" not in str(config.public_dict())
    assert config.public_dict()["base_url"] == "https://host/v1"


def test_from_env_reads_openai_variables(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    config = ModelConfig.from_env("openai", model="llama3")
    assert config.api_key == "sk-env" and config.base_url == "http://127.0.0.1:11434/v1"
    assert config.reflection_model_name == "llama3"


def test_bad_base_url_is_explained():
    with pytest.raises(ValueError, match="not an http"):
        ModelConfig("openai", base_url="localhost:11434", api_key="x")


def test_redact_and_public_url():
    assert redact("key sk-abc is bad", "sk-abc") == "key *** is bad"
    assert public_url("http://a:b@h:1/v1") == "http://h:1/v1"


def test_a_rejected_request_is_not_retried_and_does_not_stop_the_run(endpoint_factory):
    model = task_model(endpoint_factory(fault_plan=("400",)))
    with pytest.raises(ModelCallError, match=r"after 1 attempt\(s\): request rejected \(400\)"):
        model.complete(PROMPT)
    assert model.stats.snapshot()["retries"] == 0
    assert model.complete(PROMPT) == "An insect has six legs."  # the next request goes through


def test_public_url_hides_query_values_that_may_carry_keys():
    assert public_url("https://gw.example/v1?key=sk-1&api-version=2") == "https://gw.example/v1?key=***&api-version=***"


def test_offline_options_do_not_mix_with_other_providers():
    with pytest.raises(ValueError, match="choose the openai provider"):
        ModelConfig("offline", base_url="http://127.0.0.1:11434/v1")
    with pytest.raises(ValueError, match="only 'gepa-offline-demo'"):
        ModelConfig("offline", model="llama3")
    with pytest.raises(ValueError, match="only apply to the offline demo model"):
        ModelConfig("openai", base_url="http://127.0.0.1:11434/v1", simulated_error_rate=0.1)
    assert ModelConfig("offline", model=MODEL_NAME).task_model == MODEL_NAME


def test_an_error_with_a_success_status_is_an_unreadable_response_and_retried():
    from core.models import classify_error

    class UnreadableBody(Exception):
        status_code = 200

    failure = classify_error(
        UnreadableBody("Unable to get json response"), who="judge", model="m", base_url="http://h/v1"
    )
    assert not failure.permanent and failure.retry and "could not be read" in failure.message


def in_process_model(server, *, timeout: float = 5.0) -> TaskModel:
    """The task model as a run builds it for the offline provider: answered in this process."""
    config = ModelConfig("openai", model=MODEL_NAME, base_url=server.base_url, api_key="x", timeout_seconds=timeout)
    return TaskModel(config, Endpoint(server.base_url, "x", server.transport()), RetryPolicy(4, 0.01, 0.05))


@pytest.mark.parametrize("fault", ["429", "500", "garbage", "timeout"])
def test_the_in_process_path_meets_the_same_faults_and_retries_as_http(endpoint_factory, fault):
    server = endpoint_factory(fault_plan=(fault,), timeout_fault_seconds=3)
    model = in_process_model(server, timeout=0.5)
    assert model.complete(PROMPT) == "An insect has six legs."
    assert model.stats.snapshot()["retries"] == 1 and model.stats.failures == 0
    assert server.served.snapshot()["task"].responses == 1  # one reply served, from the shared totals


def test_the_in_process_path_sends_nothing_over_the_network_and_meters_the_same_usage(endpoint_factory):
    server = endpoint_factory()
    over_http, in_process = task_model(server), in_process_model(server)
    assert over_http.complete(PROMPT) == in_process.complete(PROMPT)
    http_usage, local_usage = over_http.meter.usage("task"), in_process.meter.usage("task")
    assert (http_usage.prompt_tokens, http_usage.completion_tokens) == (
        local_usage.prompt_tokens,
        local_usage.completion_tokens,
    )
    server.stop()  # no socket is needed any more
    assert in_process.complete(PROMPT) == "An insect has six legs."


def test_a_refused_key_is_refused_in_process_too(endpoint_factory):
    server = endpoint_factory(api_key="right")
    config = ModelConfig("openai", model=MODEL_NAME, base_url=server.base_url, api_key="wrong")
    model = TaskModel(config, Endpoint(server.base_url, "wrong", server.transport()), FAST)
    with pytest.raises(ModelAccessError):
        model.complete(PROMPT)
    assert model.stats.retries == 0
