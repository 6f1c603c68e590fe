"""From GEPA's typed callback events to the run's event log, and the guard around reflection.

:class:`Recorder` observes GEPA and writes :class:`~core.events.Candidate`,
:class:`~core.events.FrontUpdated`, :class:`~core.events.BudgetUsed` and :class:`~core.events.Proposal`
events, including what the reflection model was shown (:func:`reflective_example`); it never raises
into GEPA.
:class:`GuardedReflection` wraps GEPA's stateless reflection to do what GEPA itself swallows:
count failed reflections, stop the run on a refused key, and discard proposals that drop a
template variable or change nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.datasets import Example
from core.events import (
    REFLECTION_PROMPT_CAP,
    BudgetUsed,
    Candidate,
    EventLog,
    FrontUpdated,
    Proposal,
    ReflectiveExample,
    UsageUpdate,
)
from core.judges import JUDGE_FAILED_PREFIX
from core.models import ModelAccessError, ModelError, ReflectionModel
from core.scorers import FAILED_PREDICTION_PREFIX, is_failed_prediction
from core.templates import lost_variables, malformed_placeholders

_log = logging.getLogger(__name__)


class FatalFlag:
    """Set once by whoever meets a permanent model error; read by a stop callback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.message: str | None = None

    def set(self, message: str) -> None:
        with self._lock:
            self.message = self.message or message


def example_key(inputs: Mapping[str, Any]) -> str:
    return json.dumps(inputs, sort_keys=True, default=str)


