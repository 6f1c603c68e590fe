"""Prompt templates with ``{{variables}}``: find them, check them, render them, diff them.

Pure Python, no MLflow import: the Prompts page calls these on every keystroke.
The variable syntax is MLflow's (``{{ name }}``, optional inner spaces, dotted names allowed),
so what this module accepts is exactly what ``PromptVersion.format`` substitutes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from core.errors import InputError

# Same pattern as mlflow.prompt.constants.PROMPT_TEMPLATE_VARIABLE_PATTERN.
VARIABLE_PATTERN = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\s*\}\}")
_BRACE_RUN = re.compile(r"\{\{|\}\}")


class TemplateError(InputError, ValueError):
    """A template that cannot be used as written; the message says what to change."""


def template_variables(template: str) -> list[str]:
    """The distinct ``{{variables}}`` of ``template``, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in VARIABLE_PATTERN.finditer(template):
        seen.setdefault(match.group(1), None)
    return list(seen)


# What is left of a template once its real variables are removed, read as attempts at one: a closed
# "{{ ... }}" that is not a name, an opening "{{" left unclosed (with the word after it), or a name
# closed by "}}" with at most one brace before it. A "}}" after anything else (the end of a nested
# JSON object, say) is ordinary text.
_ATTEMPT = re.compile(r"\{\{[^{}\n]*\}\}|\{\{\s*[^{}\s]*\}?|\{?[a-zA-Z_][a-zA-Z0-9_.]*\}\}")
_NAME_START = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_.]*)")


def malformed_placeholders(template: str) -> list[str]:
    """Brace fragments that look like a placeholder but are not one, one per mistake.

    Examples: ``{{question}`` (unclosed), ``{{ 1st }}`` (not a name), ``{question}}`` (one brace open).
    ``{question}`` is deliberately *not* reported: single braces are ordinary text (JSON examples).
    """
    stripped = VARIABLE_PATTERN.sub(" ", template)
    return [match.group(0) for match in _ATTEMPT.finditer(stripped)]


def malformed_message(fragment: str) -> str:
    """The one sentence said for a fragment of :func:`malformed_placeholders`, with the fix."""
    if fragment.startswith("{{") and fragment.endswith("}}"):
        return (
            f"'{fragment}' is not a variable name: start with a letter or _, then letters, digits or _ "
            "(for example {{question}})."
        )
    name = _NAME_START.match(fragment.strip("{}"))
    wanted = "{{" + name.group(1) + "}}" if name else "{{name}}"
    if fragment.startswith("{{"):
        return f"'{fragment}' is not closed: write {wanted}."
    if fragment.startswith("{"):
        return f"'{fragment}' opens with one brace: write {wanted}."
    return f"'{fragment}' is never opened: write {wanted}."


@dataclass(frozen=True)
class TemplateCheck:
    """What a template needs from a dataset, and what is wrong with it.

    ``missing``: variables the template uses that the dataset rows do not have.
    ``unused``: dataset input fields the template never mentions (a warning, not an error).
    ``malformed``: fragments such as ``{{question}`` that will not be substituted.
    ``problems``: one sentence per mistake, saying what to write instead.
    """

    variables: tuple[str, ...]
    missing: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    malformed: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def check_template(template: str, dataset_fields: Iterable[str] | None = None) -> TemplateCheck:
    """Check ``template`` on its own and, when given, against a dataset's input fields.

    Returns a :class:`TemplateCheck`; ``problems`` holds one readable sentence per error.
    """
    variables = tuple(template_variables(template))
    malformed = tuple(malformed_placeholders(template))
    problems = [malformed_message(fragment) for fragment in malformed]
    if not template.strip():
        problems.append("The template is empty: write the instructions and at least one {{variable}}.")
    elif not variables and not malformed:  # a malformed one is the variable meant: said once, above
        problems.append(
            "The template has no {{variable}}: add one (for example {{question}}) so each example's "
            "input reaches the model."
        )
    missing: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    if dataset_fields is not None:
        fields = list(dict.fromkeys(dataset_fields))
        missing = tuple(v for v in variables if v not in fields)
        # A field a malformed placeholder means to use is that mistake, not an unused field.
        meant = {m.group(1) for fragment in malformed if (m := _NAME_START.match(fragment.strip("{}")))}
        unused = tuple(f for f in fields if f not in variables and f not in meant)
        for name in missing:
            available = ", ".join(fields) or "none"
            problems.append(
                f"The template uses {{{{{name}}}}} but the dataset has no '{name}' field (its fields: {available})."
            )
    return TemplateCheck(variables, missing, unused, malformed, tuple(problems))


