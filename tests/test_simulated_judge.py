"""The offline demo model as a simulated judge: its documented rules, case by case, and its endpoint."""

import json

import pytest

from core.offline_model.behaviour import (
    JUDGE_MARKER,
    MODEL_NAME,
    judge_answer,
    judge_reply,
    parse_judge_request,
)
from core.scorers import exact_match


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("twelve", "12"),
        ("Twelve.", "12"),
        ("12", "twelve"),
        ("The answer is 12.", "12"),
        ("A cube has twelve edges.", "12"),
        ("The adult human body has two hundred and six bones.", "206"),
        ("A full set of adult human teeth has thirty-two teeth.", "32"),
        ("Yes, it is", "yes"),
        ("Yes.", "yes"),
        ("No, a spider is an arachnid, not an insect.", "no"),
        ("Paris.", "Paris"),
        ("PARIS", "paris"),
        ("The capital city of Turkey is Ankara.", "Ankara"),
        ("The Tigris", "Tigris"),
        ("Hague", "The Hague"),
        ("Washington, D.C", "Washington, D.C."),
        ("3 Gorges Dam", "Three Gorges Dam"),
        ("Sir Isaac Newton", "Isaac Newton"),
        ("Marie Skłodowska-Curie", "Marie Curie"),
        ("My best guess is W.", "W"),
        ("Let me think it through step by step. A cube has twelve edges. So my answer is: twelve.", "12"),
    ],
)
def test_it_accepts_what_a_sensible_judge_would(output, expected):
    decision = judge_answer(output, expected)
    assert decision.correct, decision.rationale


@pytest.mark.parametrize(
    ("output", "expected", "reason"),
    [
        ("I'm not sure, but maybe Lima", "Lima", "hedges"),
        ("I'm not sure, but it might be Lima.", "Lima", "hedges"),
        ("I'm not entirely sure, but I think an octopus has three hearts.", "3", "hedges"),
        ("I'm not sure I know the answer to that.", "Lima", "hedges"),
        ("Probably Lima.", "Lima", "hedges"),
        ("Sydney.", "Canberra", "different answer"),
        ("The capital city of Australia is Sydney.", "Canberra", "different answer"),
        ("1990", "1989", "different answer"),
        ("Either Lima or Cusco.", "Lima", "several candidates"),
        ("Lima or Cusco", "Lima", "several candidates"),
        ("Lima/Cusco", "Lima", "several candidates"),
        ("Austen", "Jane Austen", "only part"),
        ("It is not Paris.", "Paris", "denies"),
        ("No.", "yes", "says no"),
        ("It is larger.", "yes", "does not say yes or no"),
        ("", "Paris", "empty"),
        (
            "Let me think it through step by step. Sydney is the capital. So my answer is: Sydney.",
            "Canberra",
            "different",
        ),
    ],
)
def test_it_rejects_wrong_hedged_and_undecided_answers(output, expected, reason):
    decision = judge_answer(output, expected)
    assert not decision.correct and reason in decision.rationale


def test_it_disagrees_with_exact_match_where_a_real_judge_would():
    assert exact_match("Twelve.", "12") == 0.0 and judge_answer("Twelve.", "12").correct
    assert exact_match("Yes, it is", "yes") == 0.0 and judge_answer("Yes, it is", "yes").correct


def test_the_rationale_says_why_in_a_sentence():
    assert (
        judge_answer("Twelve.", "12").rationale
        == "The answer 'Twelve.' gives the expected answer '12', written differently."
    )
    assert "in a sentence" in judge_answer("A cube has twelve edges.", "12").rationale


def mlflow_style_request(output: str, expected: str, question: str = "How many edges does a cube have?") -> list[dict]:
    """The two messages mlflow.genai.judges.make_judge sends (system prompt, then the fields as JSON)."""
    system = f"{JUDGE_MARKER} the performance of an AI\nagent on a particular query.\n\nYour task: judge it."
    user = "\n".join(
        [
            f"outputs: {json.dumps(output)}",
            f"expectations: {json.dumps({'expected_response': expected}, indent=2)}",
            f"inputs: {json.dumps({'question': question}, indent=2)}",
        ]
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def test_a_judge_request_is_parsed_from_mlflows_fields():
    prompt = "\n\n".join(m["content"] for m in mlflow_style_request('He said "twelve"\nthen left', "12"))
    assert parse_judge_request(prompt) == ('He said "twelve"\nthen left', "12")
    assert json.loads(judge_reply(prompt))["result"] == "yes"
    assert json.loads(judge_reply(JUDGE_MARKER + " but with no fields"))["result"] == "no"


def test_the_endpoint_routes_judge_requests_to_the_judge_and_counts_them(endpoint_factory):
    import openai

    server = endpoint_factory()
    client = openai.OpenAI(base_url=server.base_url, api_key="x")
    reply = client.chat.completions.create(model=MODEL_NAME, messages=mlflow_style_request("Twelve.", "12"))
    verdict = json.loads(reply.choices[0].message.content)
    assert verdict["result"] == "yes" and "written differently" in verdict["rationale"]
    served = server.served.snapshot()
    assert served["judge"].responses == 1 and served["task"].responses == 0
    assert served["judge"].prompt_tokens == reply.usage.prompt_tokens
