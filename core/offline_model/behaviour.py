"""What the offline demo model says: a deterministic imitation of a chatty model. Not a language model.

As a **task model** it recognises the bundled questions (from ``knowledge.jsonl``, kept apart from the
datasets), answers from its own beliefs (mostly right, a few wrong or unsure), and has the habits of chat
models that break exact match, unless the prompt's instructions switch them off:

===================  ====================================  ==============================================
habit                example                               switched off by instructions such as
===================  ====================================  ==============================================
full sentences       "A spider has eight legs."            "only the answer", "no full sentences",
                                                           "concise", "one to three words"
trailing period      "Paris."                              "no trailing period", "no punctuation"
spelled-out numbers  "eight"                               "digits", "numerals"
"Yes, ..." forms     "Yes, it is larger."                  "yes or no"
leading article      "the Pacific Ocean"                   "no articles", "do not start with 'the'"
hedging              "I'm not sure, but maybe Lima."       "best guess", "even if unsure"
===================  ====================================  ==============================================

Side effects of instructions, as with real models: "one word" / "single word" truncates multi-word
answers to their last word; "no articles" also drops a "The" that belongs to a name ("The Hague"),
"digits" also rewrites number words inside names ("3 Gorges Dam"), and "no trailing period" also drops
the dot of "Washington, D.C.", unless the prompt says to keep what is "part of the name".
"lowercase" lower-cases the answer.
Questions of the two-variable set are answered only when the prompt contains their context passage.
A question it does not recognise gets an "I'm not sure" answer.

As a **reflection model** it reads GEPA's reflection request (the current instruction, and examples with
outputs and expected answers), diagnoses the failure patterns visible in that minibatch and returns the
instruction with rules added (or replaced) to fix them, keeping every ``{{variable}}`` line. Rule wording
varies with the minibatch, so different minibatches give different candidates.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from core.templates import VARIABLE_PATTERN

KNOWLEDGE_FILE = Path(__file__).with_name("knowledge.jsonl")
MODEL_NAME = "gepa-offline-demo"

UNKNOWN_ANSWER = "I'm not sure I know the answer to that."
NEEDS_CONTEXT_ANSWER = "I'm not sure; I would need more information to answer that."


_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
_NUMBER_WORD_PATTERN = re.compile(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


class Rule(StrEnum):
    """An instruction the task model obeys; the reflection model writes them."""

    CONCISE = "concise"
    ONE_WORD = "one_word"
    NO_PERIOD = "no_period"
    DIGITS = "digits"
    YES_NO = "yes_no"
    NO_ARTICLE = "no_article"
    KEEP_NAMES = "keep_names"
    GUESS = "guess"
    LOWERCASE = "lowercase"


_TRIGGERS: dict[Rule, tuple[str, ...]] = {
    Rule.CONCISE: (
        r"\bonly (?:with |give |return |output |state |reply with |respond with |write )?(?:the |your )?"
        r"(?:final |short |exact |bare )?(?:answer|name|number|phrase)",
        r"\bjust the (?:answer|name|number)",
        r"\banswer only\b",
        r"\bno (?:full |complete )?sentences?\b",
        r"\bnot (?:in )?a (?:full |complete )?sentence",
        r"\bnever (?:write|answer in|use) (?:a )?(?:full |complete )?sentences?",
        r"\bwithout (?:any )?(?:explanation|extra words|elaboration|a sentence)",
        r"\bno (?:explanations?|extra words|elaboration)\b",
        r"\bshort(?:est)? (?:possible )?answer",
        r"\bconcise(?:ly)?\b",
        r"\bbrief(?:ly)?\b",
        r"\bterse(?:ly)?\b",
        r"\b(?:one|1) to (?:three|3) words\b",
        r"\bas few words as possible\b",
        r"\b(?:do not|don't) (?:restate|repeat) the question",
        r"\bsingle word\b",
        r"\bone[- ]word\b",
    ),
    Rule.ONE_WORD: (r"\bsingle word\b", r"\bone[- ]word\b", r"\bin (?:one|1) word\b"),
    Rule.NO_PERIOD: (
        r"\bno (?:trailing |final |ending |closing )?(?:period|full stop|punctuation)",
        r"\bwithout (?:a |any )?(?:trailing |final |ending |closing )?(?:period|full stop|punctuation)",
        r"\b(?:do not|don't|never) (?:end|finish) (?:it |the answer |your answer )?(?:with|in) a (?:period|full stop)",
        r"\bomit (?:the |any )?(?:trailing |final )?(?:period|full stop|punctuation)",
        r"\b(?:do not|don't|never) (?:add|include|use|put) (?:a |any )?(?:trailing |final )?"
        r"(?:period|full stop|punctuation)",
    ),
    Rule.DIGITS: (r"\bdigits?\b", r"\bnumerals?\b", r"\bnumeric(?:al)? form\b"),
    Rule.YES_NO: (r"\byes or no\b", r"\byes/no\b", r"\bjust (?:\"|')?yes", r"\bonly (?:\"|')?yes(?:\"|')? or"),
    Rule.NO_ARTICLE: (
        r"\b(?:no|omit|drop|remove|without|leave out|skip) (?:any |the )?(?:leading |initial )?articles?\b",
        r"\b(?:do not|don't|never) (?:use|include|add|put) (?:any |a )?(?:leading |initial )?articles?\b",
        r"\b(?:do not|don't|never) (?:start|begin) (?:the answer |your answer |it )?with (?:\"|')?(?:the|a|an)\b",
        r"\bwithout (?:a )?leading (?:\"|')?the\b",
    ),
    Rule.KEEP_NAMES: (
        r"\bpart of (?:the|a) (?:proper |official )?name",
        r"\bbelongs? to (?:the|a) (?:proper |official )?name",
        r"\bexactly as (?:it is|they are) (?:officially )?written",
    ),
    Rule.GUESS: (
        r"\bbest guess\b",
        r"\bnever say (?:that )?you (?:are|'re) (?:not sure|unsure)",
        r"\b(?:even if|even when) (?:you are |you're )?(?:unsure|uncertain|not sure)",
        r"\balways (?:give|commit to) (?:a|an|one) (?:single )?(?:answer|guess)",
        r"\b(?:do not|don't|never) hedge\b",
        r"\bno hedging\b",
    ),
    Rule.LOWERCASE: (r"\blower[- ]?case\b",),
}
_COMPILED = {rule: [re.compile(p) for p in patterns] for rule, patterns in _TRIGGERS.items()}


def detect_rules(instructions: str) -> frozenset[Rule]:
    """The rules a text asks for, by the documented trigger phrases (case-insensitive)."""
    text = " ".join(instructions.lower().split())
    return frozenset(rule for rule, patterns in _COMPILED.items() if any(p.search(text) for p in patterns))


@dataclass(frozen=True)
class Fact:
    """One entry of the model's knowledge file: what it believes and how it likes to say it."""

    question: str
    kind: str
    answer: str
    sentence: str
    number_word: str | None = None
    article: str | None = None
    article_in_name: bool = False
    formal: str | None = None
    confidence: str = "sure"
    bare: bool = False
    needs_context: bool = False
    clues: tuple[str, ...] = ()