class Recorder:
    """GEPA callback turning its typed events into the run's event log. Never raises into GEPA.

    It keeps only what it needs to write the next event: the budget used so far and the iteration
    being assembled (GEPA reports an iteration piece by piece; :class:`~core.events.Proposal` is
    written whole when it ends). Everything else is read back from the log (:mod:`core.analysis`).
    With a judge, ``rationale_of`` gives each validation output's verdict rationale; ``usage_update``
    gives a :class:`~core.events.UsageUpdate`, written after each validation and iteration.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        prompt_name: str,
        train_ids: Sequence[int],
        val: Sequence[Example],
        outputs_cache: Mapping[tuple[str, str], str],
        rationale_of: Callable[[str, str], str | None] | None = None,
        usage_update: Callable[[int], UsageUpdate] | None = None,
    ):
        self.log = log
        self.prompt_name = prompt_name
        self.train_ids = list(train_ids)
        self.val = list(val)
        self.outputs_cache = outputs_cache
        self.rationale_of = rationale_of
        self.usage_update = usage_update
        self.metric_calls = 0
        self.known_candidates: set[int] = set()  # already in the log (a resumed run's): not recorded again
        self._current: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _template_of(self, candidate: Mapping[str, str]) -> str:
        return candidate.get(self.prompt_name, next(iter(candidate.values()), ""))

    def _safe(self, fn: Callable[[], None]) -> None:
        try:
            with self._lock:
                fn()
        except Exception:  # noqa: BLE001 - an observer must never break the optimization
            _log.exception("GEPA Explorer recorder failed")

    # -- GEPA callbacks ----------------------------------------------------------------------------
    def on_valset_evaluated(self, event: Mapping[str, Any]) -> None:
        def record() -> None:
            candidate = int(event["candidate_idx"])
            if candidate in self.known_candidates:
                return
            self.known_candidates.add(candidate)
            template = self._template_of(event["candidate"])
            by_id = event["scores_by_val_id"]
            if candidate == 0:
                self.metric_calls = max(self.metric_calls, len(by_id))
            outputs = self._outputs(template, event.get("outputs_by_val_id") or {})
            rationales = self._rationales(outputs)
            self.log.emit(
                Candidate(
                    index=candidate,
                    iteration=int(event["iteration"]),
                    parents=tuple(int(p) for p in event.get("parent_ids") or [] if p is not None),
                    template=template,
                    scores=tuple(float(by_id.get(i, 0.0)) for i in range(len(self.val))),
                    outputs=outputs,
                    aggregate=float(event["average_score"]),
                    failed=sum(1 for o in outputs if is_failed_prediction(o)),
                    metric_calls=self.metric_calls,
                    rationales=rationales,
                    judge_failed=sum(1 for r in rationales if r.startswith(JUDGE_FAILED_PREFIX)),
                )
            )
            self._report_usage()
            if self._current is not None and candidate != 0:
                self._current["candidate"] = candidate

        self._safe(record)

    def _outputs(self, template: str, given: Mapping[int, Any]) -> tuple[str, ...]:
        """Each validation example's output: GEPA's when it passed them, else what predict_fn saw."""
        missing = f"{FAILED_PREDICTION_PREFIX}: no output recorded"
        return tuple(
            str(given[i]) if i in given else self.outputs_cache.get((template, example_key(example.inputs)), missing)
            for i, example in enumerate(self.val)
        )

    def _rationales(self, outputs: Sequence[str]) -> tuple[str, ...]:
        if self.rationale_of is None:
            return ()
        return tuple(self.rationale_of(o, e.expected) or "" for o, e in zip(outputs, self.val, strict=True))

    def _report_usage(self) -> None:
        if self.usage_update is not None:
            self.log.emit(self.usage_update(self.metric_calls))

    def on_pareto_front_updated(self, event: Mapping[str, Any]) -> None:
        self._safe(
            lambda: self.log.emit(
                FrontUpdated(
                    iteration=int(event["iteration"]),
                    front=tuple(int(c) for c in event.get("new_front") or ()),
                    displaced=tuple(int(c) for c in event.get("displaced_candidates") or ()),
                    metric_calls=self.metric_calls,
                )
            )
        )

    def on_budget_updated(self, event: Mapping[str, Any]) -> None:
        def record() -> None:
            self.metric_calls = int(event["metric_calls_used"])
            self.log.emit(BudgetUsed(iteration=int(event["iteration"]), metric_calls=self.metric_calls))

        self._safe(record)

    def on_iteration_start(self, event: Mapping[str, Any]) -> None:
        def record() -> None:
            self._current = {"iteration": int(event["iteration"])}

        self._safe(record)

    def on_candidate_selected(self, event: Mapping[str, Any]) -> None:
        self._update(lambda: {"parent": int(event["candidate_idx"])})

    def on_minibatch_sampled(self, event: Mapping[str, Any]) -> None:
        self._update(lambda: {"minibatch": tuple(self.train_ids[int(i)] for i in event["minibatch_ids"])})

    def on_evaluation_end(self, event: Mapping[str, Any]) -> None:
        def fields() -> dict[str, Any]:
            which = "before" if event.get("candidate_idx") is not None else "after"
            return {
                f"scores_{which}": tuple(float(s) for s in event["scores"]),
                f"outputs_{which}": tuple(str(o) for o in event.get("outputs") or []),
            }

        self._update(fields)

    def on_evaluation_skipped(self, event: Mapping[str, Any]) -> None:
        reasons = {
            "all_scores_perfect": "every minibatch example already scored perfectly: nothing to fix",
            "no_trajectories": "the evaluation returned no trajectories to reflect on",
        }

        def fields() -> dict[str, Any]:
            reason = str(event.get("reason"))
            return {
                "outcome": "skipped",
                "reason": reasons.get(reason, reason),
                "scores_before": tuple(float(s) for s in event.get("scores") or []),
            }

        self._update(fields)

    def on_reflective_dataset_built(self, event: Mapping[str, Any]) -> None:
        self._update(lambda: self._shown(event.get("dataset") or {}))

    def on_proposal_start(self, event: Mapping[str, Any]) -> None:
        """The same dataset again, as the proposal starts: kept only if the build event was missed."""

        def fields() -> dict[str, Any]:
            if self._current is not None and self._current.get("reflective_dataset"):
                return {}
            return self._shown(event.get("reflective_dataset") or {})

        self._update(fields)

    def _shown(self, dataset: Mapping[str, Any]) -> dict[str, Any]:
        records = dataset.get(self.prompt_name, next(iter(dataset.values()), []))
        minibatch = (self._current or {}).get("minibatch", ())
        return {"reflective_dataset": tuple(reflective_example(r, minibatch) for r in records or ())}

    def on_proposal_end(self, event: Mapping[str, Any]) -> None:
        def fields() -> dict[str, Any]:
            prompts = event.get("prompts") or {}
            raw = event.get("raw_lm_outputs") or {}
            return {
                "template": self._template_of(event.get("new_instructions") or {}),
                "reflection": str(raw.get(self.prompt_name, next(iter(raw.values()), ""))),
                **_prompt_fields(prompts.get(self.prompt_name, next(iter(prompts.values()), ""))),
            }

        self._update(fields)

    def on_candidate_accepted(self, event: Mapping[str, Any]) -> None:
        self._update(
            lambda: {
                "outcome": "accepted",
                "candidate": int(event["new_candidate_idx"]),
                "reason": "better on the minibatch than its parent, so it was scored on the validation set",
            }
        )

    def on_candidate_rejected(self, event: Mapping[str, Any]) -> None:
        self._update(lambda: {"outcome": "rejected", "reason": _readable_rejection(event)})

    def reflection_failed(self, message: str) -> None:
        self._update(lambda: {"outcome": "reflection_failed", "reason": message})

    def invalid_proposal(self, reason: str, template: str, reflection: str, prompt: Any = "") -> None:
        self._update(
            lambda: {
                "outcome": "invalid_proposal",
                "reason": reason,
                "template": template,
                "reflection": reflection,
                **_prompt_fields(prompt),
            }
        )

    def on_iteration_end(self, event: Mapping[str, Any]) -> None:
        def record() -> None:
            current = self._current or {"iteration": int(event["iteration"])}
            self._current = None
            outcome = current.pop("outcome", None) or ("accepted" if event.get("proposal_accepted") else "skipped")
            reason = current.pop("reason", None) or "the reflection model proposed no change"
            self.log.emit(Proposal(**current, outcome=outcome, reason=reason, metric_calls=self.metric_calls))
            self._report_usage()

        self._safe(record)

    def _update(self, fields: Callable[[], dict[str, Any]]) -> None:
        """Merge ``fields()`` into the current iteration's record; computed inside the guard."""

        def record() -> None:
            if self._current is not None:
                self._current.update(fields())

        self._safe(record)


