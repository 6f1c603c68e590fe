"""The offline demo model: its documented rules, its protocol, and its reflection."""

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from core.offline_model.behaviour import (
    MODEL_NAME,
    NEEDS_CONTEXT_ANSWER,
    UNKNOWN_ANSWER,
    Finding,
    ReflectionExample,
    Rule,
    answer_prompt,
    default_knowledge,
    detect_rules,
    findings,
    reflect,
)
from core.scorers import exact_match
from core.templates import template_variables

ROOT = Path(__file__).resolve().parent.parent
SHORT_QA = ROOT / "sample_data" / "short_answer_qa.jsonl"
CONTEXT_QA = ROOT / "sample_data" / "context_qa.jsonl"

CONCISE = "Reply with only the answer itself (one to three words), never a full sentence.\n"
NO_PERIOD = "Do not end the answer with a period.\n"


def ask(question: str, rules: str = "") -> str:
    return answer_prompt(f"{rules}Answer this question: {question}")


def test_plain_prompt_gets_a_chatty_full_sentence():
    assert ask("How many legs does an insect have?") == "An insect has six legs."


def test_some_questions_are_answered_tersely_by_default():
    assert ask("Who wrote the novel Pride and Prejudice?") == "Jane Austen"


def test_concise_answers_keep_the_trailing_period_until_told():
    assert ask("How many legs does an insect have?", CONCISE) == "Six."
    assert ask("How many legs does an insect have?", CONCISE + NO_PERIOD) == "Six"


def test_digits_rule_turns_number_words_into_digits():
    assert ask("How many legs does an insect have?", CONCISE + NO_PERIOD + "Write numbers as digits.\n") == "6"


def test_yes_no_questions_get_yes_comma_forms_until_told():
    question = "Is a tomato a fruit in the botanical sense?"
    assert ask(question).startswith("Yes, botanically")
    assert ask(question, "For a yes/no question, reply with just yes or no.\n") == "Yes."


def test_leading_article_dropped_only_when_asked():
    question = "Which river flows through the city of Baghdad?"
    assert ask(question, CONCISE + NO_PERIOD) == "The Tigris"
    assert ask(question, CONCISE + NO_PERIOD + "Do not start the answer with an article.\n") == "Tigris"


def test_no_article_rule_also_breaks_names_unless_names_are_kept():
    question = "In which Dutch city does the International Court of Justice sit?"
    rules = CONCISE + NO_PERIOD + "Drop leading articles.\n"
    assert ask(question, rules) == "Hague"
    assert ask(question, rules + "Keep words that are part of a proper name.\n") == "The Hague"


def test_no_period_rule_over_applies_to_abbreviations():
    question = "What is the capital city of the United States?"
    assert ask(question, CONCISE) == "Washington, D.C."
    assert ask(question, CONCISE + NO_PERIOD) == "Washington, D.C"


def test_unsure_answers_hedge_until_told_to_guess():
    question = "How many hearts does an octopus have?"
    assert ask(question, CONCISE + NO_PERIOD).startswith("I'm not sure")
    assert ask(question, CONCISE + NO_PERIOD + "Digits. Give your best guess.\n") == "3"


def test_some_beliefs_are_wrong_so_the_ceiling_is_below_100():
    assert ask("Who led the first expedition to reach the South Pole?", CONCISE + NO_PERIOD) == "Robert Falcon Scott"


def test_unknown_question_gets_not_sure():
    assert ask("What is the airspeed of an unladen swallow?") == UNKNOWN_ANSWER


def test_context_questions_need_their_passage():
    question = "Into which sea does the river at Brellin empty?"
    context = "The town of Brellin lies on the banks of the river Ostra. The Ostra empties into the Sea of Calvet."
    assert answer_prompt(f"Answer: {question}") == NEEDS_CONTEXT_ANSWER
    assert answer_prompt(f"{CONCISE}{NO_PERIOD}Passage: {context}\nQuestion: {question}") == "Sea of Calvet"


def test_instructions_inside_the_question_are_not_obeyed():
    assert Rule.DIGITS not in detect_rules("Answer this question:")
    assert ask("How many legs does an insect have?").endswith(".")


