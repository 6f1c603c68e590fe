"""The built-in offline demo model: simulated, deterministic, not a language model.

See :mod:`core.offline_model.behaviour` for what it answers and which instructions it obeys, and
:mod:`core.offline_model.server` for the OpenAI-compatible endpoint that serves it.
"""

from core.offline_model.behaviour import MODEL_NAME

__all__ = ["MODEL_NAME"]
