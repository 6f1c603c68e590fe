"""The errors that mean "fix your input", shared by every module so the boundaries can tell them apart.

Anything a user gave (a setting, a file, a template, a prompt, a model, a store) that makes the work
impossible raises a subclass of :class:`InputError` with a message saying what to change, before
anything is called or registered. The CLI exits 2 with that one line; the pages show it. Any other
exception is a bug: the CLI exits 1 and keeps its traceback in the run's log file.
"""

from __future__ import annotations


class InputError(Exception):
    """Something the user gave makes the work impossible; ``str()`` is one line saying what to change."""


class ConfigError(InputError, ValueError):
    """A setting that makes the run impossible; nothing has been called or registered."""
