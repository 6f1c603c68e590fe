"""The Optimize page's view of one run: live progress while it goes, the outcome when it ends.

Not a page of its own (the router does not list it); the Optimize page calls :func:`render`. What the
run is, and where its events come from, is decided by :func:`core.runs.open_run`.
"""

from __future__ import annotations

import streamlit as st

from core import analysis, charts
from core.runs import OpenRun, RunHandle, RunNotFound
from core.scorers import compare_scorers
from core.templates import diff_markdown, markdown_escape, word_diff
from ui import data, registration, shell

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
    try:
        opened = data.open_run(ref, context.tracking_uri)
    except RunNotFound as error:
        st.warning(shell.one_line(error))
        return False
    if opened.salvaged:
        st.warning("This run's process ended unexpectedly; what it recorded was saved to MLflow.")
    if opened.is_live and opened.handle is not None:
        render_stop(opened)
        if opened.phase == "starting":
            render_starting(opened.handle)
        else:
            render_live(opened.handle)
        return True
    if opened.phase == "elsewhere":
        st.info(markdown_escape(opened.message or ""), icon=":material/hourglass_top:")
        return False
    if opened.view is None:
        st.error(markdown_escape(opened.message or "This run recorded nothing."))
        return False
    render_finished(context, opened)
    return False


def render_stop(opened: OpenRun) -> None:
    if opened.stopping:
        st.info(
            "Stopping at the next iteration boundary; everything recorded so far is kept.",
            icon=":material/hourglass_top:",
        )
    elif st.button("Stop", key="optimize.stop", help="Ends the run after the current iteration. Nothing is lost."):
        opened.handle.cancel()
        st.rerun()


@st.fragment(run_every=0.25)
def render_starting(handle: RunHandle) -> None:
    """Until the run's first event: checked often (a warm run writes it within a second of the click),
    and the whole panel is drawn again as soon as it is there."""
    if handle.outcome() is not None or not handle.is_alive() or handle.has_events():
        st.rerun()
    st.info("Starting: checking the store and that the models answer...", icon=":material/hourglass_top:")


@st.fragment(run_every=1.0)
def render_live(handle: RunHandle) -> None:
    if handle.outcome() is not None or not handle.is_alive():
        st.rerun()
    events = handle.read_events()
    if not events:
        st.info("Starting: checking the store and that the models answer...", icon=":material/hourglass_top:")
        return
    view = analysis.build_run_view(events)
    if view.stage is not None:
        st.info(view.stage.message, icon=":material/hourglass_top:")
    if view.baseline_progress is not None:
        scoring = view.baseline_progress
        st.info(
            f"Scoring the baseline: {scoring.scored} of {scoring.total} validation examples",
            icon=":material/hourglass_top:",
        )
    render_progress(view)


def render_progress(view: analysis.RunView) -> None:
    done = min(1.0, view.metric_calls / max(1, view.budget))
    st.progress(done, text=f"{view.metric_calls} of {view.budget} metric calls used")
    if view.metric_calls > view.budget:
        st.caption(
            "GEPA checks the budget before each iteration and finishes the one it started, so a run can "
            "end a little over budget."
        )
    cols = st.columns(4)
    cols[0].metric("Baseline", _pct(view.initial_score))
    cols[1].metric("Best so far", _pct(view.final_score), delta=_delta(view.initial_score, view.final_score))
    cols[2].metric("Candidates", len(view.candidates))
    cols[3].metric("Iterations", len(view.proposals))
    failed = sum(c.failed for c in view.candidates)
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


def render_finished(context: shell.AppContext, opened: OpenRun) -> None:
    view = opened.view
    reason = STOP_REASONS.get(view.stopped_by or "", "it ended")
    if view.outcome == "finished":
        st.success(f"**Optimization finished** because {reason}.", icon=":material/flag:")
    elif view.outcome == "cancelled":
        st.warning(
            f"**Optimization finished** early because {reason}. Everything recorded so far is in MLflow.",
            icon=":material/stop_circle:",
        )
    else:
        said = view.error or opened.message or "the run ended unexpectedly"
        st.error(f"**Optimization failed**: {markdown_escape(said)}")
    best = view.best
    if best is None:
        return
    render_scores(view)
    render_registration(context, view, opened)
    st.markdown(f"**Baseline → candidate {best.index}, word by word** (added in bold, removed struck through)")
    with st.container(border=True):
        st.markdown(diff_markdown(word_diff(view.baseline.template, best.template)))
    render_links(context, opened)


def render_scores(view: analysis.RunView) -> None:
    best = view.best
    evaluation = view.final_evaluation
    before = list(evaluation.baseline.outputs if evaluation else view.candidates[0].outputs)
    after = list(evaluation.best.outputs if evaluation else best.outputs)
    expected = [e.expected for e in view.val_examples]
    rows = compare_scorers(expected, before, after, view.scorer.normalization)
    for row in rows:
        for key in ("baseline", "optimized"):
            row[key] = _pct(row[key])
        row["change"] = f"{row['change']:+.1%}"
    st.markdown(f"**Scores on the {len(expected)} validation examples**, baseline against candidate {best.index}")
    st.dataframe(rows, hide_index=True, width="stretch")
    failures = [
        f"{count} {label}"
        for count, label in (
            (view.failed_predictions, "failed predictions"),
            (view.failed_reflections, "failed reflections"),
        )
        if count
    ]
    if failures:
        st.warning(
            "Model calls failed even after retries: "
            + ", ".join(failures)
            + ". Failed predictions are flagged per example on the Results page and count as 0 in these "
            "scores, which are therefore lower bounds; a failed reflection produced no proposal."
        )


def render_registration(context: shell.AppContext, view: analysis.RunView, opened: OpenRun) -> None:
    if view.registered and view.registered.existing:
        st.info(f"The best candidate has the same text as `{view.registered.uri}`, already registered: no new version.")
        return
    if view.registered:
        st.success(f"Registered as a new version: `{view.registered.uri}`. Earlier versions are unchanged.")
        return
    st.info(f"No new prompt version: {view.not_registered_reason or 'nothing was registered'}.")
    if view.outcome == "cancelled" and opened.info is not None:
        registration.render_register_button(
            view,
            opened.info,
            view.best_candidate,
            context.tracking_uri,
            key="optimize.register_best",
            label=f"Register the best candidate so far (candidate {view.best_candidate}, {_pct(view.final_score)})",
        )


def render_links(context: shell.AppContext, opened: OpenRun) -> None:
    info = opened.info
    if info is None:
        return
    left, right = st.columns(2)
    left.page_link(
        shell.RESULTS, label="Open in Results", icon=":material/insights:", query_params={"run": info.run_id}
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
