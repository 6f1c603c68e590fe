"""The Results page's tabs, one ``render_*`` function each. Not a page (the router does not list it).

Figures and tables come from :mod:`core.charts` and :mod:`core.analysis`; model text is shown with
``st.code`` / ``st.dataframe`` or escaped Markdown, never as HTML.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from core import analysis, charts, groups
from core.export import export_run
from core.offline_model import own_data_note
from core.registration import describe_registered
from core.scorers import SCORER_LABELS
from core.summary import counted
from core.templates import diff_markdown, markdown_escape, word_diff
from ui import costs, data, registration, shell
from ui import groups as group_views

EXAMPLES_IN_DETAIL = 50
PROPOSALS_SHOWN = 200
OUTCOME_MARKS = {
    "accepted": ":green[✓ accepted]",
    "rejected": ":red[✗ rejected]",
    "skipped": ":gray[↷ skipped]",
    "reflection_failed": ":orange[⚠ reflection failed]",
    "invalid_proposal": ":orange[⊘ discarded]",
}


def render_header(view: analysis.RunView, info: Any) -> None:
    """The run in two rows: its scores on each split, named with the split's size, and the paired
    test's sentence; then what the search did and spent (candidates, iterations, metric calls, cost,
    seconds), and its settings in a caption."""
    best = view.best
    comparisons = analysis.before_after(view)
    # Each metric as wide as it needs, wrapping to a second line on a narrow screen, instead of equal
    # columns that cut "Best (candidate 4), validation, 30 examples".
    with st.container(horizontal=True, gap="small"):
        st.metric(
            f"Best (candidate {best.index}) · validation, {counted(len(view.val_examples), 'example')}"
            if best
            else f"Best · validation, {counted(len(view.val_examples), 'example')}",
            _pct(view.final_score),
            delta=f"{view.final_score - view.initial_score:+.1%} from the baseline's {view.initial_score:.1%}"
            if best
            else None,
            help="The examples GEPA selected candidates by: this score flatters the optimized prompt.",
            width="content",
        )
        test = comparisons.get("test")
        if test is not None:
            st.metric(
                f"Its score · test, {counted(test.n, 'example')}",
                _pct(test.after_mean),
                delta=f"{test.mean_difference:+.1%} from the baseline's {test.before_mean:.1%}",
                help="Held out: never seen by the search, scored once at the end. The honest measure.",
                width="content",
            )
        elif view.test_examples:
            st.metric(f"Test, {counted(len(view.test_examples), 'example')}", "not yet", width="content")
        else:
            st.metric("Test", "none", help="This run held out no test set.", width="content")
    sentence = test or comparisons.get("validation")
    if sentence is not None:
        st.markdown(markdown_escape(sentence.sentence))
    if test is None and not view.test_examples and comparisons:
        st.caption(
            "No test set: these scores are on the examples GEPA selected by, so they flatter the optimized "
            "prompt. Hold out a test set to know how it does on new questions."
        )
    if warning := analysis.overfitting_warning(view):
        st.warning(markdown_escape(warning), icon=":material/warning:")
    cost = view.cost
    with st.container(horizontal=True, gap="small"):
        st.metric("Candidates", len(view.candidates), width="content")
        st.metric("Iterations", len(view.proposals), width="content")
        st.metric(
            f"Metric calls (budget {view.budget})",
            view.metric_calls,
            help="Used against the budget. GEPA checks the budget before each iteration and finishes the one "
            "it started, so a run can end a little over budget.",
            width="content",
        )
        st.metric(
            "Cost" if view.finished else "Cost so far",
            costs.dollars(cost.total if cost else None, simulated=bool(cost and cost.simulated)),
            help=markdown_escape(cost.describe()) if cost else "This run was recorded before costs were counted.",
            width="content",
        )
        st.metric("Time", f"{view.seconds:.0f} s" if view.seconds is not None else "–", width="content")
    scorer = view.scorer.label
    if view.judge:
        scorer = f"{SCORER_LABELS['llm_judge']} ({view.judge.model}{', simulated' if view.judge.simulated else ''})"
    who = f" · by {view.participant}" if view.participant else ""
    st.caption(
        markdown_escape(
            f"Prompt {view.baseline.uri} · dataset {info.dataset or '?'} · scorer {scorer} · "
            f"patience {view.patience or 'off'} · seed {view.seed}{who} · {analysis.how_it_ended(view)}"
        )
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
                query_params={"run": info.run_id},
            )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def selected_candidate(view: analysis.RunView) -> int:
    chosen = st.session_state.get("results.candidate")
    return chosen if isinstance(chosen, int) and 0 <= chosen < len(view.candidates) else view.best_candidate


def render_candidates(view: analysis.RunView, uri: str, info: Any) -> None:
    axis = st.radio(
        "X axis",
        ["iteration", "metric_calls"],
        horizontal=True,
        key="results.x",
        format_func={"iteration": "Iteration", "metric_calls": "Metric calls used"}.get,
    )
    current = selected_candidate(view)
    until = None
    if view.last_iteration > 1:
        until = st.slider(
            "Show the run up to iteration",
            0,
            view.last_iteration,
            view.last_iteration,
            key="results.until",
            help="The front markers show the Pareto front as it was then.",
        )
    event = st.plotly_chart(
        charts.candidates_figure(view, x=axis, selected=current, at_iteration=until),
        width="stretch",
        key="results.candidates_chart",
        on_select="rerun",
        selection_mode="points",
    )
    clicked = charts.clicked_candidate(event)
    if clicked is not None and clicked != current:
        st.session_state["results.candidate"] = clicked
        st.rerun()
    render_validation_test(view)
    indices = list(range(len(view.candidates)))
    chosen = st.selectbox("Candidate", indices, index=current, format_func=lambda i: analysis.candidate_label(view, i))
    st.session_state["results.candidate"] = chosen
    render_candidate_detail(view, chosen)
    render_register(view, chosen, uri, info)


def render_validation_test(view: analysis.RunView) -> None:
    """Each candidate's validation score against its test score, when every candidate was scored on
    the test set, with one line on where the two part ways; otherwise one line saying why not."""
    table = analysis.validation_vs_test(view)
    if table is None:
        if view.test_examples and view.finished is not None:
            st.caption(
                "Only the baseline and the best were scored on the test set (the final evaluation), so "
                "validation and test cannot be compared candidate by candidate. Scoring every candidate on "
                "the test set is an option of the run (on by default for the offline model)."
            )
        return
    st.plotly_chart(charts.validation_test_figure(table), width="stretch", key="results.validation_test")
    st.markdown(markdown_escape(analysis.divergence_line(table)))
    with st.expander("Validation and test per candidate, as a table"):
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                name: st.column_config.NumberColumn(format="percent") for name in ("validation", "test", "gap")
            }
            | {
                "chance": st.column_config.NumberColumn(
                    "± chance",
                    format="percent",
                    help="A gap two independent samples of these sizes exceed about one time in twenty.",
                ),
                "best": st.column_config.CheckboxColumn("run's pick"),
            },
        )


def render_candidate_detail(view: analysis.RunView, index: int) -> None:
    candidate = view.candidates[index]
    st.code(candidate.template, language=None, wrap_lines=True)
    parents = ", ".join(str(p) for p in candidate.parents) or "none (the baseline)"
    found = "the baseline" if index == 0 else f"found in iteration {candidate.iteration}"
    st.caption(f"Parents: {parents} · {found}, after {candidate.metric_calls} metric calls")
    comparisons = [("its parent", candidate.parents[0])] if candidate.parents else []
    if index != 0:
        comparisons.append(("the baseline", 0))
    for label, other in comparisons:
        st.markdown(f"**Word diff against {label} (candidate {other})**: added in bold, removed struck through")
        with st.container(border=True):
            st.markdown(diff_markdown(word_diff(view.candidates[other].template, candidate.template)))
    frame = analysis.compare_examples(view, candidate=index, against=0)
    st.markdown(f"**Its results on the {len(frame)} validation examples** against the baseline")
    render_example_table(view, frame)


def render_example_table(view: analysis.RunView, frame: Any) -> None:
    """The per-example table, sized to read on a 1024 px projector: the input first, each ✓ next to
    its output, long texts wrapped over three lines."""
    st.caption(markdown_escape(analysis.mark_meaning(view.scorer)))
    label = analysis.input_label(view)
    table = analysis.example_table(frame, with_scores=view.scorer.kind != "exact_match", input_label=label)
    text = st.column_config.TextColumn
    # About 530 px in all: within the main column of a 1024 px screen with the sidebar open.
    config = {
        "row": st.column_config.NumberColumn(width=36),
        label: text(width=136),
        "expected": text(width=86),
        "before": text(width=104),
        "after": text(width=104),
    } | {
        column: text("✓", width=30, alignment="center", help=f"{column}: ✓ right, ✗ wrong (or the partial score)")
        for column in analysis.EXAMPLE_MARK_COLUMNS
    }
    st.dataframe(table, hide_index=True, width="stretch", column_config=config, row_height=68)


def render_register(view: analysis.RunView, index: int, uri: str, info: Any) -> None:
    """Register a chosen candidate (the best of a stopped run, or one a user prefers)."""
    if index == 0 or view.is_live:
        return
    if index == view.best_candidate and view.registered:
        st.caption(markdown_escape(describe_registered(view.registered, this_run=view.run_id)))
        return
    registration.render_register_button(view, info, index, uri, key=f"results.register.{info.run_id}.{index}")


def render_front(view: analysis.RunView) -> None:
    st.plotly_chart(charts.front_timeline_figure(view), width="stretch", key="results.front")
    if not view.fronts:
        return
    iterations = sorted({f.iteration for f in view.fronts})
    when = iterations[-1]
    if len(iterations) > 1:
        when = st.select_slider("Explain the front after iteration", iterations, value=when, key="results.front_at")
    explained = analysis.explain_front(view, when)
    examples = view.val_examples
    st.markdown(
        f"**Why each member of the front after iteration {when} is kept**: the validation examples on which "
        "it has the top score among the candidates found so far, alone or tied with others"
    )
    reasons = list(explained.members)
    if len(reasons) > 20:
        st.caption(f"The {len(reasons)} members are listed 20 at a time, best first.")
        reasons = sorted(reasons, key=lambda r: -view.candidates[r.candidate].aggregate)[:20]

    def rows(positions: tuple[int, ...]) -> str:
        shown = ", ".join(str(examples[p].row) for p in positions[:30])
        return f" (rows {shown}{f' and {len(positions) - 30} more' if len(positions) > 30 else ''})"

    for reason in reasons:
        parts = []
        if reason.alone:
            parts.append(f"best alone on {counted(len(reason.alone), 'example')}{rows(reason.alone)}")
        if reason.tied:
            parts.append(f"tied for best on {counted(len(reason.tied), 'example')}{rows(reason.tied)}")
        said = "; ".join(parts) or (
            "the top score on no example, but no other candidate is at least as good on every example"
        )
        st.markdown(f"- **Candidate {reason.candidate}** ({view.candidates[reason.candidate].aggregate:.1%}): {said}")
    if explained.unsolved:
        st.caption(
            f"No candidate scores above 0 on {counted(len(explained.unsolved), 'example')}{rows(explained.unsolved)}. "
            "GEPA counts such a tie at 0 for every candidate, so those examples explain no one's place above."
        )


def render_matrix(view: analysis.RunView) -> None:
    order = st.radio(
        "Order examples by",
        ["difficulty", "index"],
        horizontal=True,
        key="results.matrix_order",
        format_func={"difficulty": "How many candidates solve them (hardest first)", "index": "Dataset order"}.get,
    )
    st.plotly_chart(charts.score_matrix_figure(view, order=order), width="stretch", key="results.matrix")


def test_scored(view: analysis.RunView) -> list[int]:
    """The candidates with scores on the test set (every one, or the baseline and the best)."""
    return [c.index for c in view.candidates if analysis.test_scores_of(view, c.index) is not None]


def render_split_choice(view: analysis.RunView) -> analysis.Split:
    """Validation or test examples, when the run scored a test set; validation otherwise."""
    if not view.test_examples or not test_scored(view):
        return "validation"
    sizes = {"validation": len(view.val_examples), "test": len(view.test_examples)}
    return (
        st.segmented_control(
            "Examples from",
            ["validation", "test"],
            default="validation",
            key="results.ex_split",
            format_func=lambda s: f"{s} ({sizes[s]})",
            help="Validation: the examples GEPA selected candidates by. Test: held out, never seen by the search.",
        )
        or "validation"
    )


def candidate_on(view: analysis.RunView, index: int, split: analysis.Split) -> str:
    """A candidate's picker label with its score on ``split`` (the validation one by default)."""
    label = analysis.candidate_label(view, index)
    scored = analysis.test_scores_of(view, index) if split == "test" else None
    return label if scored is None else f"{label.rsplit(' · ', 1)[0]} · test {scored.aggregate:.1%}"


