"""The Optimize page's view of one run: live progress while it goes, the outcome when it ends.

Not a page of its own (the router does not list it); the Optimize page calls :func:`render`. What the
run is, and where its events come from, is decided by :func:`core.runs.open_run`.
"""

from __future__ import annotations

import streamlit as st

from core import analysis, charts, tags
from core.analysis import example_inputs_text
from core.offline_model import own_data_note
from core.queue import QueueRunHandle
from core.registration import describe_registered, registration_line
from core.runs import OpenRun, RunHandle, RunNotFound, find_handle
from core.scorers import compare_scorers
from core.summary import counted, failure_warning
from core.templates import diff_markdown, markdown_escape, word_diff
from ui import before_after, costs, data, registration, results_views, shell

RUN_PARAM = "run"


def render(context: shell.AppContext, ref: str) -> OpenRun | None:
    """Show run ``ref``, live while it goes; returns it as found (None when there is no such run)."""
    try:
        opened = data.open_run(ref, context.tracking_uri)
    except RunNotFound as error:
        st.warning(shell.one_line(error))
        return None
    if opened.salvaged:
        st.warning("This run's process ended unexpectedly; what it recorded was saved to MLflow.")
    if opened.is_live and opened.handle is not None:
        render_stop(opened)
        if opened.phase == "starting":
            render_starting(opened.handle)
        else:
            render_live(opened.handle)
    elif opened.phase == "elsewhere":
        st.info(markdown_escape(opened.message or ""), icon=":material/hourglass_top:")
    elif opened.view is None:
        st.error(markdown_escape(opened.message or "This run recorded nothing."))
    else:
        render_finished(context, opened)
    return opened


@st.fragment(run_every=2.0)
def render_left_run(ref: str) -> None:
    """A run this session left to set up another one: one line of where it is and a link back, read
    from its folder on this machine or the queue (no store query), until it ends."""
    handle = find_handle(ref)
    if handle is None:
        return
    events = handle.read_events()
    live = handle.outcome() is None and handle.is_alive()
    with st.container(border=True):
        if live:
            where = analysis.progress_line(analysis.build_run_view(events)) if events else "starting"
            st.markdown(f":material/hourglass_top: **Your previous run is still going**: {markdown_escape(where)}.")
            label = "Back to the running run"
        else:
            st.markdown(":material/flag: **Your previous run has ended.**")
            label = "See how it ended"
        st.page_link(shell.OPTIMIZE, label=label, icon=":material/monitoring:", query_params={RUN_PARAM: ref})


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
    queued = handle.queue_state() if isinstance(handle, QueueRunHandle) else None
    if queued is not None and queued.position is not None:
        st.info("Waiting in the queue for a worker...", icon=":material/hourglass_top:")
    else:
        st.info("Starting: checking the store and that the models answer...", icon=":material/hourglass_top:")
    if queued is not None:
        st.caption(queued.caption())


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
    costs.render_usage(view)
    if view.metric_calls > view.budget:
        st.caption(
            "GEPA checks the budget before each iteration and finishes the one it started, so a run can "
            "end a little over budget."
        )
    with st.container(horizontal=True, gap="medium"):  # wraps on a narrow screen instead of cutting
        st.metric("Baseline", _pct(view.initial_score), width="content")
        delta = _delta(view.initial_score, view.final_score)
        st.metric("Best so far", _pct(view.final_score), delta=delta, width="content")
        st.metric("Candidates", len(view.candidates), width="content")
        st.metric("Iterations", len(view.proposals), width="content")
    failed = sum(c.failed for c in view.candidates)
    if failed:
        st.warning(
            f"{counted(failed, 'model call')} failed during validation even after retries. "
            + ("It is" if failed == 1 else "They are")
            + " flagged as failures (not as wrong answers) in the per-example view; GEPA's scores count "
            "them as 0, so the scores here are lower bounds."
        )
    st.plotly_chart(charts.live_scores_figure(view), width="stretch", key="optimize.live_chart")
    render_feed(view)


def render_feed(view: analysis.RunView) -> None:
    st.markdown("**Proposals, newest first**")
    for proposal in list(reversed(view.proposals))[:40]:
        results_views.render_proposal(proposal, view)


def render_finished(context: shell.AppContext, opened: OpenRun) -> None:
    view = opened.view
    reason = analysis.STOP_REASONS.get(view.stopped_by or "", "it ended")
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
    if view.models.simulated and (note := own_data_note([example_inputs_text(e) for e in view.val_examples])):
        st.warning(markdown_escape(note), icon=":material/science:")
    if only := analysis.only_baseline_line(view):
        st.info(only, icon=":material/info:")
        if warning := failure_warning(view):
            st.warning(warning)
    else:
        before_after.render_before_after(view)
        render_scores(view)
        render_registration(context, view, opened)
        st.markdown(f"**Baseline → candidate {best.index}, word by word** (added in bold, removed struck through)")
        with st.container(border=True):
            st.markdown(diff_markdown(word_diff(view.baseline.template, best.template)))
    render_spending(view)
    render_links(context, opened)


def render_spending(view: analysis.RunView) -> None:
    """What the finished run spent, against the estimate made before it, and for a judge run where the
    judge and exact match disagree."""
    if view.usage is None:
        return
    st.markdown("**What the run spent**, every model call from the preflight checks to the final evaluation")
    costs.render_usage(view)
    costs.render_usage_table(view)
    costs.render_estimate_vs_actual(view)
    costs.render_agreement(view)


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
    if warning := failure_warning(view):
        st.warning(warning)


def render_registration(context: shell.AppContext, view: analysis.RunView, opened: OpenRun) -> None:
    """One line for what became of the best candidate; for a stopped run, the button that registers
    it, which goes once it has (the line then says what it registered)."""
    later = opened.info.tags.get(tags.OPTIMIZED_URI) if opened.info is not None and not view.registered else None
    line, button = st.empty(), st.empty()
    said = registration_line(view, registered_later=later)
    success = bool((view.registered and not view.registered.existing) or later)
    if view.outcome == "cancelled" and not later and opened.info is not None:
        with button.container():
            done = registration.render_register_button(
                view,
                opened.info,
                view.best_candidate,
                context.tracking_uri,
                key="optimize.register_best",
                label=f"Register the best candidate so far (candidate {view.best_candidate}, {_pct(view.final_score)})",
            )
        if done is not None:
            button.empty()
            said, success = describe_registered(done.as_event(), this_run=view.run_id), not done.existing
    if success:
        line.success(markdown_escape(said), icon=":material/check_circle:")
    else:
        line.info(markdown_escape(said), icon=":material/content_copy:" if view.registered else ":material/info:")


def render_links(context: shell.AppContext, opened: OpenRun) -> None:
    info = opened.info
    if info is None:
        return
    left, right = st.columns(2)
    left.page_link(
        shell.RESULTS, label="Open in Results", icon=":material/insights:", query_params={"run": info.run_id}
    )
    left.page_link(
        shell.RESULTS,
        label=f"Every proposal ({len(opened.view.proposals)}), on Results",
        icon=":material/list:",
        query_params={"run": info.run_id, "results.tab": "Proposals"},
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
