"""The Optimize page's view of one run: live progress while it goes, the outcome when it ends.

Not a page of its own (the router does not list it); ``optimize.py`` calls :func:`render`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import analysis, charts
from core.events import EventLogError
from core.runs import RunNotFound, find_run, register_run_candidate
from core.scorers import compare_scorers
from core.templates import diff_markdown, markdown_escape, word_diff
from pages import data, shell

STOP_REASONS = {
    "budget": "the budget of metric calls was used up",
    "patience": "several iterations in a row brought no improvement (patience)",
    "perfect": "a candidate scored 100% on the validation set",
    "cancelled": "you pressed Stop",
    "error": "of an error",
}
OUTCOME_MARKS = {
    "accepted": ":green[✓ accepted]",
    "rejected": ":red[✗ rejected]",
    "skipped": ":gray[↷ skipped]",
    "reflection_failed": ":orange[⚠ reflection failed]",
    "invalid_proposal": ":orange[⊘ discarded]",
}


def render(context: shell.AppContext, ref: str) -> bool:
    """Show run ``ref``; returns True while it is still running."""
    uri = context.tracking_uri
    try:
        handle, info = find_run(ref, tracking_uri=uri)
    except RunNotFound as error:
        st.warning(shell.one_line(error))
        return False
    if info is not None:
        info = data.salvaged(info, uri)
    outcome = handle.outcome() if handle is not None else None
    running = handle is not None and outcome is None and handle.is_alive()
    if running:
        render_stop(handle)
        render_live(handle)
        return True
    if outcome is not None and outcome.get("status") == "rejected":
        st.error(f"The run could not start: {markdown_escape(str(outcome['error']))}")
        return False
    events = handle.read_events() if handle is not None else []
    if not events and info is not None and info.status == "RUNNING":
        st.info(
            f"Run {info.run_id} is still going in a process on another machine "
            f"({info.tags.get('gepa_explorer.host', 'unknown host')}). Its events reach MLflow when it ends; "
            "open it on the Results page then.",
            icon=":material/hourglass_top:",
        )
        return False
    if not events and info is not None:
        try:
            events = data.finished_events(uri, info.run_id)
        except EventLogError as error:
            st.error(shell.one_line(error))
            return False
    if not events:
        st.error((outcome or {}).get("error") or "This run recorded nothing.")
        return False
    render_finished(context, analysis.build_run_view(events), info)
    return False


def render_stop(handle: Any) -> None:
    stopping = (handle.run_dir / "cancel.json").exists()
    if stopping:
        st.info(
            "Stopping at the next iteration boundary; everything recorded so far is kept.",
            icon=":material/hourglass_top:",
        )
    elif st.button("Stop", key="optimize.stop", help="Ends the run after the current iteration. Nothing is lost."):
        handle.cancel()
        st.rerun()


@st.fragment(run_every=1.0)
def render_live(handle: Any) -> None:
    if handle.outcome() is not None or not handle.is_alive():
        st.rerun()
    events = handle.read_events()
    if not events:
        st.info("Starting: checking the store and that the models answer...", icon=":material/hourglass_top:")
        return
    view = analysis.build_run_view(events)
    stage = next((e for e in reversed(events) if e["type"] == "stage"), None)
    if stage is not None:
        st.info(stage["message"], icon=":material/hourglass_top:")
    render_progress(view)


def render_progress(view: analysis.RunView) -> None:
    done = min(1.0, view.metric_calls / max(1, view.budget))
    st.progress(done, text=f"{view.metric_calls} of {view.budget} metric calls used")
    if view.metric_calls > view.budget:
        st.caption(
            "GEPA checks the budget before each iteration and finishes the one it started, so a run can "
            "end a little over budget."
        )
    baseline = view.candidates[0].aggregate if view.candidates else None
    best = view.candidates[view.best_candidate].aggregate if view.candidates else None
    cols = st.columns(4)
    cols[0].metric("Baseline", _pct(baseline))
    cols[1].metric("Best so far", _pct(best), delta=_delta(baseline, best))
    cols[2].metric("Candidates", len(view.candidates))
    cols[3].metric("Iterations", len(view.proposals))
    failed = sum(_failed(c.outputs) for c in view.candidates)
    if failed:
        st.warning(
            f"{failed} model calls failed during validation even after retries. They are flagged as failures "
            "(not as wrong answers) in the per-example view; GEPA's scores count them as 0, so the scores "
            "here are lower bounds."
        )
    st.plotly_chart(charts.live_scores_figure(view), width="stretch", key="optimize.live_chart")
    render_feed(view)


def render_feed(view: analysis.RunView) -> None:
    st.markdown("**Proposals, newest first**")
    for proposal in list(reversed(view.proposals))[:40]:
        before, after = sum(proposal.scores_before), sum(proposal.scores_after)
        size = len(proposal.minibatch) or 1
        title = f"Iteration {proposal.iteration} · {OUTCOME_MARKS.get(proposal.outcome, proposal.outcome)}"
        if proposal.parent is not None:
            title += f" · parent {proposal.parent}"
        if proposal.scores_after:
            title += f" · minibatch {before:g}/{size} → {after:g}/{size}"
        if proposal.candidate is not None:
            title += f" · became candidate {proposal.candidate}"
        with st.expander(title):
            st.markdown(markdown_escape(proposal.reason or ""))
            if proposal.template:
                st.caption("Proposed prompt")
                st.code(proposal.template, language=None, wrap_lines=True)
            if proposal.reflection:
                st.caption("The reflection model's reply")
                st.code(proposal.reflection, language=None, wrap_lines=True)


def render_finished(context: shell.AppContext, view: analysis.RunView, info: Any) -> None:
    final = view.final or {}
    status = final.get("status", view.status)
    reason = STOP_REASONS.get(final.get("stopped_by") or "", "it ended")
    if status == "finished":
        st.success(f"**Optimization finished** because {reason}.", icon=":material/flag:")
    elif status == "cancelled":
        st.warning(
            f"**Optimization finished** early because {reason}. Everything recorded so far is in MLflow.",
            icon=":material/stop_circle:",
        )
    else:
        st.error(f"**Optimization failed**: {markdown_escape(final.get('error') or 'the run ended unexpectedly')}")
    if not view.candidates:
        return
    best = view.candidates[view.best_candidate]
    render_scores(view, final)
    render_registration(context, view, info, final)
    st.markdown(f"**Baseline → candidate {best.index}, word by word** (added in bold, removed struck through)")
    with st.container(border=True):
        st.markdown(diff_markdown(word_diff(view.candidates[0].template, best.template)))
    render_links(context, view, info)


def render_scores(view: analysis.RunView, final: dict[str, Any]) -> None:
    best = view.candidates[view.best_candidate]
    evaluation = final.get("final_evaluation") or {}
    before = (evaluation.get("baseline") or {}).get("outputs") or list(view.candidates[0].outputs)
    after = (evaluation.get("best") or {}).get("outputs") or list(best.outputs)
    expected = [e.expected for e in view.val_examples]
    rows = compare_scorers(expected, before, after, view.scorer.normalization)
    for row in rows:
        for key in ("baseline", "optimized"):
            row[key] = _pct(row[key])
        row["change"] = f"{row['change']:+.1%}"
    st.markdown(f"**Scores on the {len(expected)} validation examples**, baseline against candidate {best.index}")
    st.dataframe(rows, hide_index=True, width="stretch")
    failures = [
        f"{final.get(k)} {label}"
        for k, label in (("failed_predictions", "failed predictions"), ("failed_reflections", "failed reflections"))
        if final.get(k)
    ]
    if failures:
        st.warning(
            "Model calls failed even after retries: "
            + ", ".join(failures)
            + ". Failed predictions are flagged per example on the Results page and count as 0 in these "
            "scores, which are therefore lower bounds; a failed reflection produced no proposal."
        )


def render_registration(context: shell.AppContext, view: analysis.RunView, info: Any, final: dict[str, Any]) -> None:
    registered = final.get("registered")
    if registered:
        st.success(f"Registered as a new version: `{registered['uri']}`. Earlier versions are unchanged.")
        return
    reason = final.get("not_registered_reason") or "nothing was registered"
    st.info(f"No new prompt version: {reason}.")
    best = view.candidates[view.best_candidate]
    can_register = info is not None and best.index != 0 and best.aggregate > view.candidates[0].aggregate
    if final.get("status") == "cancelled" and can_register:
        label = f"Register the best candidate so far (candidate {best.index}, {_pct(best.aggregate)})"
        if st.button(label, key="optimize.register_best"):
            try:
                version = register_run_candidate(info, best.index, tracking_uri=context.tracking_uri)
            except Exception as error:  # noqa: BLE001 - shown as one line
                st.error(shell.one_line(error))
            else:
                data.clear_registry_cache()
                st.success(f"Registered {version.uri}.")


def render_links(context: shell.AppContext, view: analysis.RunView, info: Any) -> None:
    if info is None:
        return
    left, right = st.columns(2)
    left.page_link(
        "pages/results.py", label="Open in Results", icon=":material/insights:", query_params={"run": info.run_id}
    )
    ui = context.store.ui_url
    if ui:
        right.link_button("Open the run in MLflow's UI", f"{ui}/#/experiments/{info.experiment_id}/runs/{info.run_id}")
    else:
        right.caption(f"In MLflow's own UI: run `{markdown_escape(info.run_id)}` of experiment {info.experiment_id}.")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _delta(before: float | None, after: float | None) -> str | None:
    return None if before is None or after is None else f"{after - before:+.1%}"


def _failed(outputs: tuple[str, ...]) -> int:
    from core.scorers import is_failed_prediction

    return sum(1 for o in outputs if is_failed_prediction(o))
