"""Prices from litellm's bundled cost map or from the user; unknown stays unknown; the demo is free."""

import subprocess
import sys

import pytest

from core.models import ModelConfig, Usage
from core.pricing import SIMULATED_PRICE, Price, cost_of, known_price, price_for, run_prices

OPENAI = ModelConfig("openai", api_key="sk-test")
OLLAMA = ModelConfig("openai", model="llama3.1", base_url="http://127.0.0.1:11434/v1")


def test_a_known_openai_model_is_priced_from_the_cost_map():
    price = price_for(OPENAI, "gpt-4o-mini")
    assert (price.input_per_million, price.output_per_million, price.source) == (
        pytest.approx(0.15),
        pytest.approx(0.60),
        "cost map",
    )


def test_the_cost_map_is_the_one_litellm_loads():
    import litellm

    entry = litellm.model_cost["gpt-4o-mini"]
    price = known_price("openai/gpt-4o-mini")
    assert price.input_per_million == pytest.approx(entry["input_cost_per_token"] * 1e6)
    assert price.output_per_million == pytest.approx(entry["output_cost_per_token"] * 1e6)


def test_an_unknown_model_is_priced_from_the_users_text():
    assert price_for(OLLAMA, "llama3.1", Price.parse("0.15,0.60")) == Price(0.15, 0.60, "user")
    assert Price.parse(" $0.15 , $0.6 ") == Price(0.15, 0.6)


def test_a_model_with_no_known_price_costs_unknown_not_zero():
    assert price_for(OLLAMA, "llama3.1") is None
    assert price_for(OLLAMA, "gpt-4o-mini") is None  # someone else's endpoint: its own prices
    assert price_for(OPENAI, "my-fine-tune-xyz") is None
    cost = cost_of({"task": Usage(10, 1000, 50)}, {"task": None})
    assert cost.total is None and cost.describe().startswith("unknown: no price for the task model")


@pytest.mark.parametrize("text", ["", "abc", "0.15", "0.15,", "-1,2", "0.15,0.60,1", "1e999,1"])
def test_bad_price_text_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match=r"for example 0\.15,0\.60|0 or more"):
        Price.parse(text)


def test_the_offline_model_costs_nothing_and_says_it_is_simulated():
    prices = run_prices(ModelConfig())
    assert set(prices.values()) == {SIMULATED_PRICE}
    cost = cost_of({"task": Usage(5, 500, 40), "reflection": Usage(1, 300, 100)}, prices)
    assert cost.total == 0 and cost.simulated and "simulated" in cost.describe()


def test_cost_per_role_and_in_total():
    prices = {"task": Price(0.15, 0.60), "reflection": Price(2.5, 10.0), "judge": Price(0.15, 0.60)}
    usage = {
        "task": Usage(100, 1_000_000, 100_000),
        "reflection": Usage(2, 4_000, 1_000),
        "judge": Usage(),
    }
    cost = cost_of(usage, prices)
    assert cost.by_role == {"task": pytest.approx(0.21), "reflection": pytest.approx(0.02)}
    assert cost.total == pytest.approx(0.23)
    assert cost.describe() == "$0.2300 (task $0.2100, reflection $0.0200)"


def test_a_role_whose_responses_reported_no_usage_is_unknown():
    cost = cost_of({"task": Usage(3, 100, 10, unreported=1)}, {"task": Price(1, 1)})
    assert cost.by_role == {"task": None} and cost.total is None


def test_run_prices_name_each_roles_model():
    prices = run_prices(OPENAI, judge_model="gpt-4o", user_prices={"task": Price(1, 2)})
    assert prices["task"] == Price(1, 2)
    assert prices["reflection"] == prices["judge"] == known_price("gpt-4o")


def test_reading_prices_never_imports_litellm():
    # What it costs in seconds is benchmarks/judge_cost.py's to say; here: litellm is never imported.
    code = (
        "import sys; from core.pricing import known_price; p = known_price('gpt-4o-mini'); "
        "print('litellm' in sys.modules, p is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
