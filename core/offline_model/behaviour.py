"""What the offline demo model says: a deterministic, *simulated* chatty model. Not a language model.

Everything below follows from these documented rules applied to the prompt and the data; nothing is keyed
to a question id, a row number or a seed.

Task model
----------
It recognises the bundled questions (from ``knowledge.jsonl``, kept apart from the datasets) and answers
from its own beliefs: mostly right, a few confidently wrong, a few unsure. A plain prompt gets the habits of
chat models that break exact match; instructions in the prompt switch a habit off, and most switches have a
side effect on other answers, as real instructions do. (A few beliefs it states tersely even unprompted,
"Jane Austen"; told to be concise, those too get the trailing period.)

==================  ==============================  ======================  ====================================
habit               example                         switched off by         side effect of the switch
==================  ==============================  ======================  ====================================
full sentences      "A spider has eight legs."      "only the answer",      none ("single word" is another
                                                    "no full sentences",    switch: see below)
                                                    "concise", "1 to 3
                                                    words"
trailing period     "Paris."                        "no trailing period",   also drops the dot that ends a name:
                                                    "no punctuation"        "Washington, D.C", "Downey Jr"
spelled-out number  "eight"                         "digits", "numerals"    number words inside names become
                                                                            digits: "3 Gorges Dam"
"Yes, ..." forms    "Yes, it is larger."            "yes or no"             none
leading article     "the Pacific Ocean"             "no articles", "do not  also drops a "The" that belongs to a
                                                    start with 'the'"       name: "Hague", "Rolling Stones"
hedging             "I'm not sure, but it might     "best guess", "even if  commits to its belief, right or
                    be Lima."                       unsure"                 wrong
==================  ==============================  ======================  ====================================

Instructions that are not a switch of one habit:

* **single word** ("one word", "single word"): a short answer cut to its last word ("Jane Austen" ->
  "Austen", "the Tigris" -> "Tigris"); a yes/no answer keeps its first word.
* **keep names** ("part of the name", "exactly as officially written"): protects names from the three
  side effects above ("The Hague", "Three Gorges Dam", "Washington, D.C." stay whole), but the model then
  writes names in their full formal form where one exists: "Sir Isaac Newton", "Sahara Desert",
  "Republic of Peru".
* **common names** ("the name people commonly use", "common form", "without titles"): the opposite of
  keep names. When a prompt asks for both, the one stated *last* wins (the model follows the most recent
  of two contradicting instructions), so no prompt gets both the protection and the short forms.
* **think it through** ("step by step", "double-check", "reason it out"): the model shows its reasoning
  before the answer ("Let me think it through step by step. ... So my answer is: X"), which exact match
  never accepts, and its beliefs do not change.
* **lowercase** lower-cases the answer.

Questions of the two-variable set are answered only when the prompt contains their context passage. A
question it does not recognise gets :data:`UNKNOWN_ANSWER`.

Reflection model
----------------
It reads GEPA's reflection request (the current instruction, and the minibatch's inputs, outputs, expected
answers and scores), names what it saw in each failed answer, then returns the instruction revised to fix
it, keeping every ``{{variable}}`` line. What it sees, and what it changes:

===================================================  ===============================================
seen in a failed answer                              change to the instruction
===================================================  ===============================================
a full sentence                                      add "only the answer (one to three words)"; but
                                                     "a single word" when every expected answer in
                                                     the minibatch is one word (over-generalising)
a trailing period / a spelled-out number / "Yes,"    add no period / digits / just yes or no
a leading article / a hedge                          add no articles / give your best guess
a name that lost its "The", number word or dot       add keep names, removing a common-names rule
a longer formal name than expected                   add common names, removing a keep-names rule
one word of a multi-word answer                      replace the single-word rule by the phrase rule
reasoning shown                                      remove the think-it-through rule
only wrong facts, in the right form                  add "think it through and double-check the facts"
===================================================  ===============================================

When broken names and formal names are both seen, the more frequent one decides; on a tie the names rule is
left as it is. It cannot foresee side effects: a fix it writes may break another answer of the same
minibatch, and GEPA then rejects the proposal. Rule wording varies with the minibatch (a hash of its
inputs), so different minibatches give different candidates. Its reply names what it saw before the new
instruction, which comes in a ``` block.

Judge (simulated)
-----------------
A request that carries MLflow's judge system prompt ("You are an expert judge tasked with evaluating ...",
what ``mlflow.genai.judges.make_judge`` sends) is judged as a correctness question: does the answer in
``outputs`` give the expected answer in ``expectations``? The reply is MLflow's JSON, ``{"result": "yes" or
"no", "rationale": ...}``. It is a *simulated* judge: deterministic rules on the two texts, no reading of
meaning, and it does not use the question. In order:

1. Reasoning shown ("... So my answer is: X"): only the final answer X is judged.
2. A hedge ("not sure", "unsure", "not certain", "maybe", "might be", "perhaps", "possibly", "probably",
   "I think", "I believe", "I don't know") is **no**, even when the hedged guess is right: "I'm not sure,
   but it might be Lima." commits to nothing. "My best guess is Lima" commits, so it is judged.
3. Several candidates ("either", a word "or", "Lima/Cusco") are **no**.
4. Expected yes or no: the answer's first word decides ("Yes, it is larger." is yes); without a leading
   yes or no, the one of the two that appears alone decides; otherwise **no**.
5. Otherwise both texts are compared as words: lower case, punctuation and hyphens dropped, the articles
   a, an, the dropped, and number words read as numbers ("twelve" = 12, "twenty one" = 21, "Three Gorges
   Dam" = "3 Gorges Dam"). **Yes** when the expected words appear in the answer in order: "12", "Twelve.",
   "twelve", "The answer is 12.", "A spider has eight legs." for 8, "Sir Isaac Newton" for "Isaac Newton",
   "Washington, D.C" for "Washington, D.C.", "Hague" for "The Hague". **No** when a "not" or "never"
   comes just before them, when only part of them is there ("Austen" for "Jane Austen"), or when none
   is (a wrong fact: "1990" for "1989").

So it accepts what exact match rejects for form alone (sentences, periods, case, number words, "Yes, ..."
forms, articles, reasoning before a right answer) and rejects hedges and lists of candidates that a loose
"contains" scorer would accept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from core.templates import VARIABLE_PATTERN

KNOWLEDGE_FILE = Path(__file__).with_name("knowledge.jsonl")
MODEL_NAME = "gepa-offline-demo"

UNKNOWN_ANSWER = "I'm not sure I know the answer to that."
NEEDS_CONTEXT_ANSWER = "I'm not sure; I would need more information to answer that."
THINKING_OPENER = "Let me think it through step by step."

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
)
_NUMBER_VALUES = {word: index for index, word in enumerate(_UNITS.split())} | {
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_NUMBER_VALUES |= {"hundred": 100, "thousand": 1000}
_NUMBER_WORDS = list(_NUMBER_VALUES)
_NUMBER_WORD_PATTERN = re.compile(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_ARTICLES = ("the", "a", "an")


class Rule(StrEnum):
    """An instruction the task model obeys; the reflection model writes them."""

    CONCISE = "concise"
    ONE_WORD = "one_word"
    NO_PERIOD = "no_period"
    DIGITS = "digits"
    YES_NO = "yes_no"
    NO_ARTICLE = "no_article"
    KEEP_NAMES = "keep_names"
    COMMON_NAMES = "common_names"
    GUESS = "guess"
    LOWERCASE = "lowercase"
    THINK = "think"


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
    Rule.COMMON_NAMES: (
        r"\bpeople (?:commonly |usually )?use\b",
        r"\bcommon(?:ly used)? (?:short )?(?:form|name)s?\b",
        r"\b(?:no|without) (?:titles|middle names|formal names)\b",
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
    Rule.THINK: (
        r"\bthink (?:it |this )?(?:through|step by step|carefully)",
        r"\bstep[- ]by[- ]step\b",
        r"\bdouble[- ]check\b",
        r"\breason (?:it |this )?(?:out|through)\b",
        r"\bshow (?:your )?(?:reasoning|working)\b",
    ),
}
_COMPILED = {rule: [re.compile(p) for p in patterns] for rule, patterns in _TRIGGERS.items()}
# Two instructions that contradict each other: the one stated last wins.
_OPPOSITES = ((Rule.KEEP_NAMES, Rule.COMMON_NAMES),)


def detect_rules(instructions: str) -> frozenset[Rule]:
    """The rules a text asks for, by the documented trigger phrases (case-insensitive). Of two opposite
    rules (keep names, common names) only the one stated last counts."""
    text = " ".join(instructions.lower().split())
    last: dict[Rule, int] = {}
    for rule, patterns in _COMPILED.items():
        positions = [match.start() for pattern in patterns for match in pattern.finditer(text)]
        if positions:
            last[rule] = max(positions)
    for first, second in _OPPOSITES:
        if first in last and second in last:
            del last[first if last[first] < last[second] else second]
    return frozenset(last)


@dataclass(frozen=True)
class Fact:
    """One entry of the model's knowledge file: what it believes and how it likes to say it.

    ``answer`` is its belief (sometimes wrong); ``formal`` the full formal name it writes when told to
    keep names exactly as officially written; ``bare`` marks beliefs it states tersely even unprompted.
    """

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
    if Rule.THINK in rules:
        return f"{THINKING_OPENER} {_sentence(fact, rules)} So my answer is: {_finish(_short_form(fact, rules), rules)}"
    concise = Rule.CONCISE in rules or (fact.kind == "yesno" and Rule.YES_NO in rules)
    hedging = fact.confidence == "unsure" and Rule.GUESS not in rules
    if hedging:
        if not concise:
            return fact.sentence
        return _finish(f"I'm not sure, but it might be {_short_form(fact, rules)}", rules)
    if concise:
        return _finish(_capital(_short_form(fact, rules)), rules)
    if fact.bare:
        return _finish(_capital(_short_form(fact, rules)), rules, add_period=False)
    if fact.confidence == "unsure":  # told to guess, but not to be brief
        return _finish(f"My best guess is {_short_form(fact, rules)}", rules)
    return _sentence(fact, rules)


def _sentence(fact: Fact, rules: frozenset[Rule]) -> str:
    sentence = fact.sentence
    if Rule.DIGITS in rules and fact.number_word:
        sentence = re.sub(rf"\b{re.escape(fact.number_word)}\b", fact.answer, sentence, flags=re.IGNORECASE)
    return sentence


def _short_form(fact: Fact, rules: frozenset[Rule]) -> str:
    """The answer alone, before capitalisation and final punctuation."""
    keep_names = Rule.KEEP_NAMES in rules
    if fact.kind == "yesno":
        core = fact.answer.capitalize()
    elif fact.kind == "number" and fact.number_word and Rule.DIGITS not in rules:
        core = fact.number_word
    elif keep_names and fact.formal:
        core = fact.formal
    else:
        core = fact.answer
    if fact.article and Rule.NO_ARTICLE not in rules:
        core = f"{fact.article} {core}"
    if not keep_names:
        if fact.article_in_name and Rule.NO_ARTICLE in rules:
            core = re.sub(r"^(?:the|a|an)\s+", "", core, flags=re.IGNORECASE)
        if Rule.DIGITS in rules and fact.kind != "number":
            core = _NUMBER_WORD_PATTERN.sub(lambda m: str(_NUMBER_VALUES[m.group(0).lower()]), core)
    if Rule.ONE_WORD in rules:
        words = re.findall(r"[\w'.-]+", core)
        core = (words[0] if fact.kind == "yesno" else words[-1]) if words else core
    return core


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _finish(core: str, rules: frozenset[Rule], *, add_period: bool = True) -> str:
    if Rule.LOWERCASE in rules:
        core = core.lower()
    if Rule.NO_PERIOD not in rules:
        return core if not add_period or core.endswith((".", "?", "!")) else core + "."
    # Over-applied, as real models do: the dot of "Washington, D.C." goes too, unless names are kept.
    return core if Rule.KEEP_NAMES in rules else core.rstrip(".")


# --------------------------------------------------------------------------------------------------
# Reflection
# --------------------------------------------------------------------------------------------------

REFLECTION_MARKERS = ("I provided an assistant with the following instructions", "write a new instruction")


class Finding(StrEnum):
    """What the reflection model can see in one failed answer, by comparing it with the expected one."""

    SENTENCE = "sentence"
    PERIOD = "period"
    NUMBER_WORD = "number_word"
    YES_FORM = "yes_form"
    ARTICLE = "article"
    HEDGE = "hedge"
    NAME_BROKEN = "name_broken"
    EXPANDED = "expanded"
    TRUNCATED = "truncated"
    REASONING = "reasoning"
    WRONG_FACT = "wrong_fact"


# How the reflection reply names a finding, for one answer and for several:
# "{n} of {k} answers {text}, e.g. 'output' for 'expected'".
_FINDING_TEXT: dict[Finding, tuple[str, str]] = {
    Finding.SENTENCE: ("was a full sentence", "were full sentences"),
    Finding.PERIOD: ("ended with a period", "ended with a period"),
    Finding.NUMBER_WORD: ("spelled a number out in words", "spelled numbers out in words"),
    Finding.YES_FORM: ("wrapped yes or no in more words", "wrapped yes or no in more words"),
    Finding.ARTICLE: ("started with an article", "started with an article"),
    Finding.HEDGE: ("hedged instead of answering", "hedged instead of answering"),
    Finding.NAME_BROKEN: (
        "lost part of a name (its 'The', number word or final dot)",
        "lost part of a name (its 'The', number word or final dot)",
    ),
    Finding.EXPANDED: ("gave a longer formal name than expected", "gave longer formal names than expected"),
    Finding.TRUNCATED: ("was cut to one word of a longer answer", "were cut to one word of longer answers"),
    Finding.REASONING: ("showed its reasoning, not just the answer", "showed their reasoning, not just the answer"),
    Finding.WRONG_FACT: ("had the right form but the wrong fact", "had the right form but the wrong facts"),
}

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
    Rule.COMMON_NAMES: (
        "Use the short name people commonly use, not a longer formal one: Isaac Newton, not Sir Isaac Newton.",
        "Give names in their common form, without titles or middle names.",
    ),
    Rule.GUESS: (
        "If you are unsure, still give your single best guess; never say you are not sure.",
        "Always commit to an answer: give your best guess even if uncertain.",
    ),
    Rule.THINK: (
        "Before answering, think it through step by step and double-check the facts.",
        "Double-check every fact: reason it out before you commit to an answer.",
    ),
}
_RULE_LABELS: dict[Rule, str] = {
    Rule.CONCISE: "only the answer, no sentence",
    Rule.ONE_WORD: "a single word",
    Rule.NO_PERIOD: "no trailing period",
    Rule.DIGITS: "numbers as digits",
    Rule.YES_NO: "just yes or no",
    Rule.NO_ARTICLE: "no leading article",
    Rule.KEEP_NAMES: "names exactly as officially written",
    Rule.COMMON_NAMES: "names in their common short form",
    Rule.GUESS: "a best guess instead of a hedge",
    Rule.LOWERCASE: "lowercase",
    Rule.THINK: "think it through and double-check the facts",
}
_INTROS = (
    "Answer the question below.",
    "You answer short factual questions.",
    "Reply to the question that follows.",
)
_REASONING = re.compile(r"\bstep by step\b|\blet me think\b|\bso my answer is\b")
_HEDGES = re.compile(r"\bnot (?:entirely |completely )?sure\b|\bunsure\b")


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


def _words(text: str) -> list[str]:
    """Words for comparing answers: split at spaces and hyphens, without the punctuation around them."""
    return [w for w in (w.strip(",;:!?").rstrip(".") for w in re.split(r"[\s\-]+", text)) if w]


def _is_subsequence(needle: Sequence[str], haystack: Sequence[str]) -> bool:
    it = iter(haystack)
    return all(any(word == candidate for candidate in it) for word in needle)


def _name_variants(expected: str) -> set[str]:
    """How the three side effects can break a name: its 'The' dropped, number words as digits, the
    final dot dropped, alone or together (lower case)."""
    variants = {expected}
    for step in (
        lambda s: re.sub(r"^(?:the|a|an)\s+", "", s),
        lambda s: _NUMBER_WORD_PATTERN.sub(lambda m: str(_NUMBER_VALUES[m.group(0).lower()]), s),
        lambda s: s.rstrip("."),
    ):
        variants |= {step(v) for v in variants}
    return variants - {expected}


def findings(example: ReflectionExample) -> tuple[Finding, ...]:
    """What is wrong with one answer, judged only from its output and its expected answer."""
    output, expected = example.output.strip(), example.expected.strip()
    if not output or (example.score is not None and example.score >= 1.0):
        return ()
    out_l, exp_l = " ".join(output.lower().split()), " ".join(expected.lower().split())
    if out_l == exp_l:
        return ()
    if _REASONING.search(out_l):
        return (Finding.REASONING,)
    found: list[Finding] = []
    body = out_l
    if _HEDGES.search(out_l):
        found.append(Finding.HEDGE)
        guess = re.search(r"\bmight be (.+)$", out_l)
        body = guess.group(1) if guess else out_l
    if body.endswith(".") and not exp_l.endswith("."):
        found.append(Finding.PERIOD)
        body = body.rstrip(".")
    body = body.rstrip("!?").strip()
    if body == exp_l:
        return tuple(found)
    exp_words, body_words = _words(exp_l), _words(body)
    if exp_l.isdigit() and _NUMBER_WORD_PATTERN.search(body):
        found.append(Finding.NUMBER_WORD)
    if exp_l in ("yes", "no") and re.match(r"^(?:yes|no)\b.+", body):
        found.append(Finding.YES_FORM)
    if len(body_words) > len(exp_words) + 2:
        found.append(Finding.SENTENCE)
        if re.search(rf"\b(?:the|a|an) {re.escape(exp_l)}\b", body) and exp_words[0] not in _ARTICLES:
            found.append(Finding.ARTICLE)
        return tuple(found)
    if body_words and body_words[0] in _ARTICLES and (not exp_words or exp_words[0] not in _ARTICLES):
        found.append(Finding.ARTICLE)
        body_words = body_words[1:]
        body = " ".join(body_words)
    if body == exp_l or Finding.NUMBER_WORD in found or Finding.YES_FORM in found:
        return tuple(found)
    truncated = bool(body_words) and len(body_words) < len(exp_words) and set(body_words) <= set(exp_words)
    if len(body_words) == 1 and truncated:
        found.append(Finding.TRUNCATED)  # "Hague" for "The Hague" may also be a broken name: both are named
    if body in _name_variants(exp_l):
        found.append(Finding.NAME_BROKEN)
    elif body_words != exp_words and _is_subsequence(exp_words, body_words):
        found.append(Finding.EXPANDED)
    elif truncated:
        found.append(Finding.TRUNCATED)
    elif Finding.HEDGE not in found:
        found.append(Finding.WRONG_FACT)
    return tuple(dict.fromkeys(found))


_FIXES: dict[Finding, Rule] = {
    Finding.PERIOD: Rule.NO_PERIOD,
    Finding.NUMBER_WORD: Rule.DIGITS,
    Finding.YES_FORM: Rule.YES_NO,
    Finding.ARTICLE: Rule.NO_ARTICLE,
    Finding.HEDGE: Rule.GUESS,
}


@dataclass(frozen=True)
class Revision:
    """What the reflection model decided: rules to add and rules to take out."""

    add: tuple[Rule, ...]
    remove: tuple[Rule, ...]
    tie_on_names: bool = False


def plan_revision(examples: Sequence[ReflectionExample]) -> Revision:
    """The documented mapping from what was seen in a minibatch to changes of the instruction."""
    seen = [findings(example) for example in examples]
    counts = Counter(finding for found in seen for finding in set(found))
    add: list[Rule] = []
    remove: list[Rule] = []
    if counts[Finding.SENTENCE]:
        single_words = bool(examples) and all(len(_words(e.expected)) == 1 for e in examples)
        add.append(Rule.ONE_WORD if single_words and not counts[Finding.TRUNCATED] else Rule.CONCISE)
    if counts[Finding.TRUNCATED]:
        add.append(Rule.CONCISE)
        remove.append(Rule.ONE_WORD)
    add += [rule for finding, rule in _FIXES.items() if counts[finding]]
    broken, expanded = counts[Finding.NAME_BROKEN], counts[Finding.EXPANDED]
    if broken > expanded:
        add.append(Rule.KEEP_NAMES)
        remove.append(Rule.COMMON_NAMES)
    elif expanded > broken:
        add.append(Rule.COMMON_NAMES)
        remove.append(Rule.KEEP_NAMES)
    if counts[Finding.REASONING]:
        remove.append(Rule.THINK)
    if counts[Finding.WRONG_FACT] and set(counts) == {Finding.WRONG_FACT}:
        add.append(Rule.THINK)
    ordered_add = tuple(dict.fromkeys(add))
    return Revision(
        ordered_add, tuple(r for r in dict.fromkeys(remove) if r not in ordered_add), broken == expanded > 0
    )


def diagnose(example: ReflectionExample) -> set[Rule]:
    """The rules the reflection model would add for this one example alone."""
    return set(plan_revision([example]).add)


def reflect(prompt: str) -> str:
    """The reflection model's reply: what it saw, what it changed, and the new instruction in a ``` block."""
    current, examples = parse_reflection_request(prompt)
    revision = plan_revision(examples)
    digest = hashlib.sha256("\n".join(e.inputs for e in examples).encode()).digest()
    new_instruction, added, removed = revise_instruction(current, revision.add, revision.remove, digest)
    return f"{_report(examples, revision, added, removed)}\n\n```\n{new_instruction}\n```"