def render_examples(view: analysis.RunView) -> None:
    if view.scorer.kind == "llm_judge":
        st.caption(
            "Each example below carries the judge's reason; where the judge and exact match disagree is in Cost."
        )
    split = render_split_choice(view)
    indices = list(range(len(view.candidates))) if split == "validation" else test_scored(view)
    best = view.best_candidate if view.best_candidate in indices else indices[-1]
    left, right = st.columns(2)
    candidate = left.selectbox(
        "Candidate",
        indices,
        index=indices.index(best),
        key=f"results.ex_candidate.{split}",
        format_func=lambda i: candidate_on(view, i, split),
    )
    against = right.selectbox(
        "Against",
        indices,
        index=0,
        key=f"results.ex_against.{split}",
        format_func=lambda i: candidate_on(view, i, split),
    )
    if split == "test" and len(indices) < len(view.candidates):
        st.caption(
            f"On the test set: the candidates scored there, {', '.join(map(str, indices))} "
            "(the baseline and the best, in the final evaluation)."
        )
    frame = analysis.compare_examples(view, candidate=candidate, against=against, splits=(split,))
    counts = analysis.category_counts(frame)
    with st.container(horizontal=True, gap="medium"):
        for category in analysis.CATEGORIES:
            st.metric(analysis.CATEGORY_MARKS[category], counts[category], width="content")
    chosen = st.multiselect(
        "Show",
        analysis.CATEGORIES,
        default=list(analysis.CATEGORIES),
        key="results.ex_filter",
        format_func=analysis.CATEGORY_MARKS.get,
    )
    text = st.text_input("Search inputs, expected answers and outputs", key="results.ex_search")
    shown = analysis.filter_examples(frame, chosen, text)
    st.caption(f"{len(shown)} of {len(frame)} {split} examples")
    render_example_table(view, shown)
    if len(shown) > EXAMPLES_IN_DETAIL:
        st.caption(
            f"In detail below: the first {EXAMPLES_IN_DETAIL} of these {len(shown)}. "
            "Narrow them with the filters or the search to see others."
        )
    reasons = {
        side: analysis.example_rationales(view, index, split)
        for side, index in (("against", against), ("candidate", candidate))
    }
    for _, row in shown.head(EXAMPLES_IN_DETAIL).iterrows():
        question = str(row["inputs"]).splitlines()[-1] if row["inputs"] else ""
        question = question if len(question) <= 70 else question[:69] + "…"
        with st.expander(
            f"Row {row['row']} · {split} · {analysis.CATEGORY_MARKS[row['category']]} · "
            + markdown_escape(f"{question} · expected {row['expected']!r}")
        ):
            st.code(row["inputs"], language=None, wrap_lines=True)
            for side, label in (("against", f"candidate {against}"), ("candidate", f"candidate {candidate}")):
                mark = "✓" if row[f"{side}_correct"] else "✗"
                st.markdown(f"**{mark} {label}**: output vs expected (words to add in bold, to remove struck)")
                st.markdown(diff_markdown(word_diff(str(row[f"{side}_output"]), str(row["expected"]))))
                position = int(row["position"])
                if position < len(reasons[side]) and reasons[side][position]:
                    st.markdown(markdown_escape(f"The judge's reason: {reasons[side][position]}"))
                else:
                    st.caption(
                        markdown_escape(f"normalised: {row[f'{side}_normalized']!r} vs {row['expected_normalized']!r}")
                    )


