"""Results: any recorded optimization run, rebuilt from its MLflow events: candidates, Pareto front,
lineage, the candidate x example matrix, every example side by side, what-if, export, and a
step-by-step replay of its iterations."""

from __future__ import annotations

import streamlit as st

from core import analysis, charts
from core.offline_model import own_data_note
from core.runs import RunInfo, run_label, run_rows
from core.templates import markdown_escape
from ui import data, instructor, replay, results_views, shell, status

RUN_PARAM = "run"


def render_picker(runs: list[RunInfo]) -> RunInfo:
    ids = [r.run_id for r in runs]
    wanted = st.query_params.get(RUN_PARAM)
    index = ids.index(wanted) if wanted in ids else 0
    if wanted and wanted not in ids:
        st.warning(f"No optimization run '{wanted}' in this store; showing the newest one.")
    with st.expander(f"All {len(runs)} optimization runs in this store", expanded=False):
        st.dataframe(
            run_rows(runs),
            hide_index=True,
            width="stretch",
            column_config={
                "baseline": st.column_config.NumberColumn(format="percent", width=70),
                "best": st.column_config.NumberColumn(format="percent", width=70),
                "scorer": st.column_config.TextColumn(width=170),
                "budget": st.column_config.TextColumn(width=60),
                "patience": st.column_config.TextColumn(width=64),
                "seed": st.column_config.TextColumn(width=44),
                "started": st.column_config.TextColumn(width=100),
            },
        )
    chosen = st.selectbox("Run", ids, index=index, format_func=lambda i: run_label(runs[ids.index(i)]))
    if chosen != wanted:
        st.query_params[RUN_PARAM] = chosen
    return runs[ids.index(chosen)]


def render_header(view: analysis.RunView, info: RunInfo) -> None:
    best = view.best
    # Each metric as wide as it needs (one row at 1024 px), wrapping to a second line on a narrower
    # screen, instead of five equal columns that cut "Best (candidate 4)" and "302 / 300".
    with st.container(horizontal=True, gap="small"):
        st.metric("Baseline", _pct(view.initial_score), width="content")
        st.metric(
            f"Best (candidate {best.index})" if best else "Best",
            _pct(view.final_score),
            delta=f"{view.final_score - view.initial_score:+.1%}" if best else None,
            width="content",
        )
        st.metric("Candidates", len(view.candidates), width="content")
        st.metric("Iterations", len(view.proposals), width="content")
        st.metric(
            f"Metric calls (budget {view.budget})",
            view.metric_calls,
            help="Used against the budget. GEPA checks the budget before each iteration and finishes the one "
            "it started, so a run can end a little over budget.",
            width="content",
        )
    st.caption(
        f"Prompt {view.baseline.uri} · dataset {info.dataset or '?'} "
        f"({len(view.val_examples)} validation rows) · {view.scorer.label} · patience {view.patience or 'off'} · "
        f"seed {view.seed} · {analysis.how_it_ended(view)}"
    )
    if only := analysis.only_baseline_line(view):
        st.info(only, icon=":material/info:")
    if view.models.simulated and (note := own_data_note([analysis.example_inputs_text(e) for e in view.val_examples])):
        st.warning(markdown_escape(note), icon=":material/science:")
    if view.is_live:
        st.info("This run is still going: the views show what it has recorded so far.", icon=":material/hourglass_top:")
        if info.is_local_process:
            st.page_link(
                shell.OPTIMIZE,
                label="Watch it live, or stop it, on the Optimize page",
                icon=":material/monitoring:",
                query_params={RUN_PARAM: info.run_id},
            )


def render_resume(info: RunInfo, uri: str) -> None:
    """For a failed or cancelled run: Resume, which continues it from GEPA's saved state as a new run
    (on the queue when there is one) and opens that run on the Optimize page."""
    from core.errors import InputError
    from core.resume import RESUMABLE, start_resume

    if info.status not in RESUMABLE:
        return
    if st.button(
        "Resume",
        key="results.resume",
        icon=":material/play_arrow:",
        help="Continue this run from the GEPA state it saved, as a new run with the same settings and budget.",
    ):
        try:
            handle = start_resume(info.run_id, tracking_uri=uri, api_key=shell.app_context().models.api_key)
        except InputError as error:
            st.error(shell.one_line(error))
            return
        st.switch_page(shell.OPTIMIZE, query_params={RUN_PARAM: handle.run_dir.name})


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def main() -> None:
    context = shell.app_context()
    uri = context.tracking_uri
    st.title("Results")
    if not status.store_ready(context):
        return
    try:
        runs = data.cached_runs(uri)
    except Exception as error:  # noqa: BLE001 - the store is unusable; one line
        st.error(f"The MLflow store cannot be read: {shell.one_line(error)}")
        return
    if not runs:
        st.info("No optimization runs in this store yet.")
        st.page_link(shell.OPTIMIZE, label="Start one on the Optimize page", icon=":material/rocket_launch:")
        return
    info = render_picker(runs)
    opened = data.open_run(info.run_id, uri)
    if opened.salvaged:
        st.warning("This run's process ended unexpectedly; what it recorded was saved to MLflow.")
    info = opened.info or info
    view = opened.view
    if view is None:
        if opened.phase == "elsewhere":
            st.info(markdown_escape(opened.message or ""), icon=":material/hourglass_top:")
        else:
            st.error(markdown_escape(opened.message or "This run recorded nothing."))
        return
    render_header(view, info)
    render_resume(info, uri)
    if not view.candidates:
        st.info(
            "The baseline is still being scored: the views appear once it has a score."
            if view.is_live
            else "This run ended before the baseline was scored, so there is nothing to compare. "
            + (f"It says: {markdown_escape(view.error)}" if view.error else ""),
            icon=":material/info:",
        )
        return
    render_tabs(view, uri, runs, info)


def render_tabs(view: analysis.RunView, uri: str, runs: list[RunInfo], info: RunInfo) -> None:
    names = [
        "Candidates",
        "Pareto front",
        "Lineage",
        "Score matrix",
        "Per example",
        "What if",
        "Export",
        "Proposals",
        "Replay",
    ]
    tabs = st.tabs(
        names,
        key=instructor.TAB_PARAM,
        on_change="rerun",
        bind="query-params",
    )
    # Only the open tab is computed and sent: a 300 x 500 run stays quick to browse.
    renderers = [
        lambda: results_views.render_candidates(view, uri, info),
        lambda: results_views.render_front(view),
        lambda: st.plotly_chart(charts.lineage_figure(view), width="stretch", key="results.lineage"),
        lambda: results_views.render_matrix(view),
        lambda: results_views.render_examples(view),
        lambda: results_views.render_what_if(view, uri, runs, info),
        lambda: results_views.render_export(view, info),
        lambda: results_views.render_proposals(view),
        lambda: replay.render_replay(view, info.run_id),
    ]
    for name, tab, render in zip(names, tabs, renderers, strict=True):
        if tab.open is not False:
            with tab:
                instructor.render_note(name)
                render()


main()
