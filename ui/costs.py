"""What a run costs, shown before, during and after it: the pre-run estimate, tokens and dollars per
model role, the pace of a live run, the estimate against what was spent, and where an LLM judge and
exact match disagree."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

import streamlit as st

from core import analysis
from core.templates import markdown_escape

if TYPE_CHECKING:
    from core.config import OptimizationConfig
    from core.datasets import Splits
    from core.health import ReplyProbe
    from core.models import ModelConfig

ROLES = ("task", "reflection", "judge")
# A model that has not replied by then gets no estimate (one line), not a page that waits.
PROBE_TIMEOUT_SECONDS = 30.0
# A probe is one real call: kept ten minutes per model configuration and prompt (a failed one too, so a
# model that cannot be reached costs one wait, not one per click; "Measure again" clears it).
PROBE_TTL_SECONDS = 600


def dollars(value: float | None, *, simulated: bool = False) -> str:
    if simulated:
        return "$0 (simulated)"
    if value is None:
        return "unknown"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def models_key(models: ModelConfig) -> str:
    """A model configuration as a cache key: its public fields and a digest of the key, never the key."""
    public = dataclasses.asdict(models)
    key = public.pop("api_key", None)
    public["key_digest"] = hashlib.sha256(key.encode()).hexdigest()[:16] if key else None
    return json.dumps(public, sort_keys=True, default=str)


@st.cache_data(ttl=PROBE_TTL_SECONDS, show_spinner=False, max_entries=64)
def cached_reply_probe(models_key: str, prompt: str, _models: ModelConfig) -> ReplyProbe:
    """:func:`core.health.reply_probe_in_child` for ``_models`` (cached under ``models_key``) and ``prompt``:
    in a child process, so a slow model never holds the app's interpreter."""
    from core.health import reply_probe_in_child

    return reply_probe_in_child(_models, prompt, timeout=PROBE_TIMEOUT_SECONDS)


def render_pre_run_estimate(config: OptimizationConfig, splits: Splits, template: str) -> None:
    """The estimate of the run ``config`` would start, from one real example sent to the task model
    (cached); one line instead when the model cannot be reached."""
    from core.accounting import Accounting, estimate_run_shape
    from core.templates import render

    prompt = render(template, splits.train.examples[0].inputs)
    with st.spinner("Sending one example to the task model to measure its replies, for the estimate..."):
        probe = cached_reply_probe(models_key(config.models), prompt, config.models)
    if not probe.ok:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.warning(f"No estimate: {markdown_escape(' '.join(probe.message.split()))}", icon=":material/calculate:")
            if st.button("Measure again", key="optimize.estimate_again"):
                cached_reply_probe.clear()
                st.rerun()
        return
    prices = Accounting.for_config(config).prices
    estimate = estimate_run_shape(config, splits, template, probe.completion_tokens, probe.seconds, prices)
    render_estimate(estimate, concurrency=config.concurrency, probe=probe)


def render_estimate(estimate: Any, *, concurrency: int | None = None, probe: ReplyProbe | None = None) -> None:
    """The pre-run estimate (:class:`core.estimate.Estimate`) beside the budget preflight."""
    st.info(markdown_escape(estimate.summary()), icon=":material/calculate:")
    tokens_in = sum(r.prompt_tokens for r in estimate.by_role.values())
    tokens_out = sum(r.completion_tokens for r in estimate.by_role.values())
    said = f"About {round(tokens_in + tokens_out):,} tokens ({round(tokens_in):,} in, {round(tokens_out):,} out)"
    if concurrency is not None:
        said += f"; the time is at {concurrency} model calls at once"
    if probe is not None:
        said += (
            f", from one example sent to the task model ({probe.completion_tokens:.0f} tokens per reply, "
            f"{probe.seconds:.3f} s per call)"
        )
    st.caption(said + ".")
    rows = [
        {
            "role": role,
            "calls": round(tally.calls),
            "tokens in": round(tally.prompt_tokens),
            "tokens out": round(tally.completion_tokens),
            "cost": dollars(tally.cost, simulated=estimate.simulated),
        }
        for role, tally in estimate.by_role.items()
        if tally.calls
    ]
    with st.expander("The estimate, role by role"):
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(
            "From GEPA's accounting (one metric call = one prompt scored on one example), the dataset's and "
            "prompt's lengths and one call to the model. Patience is ignored, so this is an upper bound."
        )