def _quote(text: str, limit: int = 100) -> str:
    """A model output quoted in the reply: one line, no code fence, cut at a word past ``limit``."""
    text = " ".join(text.replace("```", "'''").split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " …"
    return "'" + text + "'"


def _report(
    examples: Sequence[ReflectionExample], revision: Revision, added: Sequence[Rule], removed: Sequence[Rule]
) -> str:
    """The reflection reply's preface: what was seen in the answers, then what changed."""
    total = len(examples)
    if not total:
        return "I was shown no answers, so I kept the instruction as it is."
    found = [findings(example) for example in examples]
    lines = [f"What I saw in the {total} {'answer' if total == 1 else 'answers'}:"]
    for finding in Finding:
        having = [(len(f), i) for i, f in enumerate(found) if finding in f]
        if having:
            # Illustrate with the answer that shows this finding most plainly (fewest other findings).
            example = examples[min(having)[1]]
            text = _FINDING_TEXT[finding][0 if len(having) == 1 else 1]
            shown = f"e.g. {_quote(example.output)} for {_quote(example.expected)}"
            lines.append(f"- {len(having)} of {total} answers {text}, {shown}.")
    right = sum(1 for f, e in zip(found, examples, strict=True) if not f and e.score is not None and e.score >= 1.0)
    if right:
        lines.append(f"- {right} of {total} {'was' if right == 1 else 'were'} already right.")
    if revision.tie_on_names:
        lines.append("Some names lost a part and as many came out too long, so I left the rule about names as it is.")
    if Rule.THINK in added:
        lines.append("The form of every answer is right; only facts are wrong, so the assistant must check them.")
    elif any(Finding.WRONG_FACT in f for f in found):
        lines.append("A wrong fact is not a matter of form: the rules below cannot fix it.")
    changes = [
        f"{verb} " + " and ".join(f'"{_RULE_LABELS[r]}"' for r in rules)
        for verb, rules in (("added", added), ("took out", removed))
        if rules
    ]
    lines.append(
        "What I changed: " + ("; ".join(changes) if changes else "nothing, as no rule I know fixes these") + "."
    )
    return "\n".join(lines)


def revise_instruction(
    current: str, add: Iterable[Rule], remove: Iterable[Rule], digest: bytes
) -> tuple[str, list[Rule], list[Rule]]:
    """``current`` with the rules in ``remove`` taken out and a bullet for each rule of ``add`` it lacks;
    every variable line is kept. Returns the new text and the rules actually added and removed."""
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
    removed = [rule for rule in dict.fromkeys(remove) if rule in detect_rules(" ".join(bullets + prose))]
    if removed:
        bullets = [b for b in bullets if not detect_rules(b) & set(removed)]
        prose = [p for p in prose if not detect_rules(p) & set(removed)]
    present = detect_rules("\n".join(bullets + prose))
    added = [rule for rule in dict.fromkeys(add) if rule not in present]
    for position, rule in enumerate(added):
        options = _PHRASINGS[rule]
        bullets.append(options[digest[position % len(digest)] % len(options)])
    if not bullets:
        bullets.append("Read the question carefully and answer it directly.")
    intro = "\n".join(prose) if prose else _INTROS[digest[-1] % len(_INTROS)]
    parts = [intro, "Rules:\n" + "\n".join(f"- {b}" for b in bullets)]
    if variable_lines:
        parts.append("\n".join(variable_lines))
    return "\n\n".join(parts), added, removed


# --------------------------------------------------------------------------------------------------
# Judge (simulated)
# --------------------------------------------------------------------------------------------------

# The first words of MLflow's judge system prompt (mlflow/genai/judges/instructions_judge/constants.py).
JUDGE_MARKER = "You are an expert judge tasked with evaluating"
_JUDGE_FIELDS = re.compile(r"(?m)^(inputs|outputs|expectations): ")
_FINAL_ANSWER = re.compile(
    r"\b(?:so my answer is|my final answer is|final answer)\s*:?\s*(.+)$", re.IGNORECASE | re.DOTALL
)
_JUDGE_HEDGES = re.compile(
    r"\bnot (?:entirely |completely |quite |totally )?(?:sure|certain)\b|\bunsure\b|\bmight be\b|\bmaybe\b"
    r"|\bperhaps\b|\bpossibly\b|\bprobably\b|\bi think\b|\bi believe\b|\bi (?:don't|do not) know\b",
    re.IGNORECASE,
)
_CANDIDATES = re.compile(r"\beither\b|\bor\b|\w\s*/\s*\w", re.IGNORECASE)
_NEGATIONS = {"not", "never", "isn't", "wasn't", "aren't"}


@dataclass(frozen=True)
class JudgeDecision:
    """The simulated judge's verdict on one answer, with the reason it gives."""

    correct: bool
    rationale: str


def _judge_words(text: str) -> list[str]:
    """Words for the judge: lower case, no punctuation or hyphens, no articles, number words as numbers
    ("two hundred and six" -> "206")."""
    raw = [w.strip("'") for w in re.findall(r"[\w']+", text.lower().replace("\u2019", "'"))]
    raw = [w for w in raw if w and w not in _ARTICLES]
    words: list[str] = []
    total, current, in_number = 0, 0, False
    for index, word in enumerate(raw):
        value = _NUMBER_VALUES.get(word)
        joins = word == "and" and in_number and index + 1 < len(raw) and raw[index + 1] in _NUMBER_VALUES
        if value is None and not joins:
            if in_number:
                words.append(str(total + current))
                total, current, in_number = 0, 0, False
            words.append(word)
        elif value is None:
            continue
        elif value == 1000:
            total, current, in_number = total + max(current, 1) * 1000, 0, True
        elif value == 100:
            current, in_number = max(current, 1) * 100, True
        else:
            tens_then_unit = current % 100 >= 20 and current % 10 == 0 and value < 10
            if in_number and current % 100 and not tens_then_unit:  # "one two": two numbers, not 3
                words.append(str(total + current))
                total, current = 0, 0
            current, in_number = current + value, True
    if in_number:
        words.append(str(total + current))
    return words


def _find_in_order(needle: Sequence[str], haystack: Sequence[str]) -> int | None:
    """Where the first word of ``needle`` sits in ``haystack`` when all of ``needle`` appears there in
    order (gaps allowed), else None."""
    first, position = None, 0
    for word in needle:
        try:
            position = haystack.index(word, position)
        except ValueError:
            return None
        first = position if first is None else first
        position += 1
    return first


def judge_answer(output: str, expected: str) -> JudgeDecision:
    """The simulated judge's rules (see the module docstring), applied to one answer."""
    answer = " ".join(output.split())
    if not answer:
        return JudgeDecision(False, "The answer is empty.")
    shown = _quote(answer)
    final = _FINAL_ANSWER.search(answer)
    after = ""
    if final:
        answer, after = final.group(1).strip(), " after its reasoning"
    if hedge := _JUDGE_HEDGES.search(answer):
        return JudgeDecision(False, f"The answer {shown} hedges ('{hedge.group(0)}') instead of committing to one.")
    want = _judge_words(expected)
    if _CANDIDATES.search(answer) and not _CANDIDATES.search(expected):
        return JudgeDecision(False, f"The answer {shown} names several candidates, not one answer.")
    got = _judge_words(answer)
    if want in (["yes"], ["no"]):
        said = got[0] if got and got[0] in ("yes", "no") else None
        if said is None and len({"yes", "no"} & set(got)) == 1:
            said = next(w for w in got if w in ("yes", "no"))
        if said is None:
            return JudgeDecision(False, f"The answer {shown} does not say yes or no; the expected answer is {want[0]}.")
        if said != want[0]:
            return JudgeDecision(False, f"The answer {shown} says {said}{after}; the expected answer is {want[0]}.")
        return JudgeDecision(True, f"The answer {shown} says {said}{after}, the expected answer.")
    start = _find_in_order(want, got) if want else None
    if start is not None and start > 0 and got[start - 1] in _NEGATIONS:
        return JudgeDecision(False, f"The answer {shown} denies the expected answer {_quote(expected)}.")
    if start is not None:
        if got == want:
            how = "" if answer == expected.strip() else ", written differently"
            return JudgeDecision(True, f"The answer {shown} gives the expected answer {_quote(expected)}{how}{after}.")
        how = "in a sentence" if len(got) > len(want) + 2 else "with a few more words"
        return JudgeDecision(True, f"The answer {shown} states the expected answer {_quote(expected)} {how}{after}.")
    if got and set(got) <= set(want):
        return JudgeDecision(False, f"The answer {shown} gives only part of the expected answer {_quote(expected)}.")
    return JudgeDecision(False, f"The answer {shown} gives a different answer than the expected {_quote(expected)}.")


def is_judge_request(prompt: str) -> bool:
    return JUDGE_MARKER in prompt


def parse_judge_request(prompt: str) -> tuple[str | None, str | None]:
    """(answer, expected answer) from an MLflow judge request's ``outputs:`` and ``expectations:`` lines;
    None for a field that is missing. Values are JSON, as MLflow writes them."""
    matches = list(_JUDGE_FIELDS.finditer(prompt))
    fields: dict[str, object] = {}
    ends = [m.start() for m in matches[1:]] + [len(prompt)] * bool(matches)
    for match, end in zip(matches, ends, strict=True):
        raw = prompt[match.end() : end].strip()
        try:
            fields[match.group(1)] = json.loads(raw)
        except json.JSONDecodeError:
            fields[match.group(1)] = raw
    output, expectations = fields.get("outputs"), fields.get("expectations")
    if isinstance(expectations, dict):
        expectations = expectations.get("expected_response", next(iter(expectations.values()), None))
    as_text = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in (output, expectations)]
    return as_text[0], as_text[1]


def judge_reply(prompt: str) -> str:
    """The simulated judge's reply to an MLflow judge request: ``{"result": "yes"|"no", "rationale": ...}``."""
    output, expected = parse_judge_request(prompt)
    if output is None or expected is None:
        decision = JudgeDecision(False, "I was not shown both an answer (outputs) and an expected answer.")
    else:
        decision = judge_answer(output, expected)
    return json.dumps({"result": "yes" if decision.correct else "no", "rationale": decision.rationale})