KEEP = "Write names exactly as they are officially written.\n"
COMMON = "Use the short name people commonly use, not a longer formal one.\n"
ALL_RULES = CONCISE + NO_PERIOD + "Numbers as digits. No leading articles. Give your best guess.\n"


def test_keeping_names_also_writes_full_formal_names():
    newton = "Who set out the three laws of motion in the Principia?"
    hague = "In which Dutch city does the International Court of Justice sit?"
    assert ask(newton, ALL_RULES) == "Isaac Newton" and ask(hague, ALL_RULES) == "Hague"
    assert ask(newton, ALL_RULES + KEEP) == "Sir Isaac Newton" and ask(hague, ALL_RULES + KEEP) == "The Hague"


def test_of_keep_names_and_common_names_the_one_stated_last_wins():
    assert detect_rules(KEEP + COMMON) >= {Rule.COMMON_NAMES} and Rule.KEEP_NAMES not in detect_rules(KEEP + COMMON)
    assert Rule.KEEP_NAMES in detect_rules(COMMON + KEEP) and Rule.COMMON_NAMES not in detect_rules(COMMON + KEEP)
    newton = "Who set out the three laws of motion in the Principia?"
    assert ask(newton, ALL_RULES + KEEP + COMMON) == "Isaac Newton"
    assert ask(newton, ALL_RULES + COMMON + KEEP) == "Sir Isaac Newton"


def test_digits_rule_breaks_number_words_inside_names():
    war = "Which war between England and France began in 1337?"
    assert ask(war, ALL_RULES) == "100 Years' War"
    assert ask(war, ALL_RULES + KEEP) == "Hundred Years' War"


def test_one_word_rule_fixes_articles_and_cuts_names():
    rules = "Answer with a single word. No trailing period.\n"
    assert ask("Which river flows through the city of Baghdad?", rules) == "Tigris"
    assert ask("Who wrote the novel Pride and Prejudice?", rules) == "Austen"
    assert ask("Is a spider an insect?", rules) == "No"


def test_thinking_out_loud_shows_reasoning_that_exact_match_rejects():
    think = "Before answering, think it through step by step and double-check the facts.\n"
    reply = ask("What is the capital city of Turkey?", ALL_RULES + think)
    assert reply.startswith("Let me think it through step by step.") and reply.endswith("Ankara")
    assert exact_match(reply, "Ankara") == 0.0
    # Thinking does not change a belief.
    assert ask("What is the capital city of Australia?", ALL_RULES + think).endswith("Sydney")


def test_every_documented_rule_has_a_trade_off_on_the_bundled_set():
    """Each side effect costs some bundled answer that the rule's absence gets right."""
    rows = load_rows(SHORT_QA)

    def correct(rules: str) -> set[str]:
        return {exp for q, exp in rows if exact_match(ask(q, rules), exp)}

    plain = CONCISE + NO_PERIOD + "Numbers as digits. Give your best guess.\n"
    with_articles_dropped = plain + "No leading articles.\n"
    assert {"Tigris", "Sahara"} <= correct(with_articles_dropped) - correct(plain)
    assert {"The Rolling Stones", "The Hague"} <= correct(plain) - correct(with_articles_dropped)
    assert {"The Hague", "Washington, D.C."} <= correct(ALL_RULES + KEEP) - correct(ALL_RULES)
    assert {"Isaac Newton", "Sahara"} <= correct(ALL_RULES) - correct(ALL_RULES + KEEP)
    # No prompt gets everything: the best one still misses some answers.
    assert len(correct(ALL_RULES)) < len(rows) and len(correct(ALL_RULES + KEEP)) < len(rows)


def reflection_prompt(instruction: str, examples: list[tuple[str, str, str, float]]) -> str:
    side = "\n\n".join(
        f"# Example {i}\n## inputs\n### question\n{q}\n\n## outputs\n{o}\n\n## expectations\n"
        f"### expected_response\n{e}\n\n## score\n{s}\n"
        for i, (q, o, e, s) in enumerate(examples, 1)
    )
    return (
        "I provided an assistant with the following instructions to perform a task for me:\n"
        f"```\n{instruction}\n```\n\nThe following are examples ...:\n```\n{side}\n```\n\n"
        "Your task is to write a new instruction for the assistant."
    )