def render(template: str, values: Mapping[str, object]) -> str:
    """Substitute ``{{variables}}`` in one pass, as ``PromptVersion.format`` does.

    Raises :class:`TemplateError` naming the variables ``values`` lacks.
    """
    missing = [v for v in template_variables(template) if v not in values]
    if missing:
        raise TemplateError(f"No value for {', '.join('{{' + m + '}}' for m in missing)}.")
    return VARIABLE_PATTERN.sub(lambda m: str(values[m.group(1)]), template)


def lost_variables(baseline: str, candidate: str) -> list[str]:
    """Variables of ``baseline`` that ``candidate`` no longer contains."""
    kept = set(template_variables(candidate))
    return [v for v in template_variables(baseline) if v not in kept]


@dataclass(frozen=True)
class DiffSegment:
    """One run of a word diff: ``op`` is ``equal``, ``insert`` or ``delete``."""

    op: Literal["equal", "insert", "delete"]
    text: str


_TOKEN = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> list[DiffSegment]:
    """Word-level diff of two texts; whitespace is kept so the segments rejoin to the texts.

    ``"".join(s.text for s in diff if s.op != "insert") == old`` and likewise for ``new``.
    """
    old_tokens = _TOKEN.findall(old)
    new_tokens = _TOKEN.findall(new)
    matcher = difflib.SequenceMatcher(a=old_tokens, b=new_tokens, autojunk=False)
    segments: list[DiffSegment] = []

    def push(op: Literal["equal", "insert", "delete"], tokens: list[str]) -> None:
        if not tokens:
            return
        text = "".join(tokens)
        if segments and segments[-1].op == op:
            segments[-1] = DiffSegment(op, segments[-1].text + text)
        else:
            segments.append(DiffSegment(op, text))

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            push("equal", old_tokens[i1:i2])
        else:
            push("delete", old_tokens[i1:i2])
            push("insert", new_tokens[j1:j2])
    return segments


def diff_counts(segments: Iterable[DiffSegment]) -> dict[str, int]:
    """Words inserted and deleted in a diff (whitespace runs do not count)."""
    counts = {"insert": 0, "delete": 0}
    for segment in segments:
        if segment.op in counts:
            counts[segment.op] += len(segment.text.split())
    return counts


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^])")


def markdown_escape(text: str) -> str:
    """``text`` with every Markdown (and Streamlit directive) character escaped: shows as typed."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def diff_markdown(segments: Iterable[DiffSegment]) -> str:
    """A word diff as Streamlit Markdown: insertions bold on green, deletions struck through on red.

    Everything is escaped, so model text never turns into markup; the marks (bold, strike-through)
    carry the meaning as well as the colours. Line breaks are kept.
    """
    out: list[str] = []
    for segment in segments:
        lines = []
        for line in segment.text.split("\n"):
            core = line.strip()
            if not core or segment.op == "equal":
                lines.append(markdown_escape(line))
                continue
            lead, trail = line[: len(line) - len(line.lstrip())], line[len(line.rstrip()) :]
            body = markdown_escape(core)
            mark = f":green-background[**{body}**]" if segment.op == "insert" else f":red-background[~~{body}~~]"
            lines.append(f"{lead}{mark}{trail}")
        out.append("  \n".join(lines))
    return "".join(out)