def reflective_example(record: Mapping[str, Any], minibatch: Sequence[int] = ()) -> ReflectiveExample:
    """One record of GEPA's reflective dataset as the event log keeps it.

    MLflow's adapter writes ``inputs``, ``outputs``, ``expectations`` (``expected_response``),
    ``score``, ``rationales`` (scorer name -> text) and ``index`` (the position in the minibatch, so
    ``minibatch[index]`` is the example id); GEPA's default adapter writes ``Inputs``, ``Generated
    Outputs`` and ``Feedback``. Anything else is kept as text rather than lost.
    """
    inputs = record.get("inputs", record.get("Inputs", {}))
    if not isinstance(inputs, Mapping):
        inputs = {"input": inputs}
    expectations = record.get("expectations") or {}
    if isinstance(expectations, Mapping):
        expected = expectations.get("expected_response", next(iter(expectations.values()), ""))
    else:
        expected = expectations
    rationales = record.get("rationales", record.get("Feedback", ""))
    if isinstance(rationales, Mapping):
        lines = [str(text) for text in rationales.values()] if len(rationales) == 1 else []
        feedback = "\n".join(lines or [f"{name}: {text}" for name, text in rationales.items()])
    else:
        feedback = str(rationales or "")
    index = record.get("index")
    in_minibatch = isinstance(index, int) and 0 <= index < len(minibatch)
    score = record.get("score")
    return ReflectiveExample(
        example=minibatch[index] if in_minibatch else None,
        inputs={str(k): _text(v) for k, v in inputs.items()},
        output=_text(record.get("outputs", record.get("Generated Outputs", ""))),
        expected=_text(expected),
        score=float(score) if isinstance(score, int | float) else 0.0,
        feedback=feedback,
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _prompt_fields(prompt: Any) -> dict[str, Any]:
    """The instruction text sent to the reflection model (chat messages as ``role: content`` lines),
    cut at :data:`~core.events.REFLECTION_PROMPT_CAP`, and its full length."""
    if isinstance(prompt, list):
        prompt = "\n\n".join(
            f"{m.get('role', '?')}: {m.get('content', '')}" if isinstance(m, Mapping) else str(m) for m in prompt
        )
    text = str(prompt or "")
    return {"reflection_prompt": text[:REFLECTION_PROMPT_CAP], "reflection_prompt_chars": len(text)}


def _readable_rejection(event: Mapping[str, Any]) -> str:
    old, new = event.get("old_score"), event.get("new_score")
    if isinstance(old, int | float) and isinstance(new, int | float):
        return f"not better on the minibatch than its parent ({new:g} vs {old:g} correct), so not validated"
    return str(event.get("reason", "rejected"))


class GuardedReflection:
    """GEPA's stateless reflection, plus what GEPA itself swallows: failures are counted, a refused key
    stops the run, and proposals that drop a template variable (or change nothing) never reach the pool.
    """

    def __init__(self, lm: ReflectionModel, *, baseline_template: str, recorder: Recorder, fatal: FatalFlag):
        from gepa.proposer.reflective_mutation.reflection_lm import StatelessReflectionLM

        self._inner = StatelessReflectionLM(lm)
        self._baseline_template = baseline_template
        self._recorder = recorder
        self._fatal = fatal

    def reflect(self, candidate: dict[str, str], reflective_dataset: Any, components_to_update: list[str]):
        from gepa.proposer.reflective_mutation.reflection_lm import ReflectionProposal

        empty = ReflectionProposal(new_texts={})
        try:
            proposal, _ = self._inner.reflect(candidate, reflective_dataset, components_to_update)
        except ModelAccessError as error:
            self._fatal.set(str(error))
            self._recorder.reflection_failed(str(error))
            return empty, self
        except ModelError as error:
            self._recorder.reflection_failed(str(error))
            return empty, self
        for name, text in proposal.new_texts.items():
            problem = self._problem(candidate.get(name, ""), text)
            if problem is not None:
                raw, prompt = proposal.raw_lm_outputs.get(name, ""), proposal.prompts.get(name, "")
                self._recorder.invalid_proposal(problem, text, raw, prompt)
                return empty, self
        return proposal, self

    def _problem(self, parent: str, text: str) -> str | None:
        if not text.strip():
            return "the reflection model returned an empty instruction"
        if lost := lost_variables(self._baseline_template, text):
            return "the proposal dropped " + ", ".join("{{" + v + "}}" for v in lost) + ", so it was discarded"
        if malformed_placeholders(text):
            return "the proposal has a malformed {{placeholder}}, so it was discarded"
        if text.strip() == parent.strip():
            return "the proposal is identical to its parent"
        return None