def extract(reply: str) -> str:
    return reply.split("```")[1].strip()


def test_reflection_adds_rules_for_the_failures_it_sees_and_keeps_variables():
    prompt = reflection_prompt(
        "Read this passage: {{context}}\n\nAnswer this question: {{question}}",
        [("How many legs?", "An insect has six legs.", "6", 0.0), ("Is it?", "Yes, it is.", "yes", 0.0)],
    )
    new = extract(reflect(prompt))
    assert template_variables(new) == ["context", "question"]
    assert {Rule.CONCISE, Rule.NO_PERIOD, Rule.DIGITS, Rule.YES_NO} <= detect_rules(new)


def test_different_minibatches_give_different_candidates():
    first = extract(reflect(reflection_prompt("Q: {{question}}", [("a", "A spider has eight legs.", "8", 0.0)])))
    second = extract(reflect(reflection_prompt("Q: {{question}}", [("b", "The answer is the Nile.", "Nile", 0.0)])))
    assert first != second


def test_truncated_names_replace_the_single_word_rule():
    start = "Intro.\n\nRules:\n- Answer with a single word.\n\nQ: {{question}}"
    new = extract(reflect(reflection_prompt(start, [("who?", "Curie", "Marie Curie", 0.0)])))
    assert Rule.ONE_WORD not in detect_rules(new) and Rule.CONCISE in detect_rules(new)


def gepa_extract(reply: str) -> str:
    from gepa.strategies.instruction_proposal import InstructionProposalSignature

    return InstructionProposalSignature.output_extractor(reply)["new_instruction"]


def test_reflection_names_what_it_saw_before_the_new_instruction():
    reply = reflect(
        reflection_prompt(
            "Answer this question: {{question}}",
            [
                ("What is the capital city of Turkey?", "The capital city of Turkey is Ankara.", "Ankara", 0.0),
                ("How many legs?", "An insect has six legs.", "6", 0.0),
                ("Who wrote it?", "Jane Austen", "Jane Austen", 1.0),
            ],
        )
    )
    preface = reply.split("```")[0]
    assert "2 of 3 answers were full sentences, e.g. 'The capital city of Turkey is Ankara.' for 'Ankara'." in preface
    assert "1 of 3 answers spelled a number out in words" in preface and "1 of 3 was already right." in preface
    assert 'What I changed: added "only the answer, no sentence"' in preface
    # GEPA takes the instruction from the ``` block; the preface never contains one.
    new = gepa_extract(reply)
    assert new == extract(reply) and template_variables(new) == ["question"]
    assert {Rule.CONCISE, Rule.NO_PERIOD, Rule.DIGITS} <= detect_rules(new)


def test_quoted_outputs_cannot_break_the_instruction_block():
    reply = reflect(reflection_prompt("Q: {{question}}", [("q", "Here: ``` fenced ``` text that goes on.", "X", 0.0)]))
    assert reply.count("```") == 2 and "{{question}}" in gepa_extract(reply)


def test_formal_names_replace_the_keep_names_rule_with_common_names():
    start = "Intro.\n\nRules:\n- Write names exactly as they are officially written.\n\nQ: {{question}}"
    reply = reflect(reflection_prompt(start, [("who?", "Sir Isaac Newton", "Isaac Newton", 0.0)]))
    assert "gave a longer formal name than expected, e.g. 'Sir Isaac Newton' for 'Isaac Newton'" in reply
    new = gepa_extract(reply)
    assert Rule.COMMON_NAMES in detect_rules(new) and "officially written" not in new


def test_broken_names_replace_the_common_names_rule_with_keep_names():
    start = "Intro.\n\nRules:\n- Give names in their common form, without titles.\n\nQ: {{question}}"
    new = gepa_extract(reflect(reflection_prompt(start, [("where?", "Hague", "The Hague", 0.0)])))
    assert Rule.KEEP_NAMES in detect_rules(new) and "common form" not in new


def test_as_many_broken_as_long_names_leave_the_names_rule_alone():
    start = "Intro.\n\nRules:\n- Reply with only the answer.\n\nQ: {{question}}"
    reply = reflect(
        reflection_prompt(start, [("a", "Hague", "The Hague", 0.0), ("b", "Sir Isaac Newton", "Isaac Newton", 0.0)])
    )
    assert "left the rule about names as it is" in reply and gepa_extract(reply) == start