def _squash(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Knowledge:
    facts: tuple[Fact, ...]
    _index: dict[str, Fact] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Longest questions first so a question that contains another still wins.
        for fact in sorted(self.facts, key=lambda f: -len(f.question)):
            self._index.setdefault(_squash(fact.question), fact)

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> Knowledge:
        facts = []
        for line in lines:
            if line.strip():
                raw = json.loads(line)
                raw["clues"] = tuple(raw.get("clues", ()))
                facts.append(Fact(**raw))
        return cls(tuple(facts))

    def find(self, prompt: str) -> Fact | None:
        squashed = _squash(prompt)
        for key, fact in self._index.items():
            if key in squashed:
                return fact
        return None


@lru_cache(maxsize=1)
def default_knowledge() -> Knowledge:
    return Knowledge.from_lines(KNOWLEDGE_FILE.read_text(encoding="utf-8").splitlines())


def answer_prompt(prompt: str, knowledge: Knowledge | None = None) -> str:
    """The task model's reply to ``prompt`` (the rendered template)."""
    knowledge = knowledge or default_knowledge()
    fact = knowledge.find(prompt)
    if fact is None:
        return UNKNOWN_ANSWER
    # Instructions are read outside the question, so "How many digits ..." is not an instruction.
    instructions = re.sub(re.escape(fact.question), " ", prompt, flags=re.IGNORECASE)
    rules = detect_rules(instructions)
    if fact.needs_context and not all(_squash(clue) in _squash(prompt) for clue in fact.clues):
        return NEEDS_CONTEXT_ANSWER
    return _styled_answer(fact, rules)


def _styled_answer(fact: Fact, rules: frozenset[Rule]) -> str:
    concise = Rule.CONCISE in rules or (fact.kind == "yesno" and Rule.YES_NO in rules)
    if fact.confidence == "unsure" and Rule.GUESS not in rules:
        core = _short_form(fact, rules) if concise else fact.answer
        return _finish(f"I'm not sure, but it might be {core}", rules)
    if not concise:
        if fact.bare:
            return fact.answer
        sentence = fact.sentence
        if Rule.DIGITS in rules and fact.number_word:
            sentence = re.sub(rf"\b{re.escape(fact.number_word)}\b", fact.answer, sentence, flags=re.IGNORECASE)
        return sentence
    return _finish(_short_form(fact, rules), rules)


def _short_form(fact: Fact, rules: frozenset[Rule]) -> str:
    if fact.kind == "yesno":
        core = fact.answer.capitalize() if Rule.YES_NO in rules or Rule.CONCISE in rules else fact.sentence.rstrip(". ")
    elif fact.kind == "number" and fact.number_word and Rule.DIGITS not in rules:
        core = fact.number_word
    else:
        core = fact.answer
    if fact.article and Rule.NO_ARTICLE not in rules:
        core = f"{fact.article} {core}"
    if Rule.KEEP_NAMES not in rules:
        if fact.article_in_name and Rule.NO_ARTICLE in rules:
            core = re.sub(r"^(?:the|a|an)\s+", "", core, flags=re.IGNORECASE)
        if Rule.DIGITS in rules and fact.kind != "number":
            core = _NUMBER_WORD_PATTERN.sub(lambda m: str(_NUMBER_WORDS.index(m.group(0).lower())), core)
    if Rule.ONE_WORD in rules:
        words = re.findall(r"[\w'-]+", core)
        core = (words[0] if fact.kind == "yesno" else words[-1]) if words else core
    return core[:1].upper() + core[1:]


def _finish(core: str, rules: frozenset[Rule]) -> str:
    if Rule.LOWERCASE in rules:
        core = core.lower()
    if Rule.NO_PERIOD not in rules:
        return core if core.endswith((".", "?", "!")) else core + "."
    # Over-applied, as real models do: the dot of "Washington, D.C." goes too, unless names are kept.
    return core if Rule.KEEP_NAMES in rules else core.rstrip(".")


# --------------------------------------------------------------------------------------------------
# Reflection
# --------------------------------------------------------------------------------------------------

REFLECTION_MARKERS = ("I provided an assistant with the following instructions", "write a new instruction")

_PHRASINGS: dict[Rule, tuple[str, ...]] = {
    Rule.CONCISE: (
        "Reply with only the answer itself (one to three words), never a full sentence.",
        "Give just the answer (one to three words): no full sentences and no explanation.",
        "Respond with only the short answer phrase, not a full sentence.",
    ),
    Rule.ONE_WORD: (
        "Answer with a single word.",
        "Your whole reply must be one word.",
    ),
    Rule.NO_PERIOD: (
        "Do not end the answer with a period or any other punctuation.",
        "No trailing period: the answer has no punctuation at the end.",
        "Omit punctuation at the end of the answer.",
    ),
    Rule.DIGITS: (
        "Write numbers as digits (8, not eight).",
        "Use numerals for every number (12, not twelve).",
    ),
    Rule.YES_NO: (
        "For a yes/no question, reply with just yes or no.",
        "If the question asks yes or no, answer with only that word.",
    ),
    Rule.NO_ARTICLE: (
        "Do not start the answer with an article (a, an, the).",
        "Drop leading articles: write 'Pacific Ocean', not 'the Pacific Ocean'.",
    ),
    Rule.KEEP_NAMES: (
        "Write names exactly as they are officially written, with any 'The', number word or abbreviation dot "
        "that is part of the name.",
        "Keep everything that is part of a proper name: 'The' in The Hague, 'Three' in Three Gorges Dam, "
        "the dots in Washington, D.C.",
    ),
    Rule.GUESS: (
        "If you are unsure, still give your single best guess; never say you are not sure.",
        "Always commit to an answer: give your best guess even if uncertain.",
    ),
}
_INTROS = (
    "Answer the question below.",
    "You answer short factual questions.",
    "Reply to the question that follows.",
)


@dataclass(frozen=True)
class ReflectionExample:
    inputs: str
    output: str
    expected: str
    score: float | None


def is_reflection_request(prompt: str) -> bool:
    return any(marker in prompt for marker in REFLECTION_MARKERS)


def parse_reflection_request(prompt: str) -> tuple[str, list[ReflectionExample]]:
    """Split GEPA's reflection prompt into the current instruction and the feedback examples."""
    blocks = re.findall(r"```\n?(.*?)\n?```", prompt, flags=re.DOTALL)
    current = blocks[0].strip() if blocks else ""
    side_info = blocks[1] if len(blocks) > 1 else prompt
    examples = []
    for chunk in re.split(r"(?m)^# Example \d+\s*$", side_info)[1:]:
        sections = _sections(chunk, level=2)
        expectations = _sections(sections.get("expectations", ""), level=3)
        expected = expectations.get("expected_response", sections.get("expectations", "")).strip()
        score_text = sections.get("score", "").strip()
        try:
            score = float(score_text)
        except ValueError:
            score = None
        examples.append(
            ReflectionExample(
                inputs=sections.get("inputs", "").strip(),
                output=sections.get("outputs", sections.get("generated_outputs", "")).strip(),
                expected=expected,
                score=score,
            )
        )
    return current, examples


def _sections(text: str, level: int) -> dict[str, str]:
    marker = "#" * level
    parts = re.split(rf"(?m)^{marker} (\S[^\n]*)$", text)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def diagnose(example: ReflectionExample) -> set[Rule]:
    """The rules that would fix this example's failure, judged from output and expected answer."""
    output, expected = example.output.strip(), example.expected.strip()
    if not output or (example.score is not None and example.score >= 1.0):
        return set()
    out_l, exp_l = output.lower(), expected.lower()
    needed: set[Rule] = set()
    if "not sure" in out_l or "unsure" in out_l:
        needed.add(Rule.GUESS)
    if output.endswith(".") and not expected.endswith("."):
        needed.add(Rule.NO_PERIOD)
    exp_words = exp_l.split()
    bare_output = re.sub(r"[.!?]+$", "", out_l).strip()
    if len(bare_output.split()) > len(exp_words) + 1 or (", " in bare_output and "," not in exp_l):
        needed.add(Rule.CONCISE)
    if exp_l.isdigit() and any(re.search(rf"\b{w}\b", out_l) for w in _NUMBER_WORDS):
        needed.add(Rule.DIGITS)
    if exp_l in ("yes", "no") and re.match(r"^(yes|no)\b.+", bare_output):
        needed.add(Rule.YES_NO)
    if re.search(rf"\b(the|a|an) {re.escape(exp_l)}\b", out_l) and not re.match(r"^(the|a|an)\b", exp_l):
        needed.add(Rule.NO_ARTICLE)
    if re.match(r"^the\b", exp_l) and re.sub(r"^the\s+", "", exp_l) == bare_output:
        needed.add(Rule.KEEP_NAMES)
    if expected.endswith(".") and output == expected[:-1]:
        needed.add(Rule.KEEP_NAMES)
    if _NUMBER_WORD_PATTERN.search(exp_l) and _NUMBER_WORD_PATTERN.sub("#", exp_l) == re.sub(r"\d+", "#", bare_output):
        needed.add(Rule.KEEP_NAMES)
    if len(exp_words) > 1 and bare_output in exp_words:
        needed.add(Rule.CONCISE)  # truncated to one word: the fix is the phrase rule, not one word
    return needed


def reflect(prompt: str) -> str:
    """The reflection model's reply: a short preface and the new instruction in a ``` block."""
    current, examples = parse_reflection_request(prompt)
    needed: set[Rule] = set()
    for example in examples:
        needed |= diagnose(example)
    all_single_word = bool(examples) and all(len(e.expected.split()) == 1 for e in examples)
    truncated = any(len(e.expected.split()) > 1 and Rule.CONCISE in diagnose(e) for e in examples)
    digest = hashlib.sha256("\n".join(e.inputs for e in examples).encode()).digest()
    new_instruction = revise_instruction(current, needed, digest, prefer_one_word=all_single_word, truncated=truncated)
    return (
        "Looking at the failures, the assistant's answers did not match the expected format.\n\n"
        f"```\n{new_instruction}\n```"
    )


def revise_instruction(
    current: str,
    needed: set[Rule],
    digest: bytes,
    *,
    prefer_one_word: bool = False,
    truncated: bool = False,
) -> str:
    """``current`` with a rule bullet for each needed rule it lacks; every variable line is kept."""
    lines = current.splitlines()
    variable_lines = [line for line in lines if VARIABLE_PATTERN.search(line)]
    bullets = [line.strip()[2:].strip() for line in lines if line.strip().startswith("- ")]
    prose = [
        line
        for line in lines
        if line.strip()
        and not VARIABLE_PATTERN.search(line)
        and not line.strip().startswith("- ")
        and line.strip().rstrip(":").lower() != "rules"
    ]
    present = detect_rules(" ".join(bullets + prose))
    if truncated and Rule.ONE_WORD in present:
        # The single-word rule broke multi-word answers: replace it with the phrase rule.
        bullets = [b for b in bullets if Rule.ONE_WORD not in detect_rules(b)]
        prose = [p for p in prose if Rule.ONE_WORD not in detect_rules(p)]
        present = detect_rules(" ".join(bullets + prose))
        needed = needed | {Rule.CONCISE}
    missing = [rule for rule in Rule if rule in needed and rule not in present]
    if Rule.CONCISE in missing and prefer_one_word and not truncated:
        missing[missing.index(Rule.CONCISE)] = Rule.ONE_WORD
    for position, rule in enumerate(missing):
        options = _PHRASINGS[rule]
        bullets.append(options[(digest[position % len(digest)]) % len(options)])
    if not missing and not bullets:
        bullets.append("Read the question carefully and answer it directly.")
    intro = "\n".join(prose) if prose else _INTROS[digest[-1] % len(_INTROS)]
    parts = [intro, "Rules:\n" + "\n".join(f"- {b}" for b in bullets)]
    if variable_lines:
        parts.append("\n".join(variable_lines))
    return "\n\n".join(parts)
