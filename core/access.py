"""Who may use a class's app: the class passcode an instructor sets in ``GEPA_EXPLORER_CLASS_PASSCODE``.

When the app listens beyond loopback for a class, anyone on the network can reach it; the passcode
keeps the room's app to the room. It guards the app's pages only, not the MLflow server, Redis or
PostgreSQL behind it (``scripts/workshop`` gives those passwords of their own).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

PASSCODE_VARIABLE = "GEPA_EXPLORER_CLASS_PASSCODE"


def class_passcode(environ: Mapping[str, str] | None = None) -> str | None:
    """The class passcode the instructor set, or None (no gate) when the variable is unset or blank."""
    value = (os.environ if environ is None else environ).get(PASSCODE_VARIABLE, "")
    return value.strip() or None


def passcode_matches(typed: str, passcode: str) -> bool:
    """Whether ``typed`` is the class passcode (surrounding spaces aside, as a paste often adds them),
    compared in constant time so the reply's timing tells nothing about how much of it was right."""
    return hmac.compare_digest(typed.strip().encode("utf-8"), passcode.strip().encode("utf-8"))