def test_only_wrong_facts_make_it_ask_for_thinking_which_breaks_the_form():
    question = "Who led the first expedition to reach the South Pole?"
    start = "Rules:\n- " + ALL_RULES.replace("\n", " ") + "\n\nAnswer this question: {{question}}"
    reply = reflect(
        reflection_prompt(
            start, [(question, "Robert Falcon Scott", "Roald Amundsen", 0.0), ("q", "Paris", "Paris", 1.0)]
        )
    )
    assert "had the right form but the wrong fact, e.g. 'Robert Falcon Scott' for 'Roald Amundsen'" in reply
    new = gepa_extract(reply)
    assert Rule.THINK in detect_rules(new)
    assert answer_prompt(new.replace("{{question}}", "What is the capital city of Turkey?")).startswith("Let me think")


def test_every_known_sentence_and_hedge_is_seen_as_such():
    for fact in default_knowledge().facts:
        if fact.needs_context:
            continue
        seen = findings(ReflectionExample("q", answer_prompt(f"Answer this question: {fact.question}"), "x", 0.0))
        if fact.bare:
            continue
        assert Finding.SENTENCE in seen, fact.question
        assert (Finding.HEDGE in seen) == (fact.confidence == "unsure"), fact.question


@pytest.mark.parametrize(
    ("output", "expected", "seen"),
    [
        ("Six.", "6", {Finding.PERIOD, Finding.NUMBER_WORD}),
        ("The Tigris", "Tigris", {Finding.ARTICLE}),
        ("Hague", "The Hague", {Finding.NAME_BROKEN, Finding.TRUNCATED}),
        ("3 Gorges Dam", "Three Gorges Dam", {Finding.NAME_BROKEN}),
        ("Washington, D.C", "Washington, D.C.", {Finding.NAME_BROKEN}),
        ("The Amazon River", "Amazon", {Finding.ARTICLE, Finding.EXPANDED}),
        ("Wolfgang Amadeus Mozart", "Mozart", {Finding.EXPANDED}),
        ("Austen", "Jane Austen", {Finding.TRUNCATED}),
        ("I'm not sure, but it might be three.", "3", {Finding.HEDGE, Finding.PERIOD, Finding.NUMBER_WORD}),
        ("Sydney", "Canberra", {Finding.WRONG_FACT}),
        ("Let me think it through step by step. X. So my answer is: Y", "Y", {Finding.REASONING}),
    ],
)
def test_findings_name_what_went_wrong(output, expected, seen):
    assert set(findings(ReflectionExample("q", output, expected, 0.0))) == seen


# --- the endpoint, through the two clients the app uses --------------------------------------


def test_openai_client_speaks_to_the_endpoint(offline_server):
    import openai

    client = openai.OpenAI(base_url=offline_server.base_url, api_key="x")
    reply = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "Answer: How many legs does an insect have?"}]
    )
    assert reply.choices[0].message.content == "An insect has six legs."
    assert reply.usage.total_tokens > 0
    assert [m.id for m in client.models.list()] == [MODEL_NAME]


def test_litellm_speaks_to_the_endpoint(offline_server):
    import litellm

    reply = litellm.completion(
        model=f"openai/{MODEL_NAME}",
        api_base=offline_server.base_url,
        api_key="x",
        messages=[{"role": "user", "content": reflection_prompt("Q: {{q}}", [("q", "The answer is X.", "X", 0)])}],
    )
    assert "{{q}}" in reply.choices[0].message.content


def test_unknown_model_is_a_404_with_openai_error_body(offline_server):
    import openai

    client = openai.OpenAI(base_url=offline_server.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])


def test_required_key_is_enforced(endpoint_factory):
    import openai

    server = endpoint_factory(api_key="sk-right")
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_delay_is_injected(endpoint_factory):
    import time

    import openai

    server = endpoint_factory(delay_ms=150)
    client = openai.OpenAI(base_url=server.base_url, api_key="x")
    started = time.perf_counter()
    client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": "hi"}])
    assert time.perf_counter() - started >= 0.15