def render_what_if(view: analysis.RunView, uri: str, runs: list[Any], info: Any) -> None:
    st.markdown(
        "**Where would this run have stopped, and how good would it have been?** "
        "Replayed from the recording: no model calls."
    )
    table = analysis.what_if(view, *analysis.what_if_grid(view))
    st.plotly_chart(charts.what_if_figure(table), width="stretch", key="results.what_if")
    on_test = analysis.what_if_on_test(view, table)
    if on_test is not None:
        st.markdown(
            f"**The same stops on the test set** ({counted(len(view.test_examples), 'example')}, never seen by the "
            "search): the candidate each stop ends with, scored on new questions."
        )
        st.plotly_chart(charts.what_if_test_figure(on_test), width="stretch", key="results.what_if_test")
    with st.expander("As a table"):
        st.dataframe(on_test if on_test is not None else table, hide_index=True, width="stretch")
    others = [r for r in runs if r.run_id != info.run_id and r.status != "RUNNING"]
    from core.runs import run_labels

    # Named by their scores and what differs between them (scorer, budget, patience, seed, cost,
    # seconds...), so "exact match against the judge on the same data" is one comparison.
    named = run_labels([info, *others])
    labels = {r.run_id: f"{named[r.run_id]} ({r.run_id[:6]})" for r in others}
    chosen = st.multiselect("Compare with other runs", list(labels), format_func=labels.get, key="results.compare")
    curves = {f"this run: {named[info.run_id]}": analysis.run_curve(view)}
    for run_id in chosen:
        try:
            curves[labels[run_id]] = analysis.run_curve(analysis.build_run_view(data.finished_events(uri, run_id)))
        except Exception as error:  # noqa: BLE001 - one unreadable run must not hide the others
            st.warning(f"{labels[run_id]}: {shell.one_line(error)}")
    st.plotly_chart(charts.compare_runs_figure(curves), width="stretch", key="results.compare_chart")
    render_group_comparison(uri, runs, info)


