"""The built-in offline demo model: simulated, deterministic, not a language model.

See :mod:`core.offline_model.behaviour` for what it answers and which instructions it obeys, and
:mod:`core.offline_model.server` for the OpenAI-compatible endpoint that serves it.
"""

from collections.abc import Sequence

from core.offline_model.behaviour import MODEL_NAME, UNKNOWN_ANSWER, default_knowledge

__all__ = ["MODEL_NAME", "own_data_note"]

REAL_MODEL_HINT = (
    "To optimize your own data, choose OpenAI or an OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp, "
    "LM Studio) under Models in the sidebar."
)


def own_data_note(texts: Sequence[str]) -> str | None:
    """What to say when the simulated model does not know most of these examples (each one's inputs
    as text): it only knows the bundled questions, so it cannot answer them and a search on them
    learns nothing. None when it knows at least half."""
    knowledge = default_knowledge()
    known = sum(1 for text in texts if knowledge.find(text) is not None)
    if not texts or known * 2 >= len(texts):
        return None
    return (
        f"The offline demo model is simulated: it knows only the bundled questions, {known} of these "
        f'{len(texts)} rows. To every other one it answers "{UNKNOWN_ANSWER}", so their scores stay at 0 '
        f"and GEPA has nothing to learn from them. {REAL_MODEL_HINT}"
    )