def test_config_rejects_bad_values():
    from core.offline_model.server import OfflineConfig

    with pytest.raises(ValueError, match="error rate"):
        OfflineConfig(error_rate=2)
    with pytest.raises(ValueError, match="Unknown fault"):
        OfflineConfig(fault_plan=("boom",))


def test_random_faults_follow_the_requests_not_their_order(endpoint_factory):
    import httpx

    def faults(server, questions):
        seen = {}
        for question in questions:
            body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": question}]}
            reply = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=10)
            seen.setdefault(question, []).append(reply.status_code)
        return seen

    questions = [f"Answer: question {i}?" for i in range(30)] * 2
    first = faults(endpoint_factory(error_rate=0.3, seed=7), questions)
    second = faults(endpoint_factory(error_rate=0.3, seed=7), list(reversed(questions)))
    assert first == second
    assert {200} < {code for codes in first.values() for code in codes}  # some faults were served


# --- the bundled data ------------------------------------------------------------------------


def load_rows(path: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["inputs"]["question"], r["expectations"]["expected_response"]) for r in rows]


def test_short_answer_set_keeps_its_first_40_rows_and_has_at_least_90():
    lines = SHORT_QA.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) >= 90
    first_40 = hashlib.sha256("".join(lines[:40]).encode()).hexdigest()
    assert first_40 == "8da04bec4a483875bd25fb44662af1c737c5857ef39e6ad8090bea8dda9e7c98"
    questions = [q for q, _ in load_rows(SHORT_QA)]
    assert len(set(questions)) == len(questions)
    assert all(1 <= len(expected.split()) <= 3 for _, expected in load_rows(SHORT_QA))


def test_the_model_knows_every_bundled_question_and_none_contains_another():
    knowledge = default_knowledge()
    for path in (SHORT_QA, CONTEXT_QA):
        for question, _ in load_rows(path):
            fact = knowledge.find(f"Answer this question: {question}")
            assert fact is not None and fact.question == question
    known = [f.question.lower() for f in knowledge.facts]
    assert not [(a, b) for a in known for b in known if a != b and a in b]


def test_the_default_test_third_is_a_fair_sample_of_answer_kinds():
    """The engine's default split holds out 30 rows (random.Random(0) over the row order); then the rest
    is split in half. Every kind of answer appears in each third in about the same number."""
    rows = load_rows(SHORT_QA)
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    test = set(order[:30])
    rest = [i for i in range(len(rows)) if i not in test]
    shuffled = list(range(len(rest)))
    random.Random(0).shuffle(shuffled)
    validation = {rest[i] for i in shuffled[: len(rest) // 2]}
    third = {i: "test" if i in test else "validation" if i in validation else "train" for i in range(len(rows))}
    knowledge = default_knowledge()
    kinds: dict[str, Counter] = {}
    for i, (question, expected) in enumerate(rows):
        fact = knowledge.find(question)
        labels = [fact.kind]
        labels += ["article"] if fact.article else []
        labels += ["formal name"] if fact.formal else []
        labels += ["wrong belief"] if fact.answer != expected else []
        labels += ["name with The, number word or dot"] if fact.article_in_name or expected.endswith(".") else []
        for label in labels:
            kinds.setdefault(label, Counter())[third[i]] += 1
    for label, counts in kinds.items():
        spread = [counts[t] for t in ("test", "validation", "train")]
        assert max(spread) - min(spread) <= 2, (label, spread)


def test_baseline_is_weak_and_the_best_rules_are_strong_on_the_bundled_set():
    rows = load_rows(SHORT_QA)

    def share(rules: str) -> float:
        return sum(exact_match(ask(q, rules), exp) for q, exp in rows) / len(rows)

    assert 0.10 <= share("") <= 0.30
    assert share(ALL_RULES) >= 0.8


def test_own_data_note_says_the_simulated_model_only_knows_the_bundled_questions():
    from core.offline_model import own_data_note

    note = own_data_note(["What is the capital of Zorbia?", "Who wrote the novel Pride and Prejudice?", "Q3?"])
    assert note.startswith("The offline demo model is simulated: it knows only the bundled questions, 1 of these 3")
    assert "OpenAI-compatible endpoint" in note
    assert own_data_note(["Who wrote the novel Pride and Prejudice?"]) is None