def render_seeds(uri: str, runs: list[Any], group: str) -> None:
    """The seeds of a group: each one's final validation and test score, their mean and spread, and
    every seed's best-so-far curve on one chart. Like :func:`ui.groups.render_group_summary`, with a
    table narrow enough for a 1024 px screen (the baselines, the same prompt on the same rows in every
    seed, are said once above it)."""
    views = group_views.views_of_group(uri, runs, group)
    if not views:
        st.info("None of this group's runs has recorded anything yet.")
        return
    table = groups.group_table(views)
    sizes = {"validation": len(views[0].val_examples), "test": len(views[0].test_examples)}
    lines = []
    for split in ("validation", "test"):
        after, before = (
            groups.spread(list(table[f"{split} after"].dropna())),
            groups.spread(list(table[f"{split} before"].dropna())),
        )
        if after.n:
            lines.append(
                f"- **{split.capitalize()} ({counted(sizes[split], 'example')})**, best candidate over "
                f"{counted(after.n, 'seed')}: mean {after.mean:.1%}, standard deviation {after.std:.1%} "
                f"(the baseline: mean {before.mean:.1%})"
            )
    st.markdown("\n".join(lines))
    percent = st.column_config.NumberColumn
    st.dataframe(
        table[["seed", "validation after", "test after", "iterations", "metric calls", "stopped by"]],
        hide_index=True,
        width="stretch",
        column_config={
            "seed": st.column_config.NumberColumn(width=44),
            "validation after": percent("validation", format="percent", width=84),
            "test after": percent("test", format="percent", width=70),
            "iterations": st.column_config.NumberColumn(width=70),
            "metric calls": st.column_config.NumberColumn(width=90),
            "stopped by": st.column_config.TextColumn(width=90),
        },
    )
    group_views.render_group_charts(views)


