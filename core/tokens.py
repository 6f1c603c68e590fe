"""Token counts estimated from words: what the offline endpoint reports as usage, and what the pre-run
estimate (:mod:`core.estimate`) assumes for texts it has not sent yet. Pure Python, no tokenizer.

The rule is OpenAI's rule of thumb, a token is about three quarters of a word: ``ceil(4 * words / 3)``,
words split at white space. A chat prompt adds 3 tokens of framing per message and 3 that prime the
reply, as OpenAI's chat format does. Measured against ``o200k_base`` (gpt-4o's tokenizer) on the
bundled short-answer set: task prompts +9%, task replies +5%, a GEPA reflection prompt -3%, its reply
within 1%. Real endpoints count with their own tokenizer; their ``usage`` is what gets metered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

TOKENS_PER_WORD = 4 / 3
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3


def text_tokens(text: str) -> int:
    """About how many tokens ``text`` is: ``ceil(4/3 x words)``; 0 for blank text."""
    return math.ceil(len(text.split()) * TOKENS_PER_WORD)


def message_text(content: Any) -> str:
    """The text of one chat message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def chat_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """About how many prompt tokens a chat request is: each message's text plus its framing, plus
    the tokens that prime the reply."""
    return (
        sum(text_tokens(message_text(m.get("content"))) + TOKENS_PER_MESSAGE for m in messages) + REPLY_PRIMING_TOKENS
    )