def render_usage(view: analysis.RunView) -> None:
    """Tokens, dollars and seconds per role so far (a live run) or in all (a finished one)."""
    usage = view.usage
    if usage is None:
        return
    cost = view.cost
    simulated = bool(cost and cost.simulated)
    left = None
    with st.container(horizontal=True, gap="large"):  # as wide as their values, wrapping when narrow
        st.metric("Model calls", f"{sum(r.responses for r in usage.by_role.values()):,}", width="content")
        tokens = sum(r.prompt_tokens + r.completion_tokens for r in usage.by_role.values())
        st.metric("Tokens", f"{tokens:,}", width="content")
        label = "Cost" if view.finished else "Cost so far"
        if simulated:  # "$0 (simulated)" is too wide for a metric: the label says it
            st.metric(f"{label} (simulated model)", "$0", width="content")
        else:
            st.metric(label, dollars(cost.total if cost else None), width="content")
        if view.is_live:
            rate, left = analysis.pace(view)
            pace = f"{rate:.1f} calls/s" if rate else "–"
            st.metric("Pace", pace, help="Metric calls per second so far.", width="content")
            st.metric("Time left", f"about {left:.0f} s" if left is not None else "–", width="content")
        else:
            st.metric("Time", f"{view.seconds:.0f} s" if view.seconds is not None else "–", width="content")
    if left is not None:
        st.caption("Time left at this pace to spend the budget; patience may stop the run sooner.")
    if cost is not None and cost.total is None and not simulated:
        st.caption(markdown_escape(cost.describe()) + ": give its price in the sidebar to see dollars.")


def render_usage_table(view: analysis.RunView) -> None:
    usage = view.usage
    if usage is None:
        return
    rows = [
        {
            "role": role,
            "calls": record.responses,
            "tokens in": record.prompt_tokens,
            "tokens out": record.completion_tokens,
            "seconds in calls (summed; calls overlap)": round(record.seconds, 1),
        }
        for role, record in usage.by_role.items()
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    if usage.judge_cache_hits or usage.judge_cache_misses:
        asked = usage.judge_cache_hits + usage.judge_cache_misses
        st.caption(
            f"The judge was asked {asked:,} times and called {usage.judge_cache_misses:,} times: identical "
            f"(output, expected) pairs are judged once. {usage.judge_failures} judge calls failed after retries"
            " (scored 0 and flagged per example)."
        )


def render_estimate_vs_actual(view: analysis.RunView) -> None:
    """The estimate made before the run beside what it spent, role by role."""
    estimate, usage = view.estimate, view.usage
    if estimate is None or usage is None or view.finished is None:
        return
    cost = view.cost
    rows = []
    for role in ROLES:
        guessed, spent = estimate.by_role.get(role), usage.by_role.get(role)
        if not (guessed and guessed.calls) and not (spent and spent.responses):
            continue
        rows.append(
            {
                "role": role,
                "estimated calls": round(guessed.calls) if guessed else 0,
                "actual calls": spent.responses if spent else 0,
                "estimated tokens": round(guessed.prompt_tokens + guessed.completion_tokens) if guessed else 0,
                "actual tokens": (spent.prompt_tokens + spent.completion_tokens) if spent else 0,
            }
        )
    st.markdown("**Estimate against actual**")
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(
        f"Estimated {dollars(estimate.cost, simulated=estimate.simulated)} and {estimate.seconds:.0f} s; spent "
        f"{dollars(cost.total if cost else None, simulated=bool(cost and cost.simulated))} and "
        f"{view.seconds or 0:.0f} s. The estimate ignores patience, so a run stopped early spends less."
    )


def render_agreement(view: analysis.RunView) -> None:
    """For a run scored by the LLM judge: where it and exact match agree, and the examples they do not."""
    for found in analysis.judge_agreement(view):
        st.markdown(f"**The judge against exact match, on the validation outputs of the {found.candidate}**")
        st.dataframe(found.agreement.table(), hide_index=True, width="content")
        st.markdown(markdown_escape(found.lesson))
        if found.disagreements:
            with st.expander(f"The {len(found.disagreements)} examples they disagree on"):
                st.dataframe(list(found.disagreements), hide_index=True, width="stretch")