def group_label(members: list[Any]) -> str:
    """A group of seeds by what its runs share: how many, budget, patience, scorer, and who ran it."""
    first = members[0]
    parts = [counted(len(members), "seed"), f"budget {first.params.get('budget', '?')}"]
    parts.append(f"patience {first.params.get('patience') or 'off'}")
    parts.append(first.scorer or first.params.get("scorer", ""))
    if first.participant:
        parts.append(f"by {first.participant}")
    return " · ".join(part for part in parts if part) + f" ({first.group})"


def render_group_comparison(uri: str, runs: list[Any], info: Any) -> None:
    """Groups of seeds side by side: each one's mean best-so-far curve inside its lowest-to-highest
    band, and its final scores' mean and spread."""
    members: dict[str, list[Any]] = {}
    for run in runs:
        if run.group and run.status != "RUNNING":
            members.setdefault(run.group, []).append(run)
    if not members:
        return
    st.markdown(
        "**Compare groups of seeds**: a distribution per setting, not one lucky run. Each group's mean "
        "best-so-far line sits inside the band from its lowest to its highest seed."
    )
    labels = {group: group_label(found) for group, found in members.items()}
    chosen = st.multiselect(
        "Groups",
        list(labels),
        default=[info.group] if info.group in labels else [],
        format_func=labels.get,
        key="results.compare_groups",
    )
    bands, rows = {}, []
    for group in chosen:
        views = group_views.views_of_group(uri, runs, group)
        if not views:
            continue
        bands[labels[group]] = analysis.curve_band([analysis.run_curve(view) for view in views])
        table = groups.group_table(views)
        validation, test = (
            groups.spread(list(table[column].dropna())) for column in ("validation after", "test after")
        )
        rows.append(
            {
                "group": labels[group],
                "seeds": len(views),
                "validation mean": validation.mean,
                "validation std": validation.std,
                "test mean": test.mean,
                "test std": test.std,
            }
        )
    st.plotly_chart(charts.compare_groups_figure(bands), width="stretch", key="results.compare_groups_chart")
    if rows:
        percent = st.column_config.NumberColumn(format="percent")
        st.dataframe(
            rows,
            hide_index=True,
            width="stretch",
            column_config={name: percent for name in ("validation mean", "validation std", "test mean", "test std")},
        )


