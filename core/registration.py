"""Whether, and how, a candidate becomes a new prompt version: one rule for the end of a run and for the
pages' buttons.

Registered versions are never changed: registering only adds a version, and a candidate whose text is
already a version of the prompt reuses that version instead of adding a copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import tags
from core.events import Registered
from core.templates import lost_variables

if TYPE_CHECKING:
    from core.analysis import RunView
    from core.prompts import PromptVersionInfo

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """The version a candidate is now; ``existing`` when that text was already registered."""

    version: PromptVersionInfo
    existing: bool

    @property
    def by_run(self) -> str | None:
        """For an ``existing`` version, the run that registered it (None: not an optimization run)."""
        return self.version.tags.get(tags.SOURCE_RUN) or None if self.existing else None

    def as_event(self) -> Registered:
        return Registered(self.version.uri, self.version.version, self.existing, self.by_run)


def describe_registered(registered: Registered, *, this_run: str | None = None) -> str:
    """One sentence for what registering the best candidate did: a new version, or none because a
    version already had exactly its text, naming that version and the run that registered it."""
    if not registered.existing:
        return f"Registered as a new version: {registered.uri}. Earlier versions are unchanged."
    if registered.by_run and registered.by_run == this_run:
        by = ", registered by this run"
    else:
        by = f", registered by run {registered.by_run}" if registered.by_run else ", already registered"
    return f"Same text as version {registered.version} ({registered.uri}){by}; no new version."


def registration_blocker(view: RunView, candidate: int) -> str | None:
    """Why ``candidate`` of the run may not become a new prompt version, or None when it may.

    A candidate may when it was scored on the validation set, differs from the baseline, keeps every
    ``{{variable}}`` of the baseline and scores better than the baseline. The reason is phrased for
    the run's best candidate ("no candidate beat ...") when that is the one asked about.
    """
    if not 0 <= candidate < len(view.candidates):
        return f"candidate {candidate} was not scored on the validation set"
    chosen, baseline = view.candidates[candidate], view.candidates[0]
    best = candidate == view.best_candidate
    who = "the best candidate" if best else f"candidate {candidate}"
    if best and candidate == 0:  # the baseline itself is (tied for) the best
        if len(view.candidates) == 1:
            return "the search found no candidate besides the baseline"
        return f"no candidate beat the baseline's score ({baseline.aggregate:.1%})"
    if chosen.template.strip() == view.baseline.template.strip():
        return "no candidate differs from the baseline" if best else f"{who} is identical to the baseline"
    if lost := lost_variables(view.baseline.template, chosen.template):
        return f"{who} dropped " + ", ".join("{{" + v + "}}" for v in lost)
    if chosen.aggregate <= baseline.aggregate:
        beaten = "no candidate beat" if best else f"{who} does not beat"
        return f"{beaten} the baseline's score ({baseline.aggregate:.1%})"
    return None


def end_of_run_blocker(view: RunView, *, register: bool, cancelled: bool, register_best_on_cancel: bool) -> str | None:
    """Why the run does not register its best candidate by itself when it ends, or None when it does:
    registration turned off, a stop by the user who did not ask for it, or :func:`registration_blocker`."""
    if not register:
        return "registration was turned off (--no-register)"
    if cancelled and not register_best_on_cancel:
        return "the run was stopped; register the best candidate from the Results page if you want it"
    return registration_blocker(view, view.best_candidate)


def register_candidate(
    view: RunView, candidate: int, *, tracking_uri: str | None = None, participant: str | None = None
) -> Registration:
    """Make ``candidate`` of the run a version of its baseline's prompt (of the participant's own copy of
    it, ``participant.name``, in a class: :func:`core.participants.prompt_name_for`), linked to the run: the version
    that already has exactly its text, or a new one (:func:`core.prompts.find_or_register`, so two
    runs or sessions at once never both add the same text).

    Raises:
        PromptError: :func:`registration_blocker` refuses it.
    """
    import mlflow

    from core import prompts
    from core.store import retry_store

    if reason := registration_blocker(view, candidate):
        raise prompts.PromptError(f"Not registered: {reason}.")
    from core.participants import prompt_name_for

    chosen, baseline = view.candidates[candidate], view.baseline
    target = prompt_name_for(participant or view.participant, baseline.name)
    run_id = view.run_id or ""
    change = f", {view.scorer.kind} {view.candidates[0].aggregate:.1%} -> {chosen.aggregate:.1%}"
    version, existing = prompts.find_or_register(
        target,
        chosen.template,
        commit_message=f"GEPA Explorer: candidate {candidate} optimized from v{baseline.version}{change} "
        f"(run {run_id})",
        tags={tags.SOURCE_RUN: run_id, tags.SOURCE_VERSION: str(baseline.version), tags.CANDIDATE: str(candidate)},
        tracking_uri=tracking_uri,
    )
    client = mlflow.MlflowClient(tracking_uri=tracking_uri) if tracking_uri else mlflow.MlflowClient()
    try:
        retry_store(lambda: client.link_prompt_version_to_run(run_id, version.uri))
    except Exception:  # noqa: BLE001 - the link is a convenience; the version exists either way
        _log.warning("could not link %s to run %s", version.uri, run_id)
    return Registration(version, existing)


def registration_line(view: RunView, *, registered_later: str | None = None) -> str:
    """What became of the run's best candidate, in one sentence true to the run's state: the version
    it became (:func:`describe_registered`), the version registered after the run ended
    (``registered_later``: the run's ``optimized_uri`` tag, set by a register button), an offer to
    register the best candidate of a stopped run, or why nothing was registered."""
    if view.registered is not None:
        return describe_registered(view.registered, this_run=view.run_id)
    if registered_later:
        return f"After the stop, the best candidate was registered as {registered_later}."
    if view.outcome == "cancelled" and registration_blocker(view, view.best_candidate) is None:
        return "Stopped before its end, so nothing was registered: the best candidate so far can be, below."
    reason = registration_blocker(view, view.best_candidate) if view.outcome == "cancelled" else None
    return f"No new prompt version: {reason or view.not_registered_reason or 'nothing was registered'}."