def render_cost(view: analysis.RunView) -> None:
    """What the run spent: dollars over metric calls, tokens and calls per model role, and the
    estimate made before it against what it spent."""
    if view.usage is None:
        st.info(
            "This run was recorded before model calls were counted: it has no tokens or cost to show.",
            icon=":material/info:",
        )
        return
    cost = view.cost
    st.markdown(
        f"**Cost{'' if view.finished else ' so far'}**: {markdown_escape(cost.describe()) if cost else 'unknown'}"
    )
    st.plotly_chart(charts.cost_figure(view), width="stretch", key="results.cost")
    costs.render_usage_table(view)
    costs.render_estimate_vs_actual(view)
    if view.scorer.kind == "llm_judge":
        st.markdown("**What the judge bought: where it and exact match agree**")
        costs.render_agreement(view)


def render_export(view: analysis.RunView, info: Any) -> None:
    best = view.candidates[view.best_candidate]
    st.download_button(
        "The whole run (JSON, for notebooks and other tools)",
        lambda: json.dumps(export_run(view, run_id=info.run_id).to_dict(), ensure_ascii=False, indent=1),
        file_name=f"{info.run_id}-run.json",
        mime="application/json",
        on_click="ignore",
        help="Settings, summary, examples and splits, every candidate with its scores, and every proposal with "
        "what the reflection model was shown. Schema in the README; python -m core export writes the same file.",
    )
    st.download_button(
        "Per-example results (CSV, with a split column)",
        lambda: analysis.examples_export(view).to_csv(index=False),
        file_name=f"{info.run_id}-examples.csv",
        mime="text/csv",
        on_click="ignore",
    )
    st.download_button(
        f"Best prompt, candidate {best.index} (text)",
        best.template,
        file_name=f"{info.run_id}-candidate-{best.index}.txt",
        mime="text/plain",
        on_click="ignore",
    )
    figures = charts.page_figures(view, info.run_id[:8])
    st.caption(
        "Charts as standalone HTML files, drawn as here. Each file embeds plotly.js (about 5 MB), so it "
        "opens offline in any browser, without this app:"
    )
    with st.container(horizontal=True):  # as wide as their names, wrapping on a narrow screen
        for name, build in figures.items():
            st.download_button(
                f"{name}.html",
                lambda build=build: charts.figure_html(build()),
                file_name=f"{info.run_id}-{name}.html",
                mime="text/html",
                on_click="ignore",
                width="content",
            )


def render_proposal(proposal: Any, view: analysis.RunView) -> None:
    """One iteration as an expander: its outcome, parent and minibatch scores in the title; the
    reason, what the reflection model was shown, the whole proposed prompt and its reply inside."""
    from ui import replay

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
        replay.render_shown(view, proposal)
        if proposal.template:
            st.caption("Proposed prompt")
            st.code(proposal.template, language=None, wrap_lines=True)
        if proposal.reflection:
            st.caption("The reflection model's reply")
            st.code(proposal.reflection, language=None, wrap_lines=True)


def render_proposals(view: analysis.RunView) -> None:
    """Every iteration of the run, filterable by outcome, each expandable."""
    counts = analysis.outcome_counts(view)
    present = [outcome for outcome, count in counts.items() if count]
    if not present:
        st.info("This run made no proposal: it ended before its first iteration.", icon=":material/info:")
        return
    chosen = st.multiselect(
        "Show",
        present,
        default=present,
        key="results.proposal_filter",
        format_func=lambda o: f"{analysis.OUTCOME_LABELS[o]} ({counts[o]})",
    )
    shown = analysis.proposals_with(view, chosen)
    st.caption(f"{len(shown)} of {counted(len(view.proposals), 'iteration')}, in order; open one for why it ended so.")
    if len(shown) > PROPOSALS_SHOWN:
        st.caption(f"The first {PROPOSALS_SHOWN} are listed: narrow them with the filter to see others.")
    for proposal in shown[:PROPOSALS_SHOWN]:
        render_proposal(proposal, view)
