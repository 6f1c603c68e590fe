"""Plotly figures of a run: pure functions from a :class:`~core.analysis.RunView` (or a table built
from one) to a ``plotly.graph_objects.Figure``. No Streamlit; the pages only display what they get.

What every figure promises:

* a title, axis titles, and a legend when it has several traces;
* pass/fail and Pareto-front membership carried by marker symbols or cell text, never by colour alone;
* model and user text only in hover text, as plain text: first lines, truncated, with ``&``, ``<``
  and ``>`` escaped so Plotly cannot read it as markup;
* ``customdata`` on candidate points: ``[candidate index, iteration]`` (index None for a rejected
  proposal), so a click or selection maps back to a candidate.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import plotly.graph_objects as go

from core.analysis import (
    Candidate,
    CurveBand,
    RunView,
    XAxis,
    best_so_far,
    front_members_at,
    lineage,
    run_curve,
    score_matrix,
    what_if,
    what_if_grid,
)
from core.summary import counted

if TYPE_CHECKING:
    import pandas as pd

FRONT_TRACE = "On the Pareto front"
CANDIDATE_TRACE = "Candidate (not on the front)"
BEST_LINE_TRACE = "Best validation score so far"
REJECTED_TRACE = "Rejected proposal (minibatch score)"
SELECTED_TRACE = "Selected candidate"
BEST_TRACE = "Best candidate"
MERGE_TRACE = "Merge of two parents"
EDGE_TRACE = "Parent → child"
MERGE_EDGE_TRACE = "Merge (second parent)"
# Up to this many rows and columns, heatmap cells also carry their verdict as text.
CELL_TEXT_LIMIT = 60
# Up to this many candidates, the lineage tree writes candidate numbers next to the nodes.
NODE_LABEL_LIMIT = 60
LIVE_HEIGHT = 280
RUN_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")
RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
PASS_FAIL_COLORS = [[0.0, "#d73027"], [0.5, "#f7f7f7"], [1.0, "#4575b4"]]

_X_TITLES = {"iteration": "Iteration", "metric_calls": "Metric calls used (budget spent)"}


def plain(text: str, *, lines: int = 3, width: int = 80) -> str:
    """Model or user text made safe for Plotly hover text: its first non-empty ``lines``, each cut to
    ``width`` characters, escaped, joined with ``<br>``."""
    rows = [row.strip() for row in str(text).splitlines() if row.strip()]
    shown = [row if len(row) <= width else row[: width - 1] + "…" for row in rows[:lines]]
    if len(rows) > lines:
        shown.append(f"… ({len(rows) - lines} more lines)")
    return "<br>".join(html.escape(row, quote=False) for row in shown)


def _parents_text(candidate: Candidate) -> str:
    if not candidate.parents:
        return "none (the baseline)"
    if len(candidate.parents) > 1:
        return " and ".join(str(p) for p in candidate.parents) + " (a merge)"
    return str(candidate.parents[0])


def _candidate_hover(candidate: Candidate, front: set[int]) -> str:
    status = "on the Pareto front" if candidate.index in front else "not on the Pareto front"
    right = sum(1 for s in candidate.scores if s == 1.0)
    found = "the baseline" if candidate.index == 0 else f"found in iteration {candidate.iteration}"
    failed = f"<br>{counted(candidate.failed, 'failed model call')}" if candidate.failed else ""
    return (
        f"<b>Candidate {candidate.index}</b> ({status})"
        f"<br>Validation score: {candidate.aggregate:.3f} ({right} of {len(candidate.scores)} fully right)"
        f"<br>Parents: {_parents_text(candidate)}"
        f"<br>{found.capitalize()}, after {candidate.metric_calls} metric calls{failed}"
        f"<br>Prompt:<br>{plain(candidate.template)}"
    )


def _candidate_markers(
    name: str,
    symbol: str,
    size: int,
    group: Sequence[Candidate],
    points: Sequence[tuple[Any, float]],
    front: set[int],
    *,
    labels: bool = False,
) -> go.Scatter:
    """One marker trace of candidates at ``points``, with their ids as ``customdata`` and a hover card."""
    return go.Scatter(
        x=[px for px, _ in points],
        y=[py for _, py in points],
        mode="markers+text" if labels else "markers",
        text=[str(c.index) for c in group] if labels else None,
        textposition="top center",
        name=name,
        marker={"symbol": symbol, "size": size, "line": {"width": 1, "color": "#333"}},
        customdata=_ids(group),
        hovertext=[_candidate_hover(c, front) for c in group],
        hoverinfo="text",
    )


def _ids(candidates: Sequence[Candidate]) -> np.ndarray:
    """``customdata`` rows ``[candidate index, iteration]`` (numpy: Plotly validates it in one go)."""
    return np.array([(c.index, c.iteration) for c in candidates], dtype=np.int64).reshape(-1, 2)


def _x_of(candidate: Candidate, x: XAxis) -> int:
    return candidate.iteration if x == "iteration" else candidate.metric_calls


def _best_line(steps: Sequence[tuple[int, float, int]], name: str, line: dict | None = None) -> go.Scatter:
    """The best-so-far step line of :func:`core.analysis.best_so_far` points."""
    return go.Scatter(
        x=[at for at, _, _ in steps],
        y=[score for _, score, _ in steps],
        mode="lines",
        line_shape="hv",
        line=line,
        name=name,
        hovertext=[f"Best so far: candidate {best}, validation score {score:.3f}" for _, score, best in steps],
        hoverinfo="text",
    )


def _integer_ticks(largest: int | None) -> dict[str, object]:
    """Axis settings that keep a short count axis (iterations, candidates) on whole numbers."""
    return {"dtick": 1} if largest is not None and largest <= 12 else {}


def _empty_note(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def candidates_figure(
    view: RunView, x: XAxis = "iteration", selected: int | None = None, *, at_iteration: int | None = None
) -> go.Figure:
    """Every validated candidate at (iteration or metric calls, validation score).

    Candidates on the front (as of ``at_iteration``, default the latest) are the trace
    :data:`FRONT_TRACE` (diamonds), the others :data:`CANDIDATE_TRACE` (circles); the best score so
    far is a step line; rejected proposals sit at their minibatch score (:data:`REJECTED_TRACE`,
    crosses). ``selected`` adds a ring (:data:`SELECTED_TRACE`). With ``at_iteration`` only what
    happened up to that iteration is drawn. Points carry ``customdata`` ``[candidate, iteration]``;
    for rejected proposals ``candidate`` is None.
    """
    upto = view.last_iteration if at_iteration is None else at_iteration
    shown = [c for c in view.candidates if c.iteration <= upto]
    front = set(front_members_at(view, upto))
    fig = go.Figure()
    for name, symbol, size, group in (
        (CANDIDATE_TRACE, "circle", 9, [c for c in shown if c.index not in front]),
        (FRONT_TRACE, "diamond", 13, [c for c in shown if c.index in front]),
    ):
        points = [(_x_of(c, x), c.aggregate) for c in group]
        fig.add_trace(_candidate_markers(name, symbol, size, group, points, front))
    fig.add_trace(
        _best_line(best_so_far(view, x, upto_iteration=at_iteration), BEST_LINE_TRACE, {"dash": "dot", "width": 2})
    )
    rejected = [p for p in view.proposals if p.outcome == "rejected" and p.scores_after and p.iteration <= upto]
    fig.add_trace(
        go.Scatter(
            x=[p.iteration if x == "iteration" else p.metric_calls for p in rejected],
            y=[p.minibatch_score for p in rejected],
            mode="markers",
            name=REJECTED_TRACE,
            marker={"symbol": "x-thin-open", "size": 9, "line": {"width": 2}},
            customdata=[[None, p.iteration] for p in rejected],
            hovertext=[
                f"<b>Rejected proposal</b> (iteration {p.iteration}, from candidate {p.parent})"
                f"<br>Minibatch score: {p.minibatch_score:.2f}"
                f" (its parent: {sum(p.scores_before) / max(len(p.scores_before), 1):.2f}"
                f" on the same {len(p.scores_after)} examples)"
                f"<br>Not scored on the validation set: {plain(p.reason, lines=1)}"
                f"<br>Proposed prompt:<br>{plain(p.template or '')}"
                for p in rejected
            ],
            hoverinfo="text",
        )
    )
    if selected is not None and 0 <= selected < len(view.candidates) and view.candidates[selected].iteration <= upto:
        chosen = view.candidates[selected]
        fig.add_trace(
            go.Scatter(
                x=[_x_of(chosen, x)],
                y=[chosen.aggregate],
                mode="markers+text",
                text=[f"selected: {chosen.index}"],
                textposition="top center",
                name=SELECTED_TRACE,
                marker={"symbol": "circle-open", "size": 24, "line": {"width": 3}},
                customdata=_ids([chosen]),
                hovertext=[_candidate_hover(chosen, front)],
                hoverinfo="text",
            )
        )
    by = "iteration" if x == "iteration" else "metric calls used"
    fig.update_layout(
        title=f"Candidates by validation score, by {by}",
        xaxis_title=_X_TITLES[x],
        yaxis_title=f"Validation score ({view.scorer.label})",
        yaxis_range=[-0.05, 1.05],
        xaxis=_integer_ticks(view.last_iteration if x == "iteration" else None),
        clickmode="event+select",
        hovermode="closest",
    )
    if not shown:
        _empty_note(fig, "No candidate has been scored on the validation set yet.")
    return fig


WEBGL_THRESHOLD = 5000


def front_timeline_figure(view: RunView) -> go.Figure:
    """Which candidates were on the Pareto front after each validation: rows are candidates, columns
    the iterations that validated something. Membership is a square (:data:`FRONT_TRACE`); an open
    circle marks where a candidate was validated and a cross where it left the front."""
    snapshots = {s.iteration: s for s in view.fronts}  # the last snapshot of each iteration
    columns = sorted(snapshots)
    count = len(view.candidates)
    member = np.zeros((len(columns), count), dtype=bool)
    for row, iteration in enumerate(columns):
        member[row, list(snapshots[iteration].members)] = True
    iterations = np.array(columns, dtype=np.int64)
    sizes = member.sum(axis=1)
    rows, cands = np.nonzero(member)
    left_rows, left_cands = np.nonzero(member[:-1] & ~member[1:]) if len(columns) > 1 else ([], [])
    # Past a few thousand marks SVG drawing stalls the browser; WebGL keeps a 300-candidate run usable.
    scatter = go.Scattergl if len(rows) > WEBGL_THRESHOLD else go.Scatter
    fig = go.Figure()
    fig.add_trace(
        scatter(
            x=iterations[rows],
            y=cands,
            mode="markers",
            name=FRONT_TRACE,
            marker={"symbol": "square", "size": 10},
            customdata=np.stack([cands, sizes[rows]], axis=1),
            hovertemplate="Candidate %{y} is on the Pareto front after iteration %{x}"
            "<br>Front size then: %{customdata[1]}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[c.iteration for c in view.candidates],
            y=[c.index for c in view.candidates],
            mode="markers",
            name="Validated here",
            marker={"symbol": "circle-open", "size": 15, "line": {"width": 1.5}},
            customdata=_ids(view.candidates),
            hovertemplate="Candidate %{y} was scored on the validation set in iteration %{x}<extra></extra>",
        )
    )
    fig.add_trace(
        scatter(
            x=iterations[np.asarray(left_rows, dtype=np.int64) + 1],
            y=np.asarray(left_cands, dtype=np.int64),
            mode="markers",
            name="Left the front",
            marker={"symbol": "x-thin-open", "size": 10, "line": {"width": 2}},
            hovertemplate="Candidate %{y} left the Pareto front in iteration %{x}:"
            " a newer candidate dominates it<extra></extra>",
        )
    )
    fig.update_layout(
        title="Pareto front over time: which candidates were on it after each validation",
        xaxis_title="Iteration",
        yaxis_title="Candidate",
        xaxis=_integer_ticks(view.last_iteration),
        yaxis={"autorange": "reversed", **_integer_ticks(len(view.candidates) - 1)},
        hovermode="closest",
    )
    if not view.fronts:
        _empty_note(fig, "No candidate has been scored on the validation set yet.")
    return fig


def _tree_rows(view: RunView) -> dict[int, int]:
    """A row per candidate so that every subtree (by first parent) occupies consecutive rows."""
    children: dict[int, list[int]] = {}
    roots = []
    for candidate in view.candidates:
        parent = candidate.parents[0] if candidate.parents else None
        if parent is None or parent >= candidate.index:
            roots.append(candidate.index)
        else:
            children.setdefault(parent, []).append(candidate.index)
    rows: dict[int, int] = {}
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        rows[node] = len(rows)
        stack.extend(reversed(children.get(node, [])))
    return rows


def lineage_figure(view: RunView, x: Literal["iteration", "depth"] = "iteration") -> go.Figure:
    """The candidate tree: x is the iteration that found each candidate (or its depth), each subtree on
    consecutive rows; solid lines join parent and child, dotted lines a merge's second parent. The
    best candidate is a star (:data:`BEST_TRACE`), other current front members diamonds
    (:data:`FRONT_TRACE`), merges hexagons. Nodes carry ``customdata`` ``[candidate, iteration]``."""
    edges, depth = lineage(view)
    rows = _tree_rows(view)
    by_index = {c.index: c for c in view.candidates}

    def at(index: int) -> tuple[int, int]:
        return (by_index[index].iteration if x == "iteration" else depth[index]), rows[index]

    fig = go.Figure()
    for name, dash, wanted in ((EDGE_TRACE, "solid", True), (MERGE_EDGE_TRACE, "dot", False)):
        xs: list[int | None] = []
        ys: list[int | None] = []
        for parent, child in edges:
            first = by_index[child].parents[0] == parent
            if first == wanted and parent in by_index:
                (px, py), (cx, cy) = at(parent), at(child)
                xs += [px, cx, None]
                ys += [py, cy, None]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", name=name, line={"dash": dash, "width": 1.2}, hoverinfo="skip")
        )
    front = set(view.current_front)
    best = view.best_candidate if view.candidates else None

    def group_of(candidate: Candidate) -> str:
        if candidate.index == best:
            return BEST_TRACE
        if candidate.index in front:
            return FRONT_TRACE
        if len(candidate.parents) > 1:
            return MERGE_TRACE
        return "Candidate"

    labels = len(view.candidates) <= NODE_LABEL_LIMIT
    for name, symbol, size in (
        ("Candidate", "circle", 9),
        (MERGE_TRACE, "hexagon", 12),
        (FRONT_TRACE, "diamond", 13),
        (BEST_TRACE, "star", 18),
    ):
        group = [c for c in view.candidates if group_of(c) == name]
        points = [at(c.index) for c in group]
        fig.add_trace(_candidate_markers(name, symbol, size, group, points, front, labels=labels))
    fig.update_layout(
        title="Candidate lineage: which prompt each candidate was proposed from",
        xaxis_title="Iteration that found the candidate" if x == "iteration" else "Depth (proposals from the baseline)",
        yaxis_title="Candidates, one branch after another",
        xaxis=_integer_ticks(view.last_iteration if x == "iteration" else max(depth.values(), default=0)),
        yaxis={"showticklabels": False, "autorange": "reversed", "zeroline": False},
        hovermode="closest",
    )
    if not view.candidates:
        _empty_note(fig, "No candidate has been scored on the validation set yet.")
    return fig


def _verdict(score: float) -> str:
    if score == 1.0:
        return "✓"
    if score == 0.0:
        return "✗"
    return f"{score:.2f}"


def score_matrix_figure(view: RunView, order: Literal["index", "difficulty"] = "difficulty") -> go.Figure:
    """Heatmap of every candidate's score on every validation example (rows candidates, columns
    example positions, hardest first with ``order="difficulty"``). Up to :data:`CELL_TEXT_LIMIT` rows
    and columns each cell also reads ✓ (1.0), ✗ (0.0) or the score; bigger matrices rely on hover."""
    matrix, positions, candidates = score_matrix(view, order)
    small = matrix.shape[0] <= CELL_TEXT_LIMIT and matrix.shape[1] <= CELL_TEXT_LIMIT
    text = [[_verdict(s) for s in row] for row in matrix.tolist()] if small else None
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=[str(view.val_examples[p].row) for p in positions],
            y=[str(c) for c in candidates],
            zmin=0.0,
            zmax=1.0,
            colorscale=PASS_FAIL_COLORS,
            text=text,
            texttemplate="%{text}" if small else None,
            xgap=1 if small else 0,
            ygap=1 if small else 0,
            colorbar={
                "title": {"text": view.scorer.label, "side": "right"},
                "tickvals": [0, 1],
                "ticktext": ["0 ✗ wrong", "1 ✓ right"],
            },
            hovertemplate="Candidate %{y}<br>Dataset row %{x}<br>Score: %{z:.2f}<extra></extra>",
        )
    )
    ordered = "hardest first: fewest candidates solve it" if order == "difficulty" else "in validation order"
    fig.update_layout(
        title="Score of every candidate on every validation example"
        + ("" if small else " (hover a cell for its score)"),
        xaxis={"title": {"text": f"Validation example (dataset row, {ordered})"}, "type": "category"},
        yaxis={"title": {"text": "Candidate"}, "type": "category", "autorange": "reversed"},
    )
    return fig


def _patience_label(patience: object) -> str:
    return "off" if patience is None or patience != patience or not patience else str(int(patience))


def _stop_heatmap(
    table: pd.DataFrame,
    value: Callable[[Any], float],
    text: Callable[[Any], str],
    hover: Callable[[Any], str],
    colorbar: str,
    title: dict[str, Any],
) -> go.Figure:
    """A what-if heatmap: budget across, patience down (off first), one cell per row of ``table``
    with ``value(row)``, ``text(row)`` written in it and ``hover(row)`` on hover."""
    budgets = sorted({int(b) for b in table["budget"]})
    labels = {_patience_label(p): (0 if _patience_label(p) == "off" else int(p)) for p in table["patience"]}
    patiences = sorted(labels, key=labels.__getitem__)
    z = np.full((len(patiences), len(budgets)), np.nan)
    texts = [["" for _ in budgets] for _ in patiences]
    hovers = [["" for _ in budgets] for _ in patiences]
    for row in table.itertuples(index=False):
        i, j = patiences.index(_patience_label(row.patience)), budgets.index(int(row.budget))
        z[i, j], texts[i][j], hovers[i][j] = value(row), text(row), hover(row)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(b) for b in budgets],
            y=patiences,
            text=texts,
            texttemplate="%{text}",
            hovertext=hovers,
            hoverinfo="text",
            colorscale="Viridis",
            zmin=0.0,
            zmax=1.0,
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": colorbar, "side": "right"}},
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": {"text": "Budget (metric calls)"}, "type": "category"},
        yaxis={
            "title": {"text": "Patience (iterations without a better score)"},
            "type": "category",
            "autorange": "reversed",
        },
        margin={"t": 90},
    )
    return fig


def what_if_figure(table: pd.DataFrame) -> go.Figure:
    """Heatmap of :func:`core.analysis.what_if`: budget across, patience down, cell = best validation
    score the replay would end with. A cell marked * asks for more than was recorded (the recorded run
    ended first), so it shows the recorded outcome."""

    def hover(row: Any) -> str:
        note = "<br>* The recorded run ended first: this is what was recorded." if row.beyond_recording else ""
        return (
            f"Budget {row.budget} metric calls, patience {_patience_label(row.patience)}"
            f"<br>Stops by: {row.stopped_by}, after {row.iterations} iterations and {row.metric_calls} metric calls"
            f"<br>Best: candidate {row.best_candidate}, validation score {row.best_score:.3f}{note}"
        )

    beyond = bool(table["beyond_recording"].any()) if len(table) else False
    note = "* the recorded run ended before this stop, so the cell shows what was recorded" if beyond else ""
    return _stop_heatmap(
        table,
        lambda row: row.best_score,
        lambda row: f"{row.best_score:.3f}{'*' if row.beyond_recording else ''}",
        hover,
        "Best validation score",
        {"text": "What if: best validation score under other budgets and patiences", "subtitle": {"text": note}},
    )


def what_if_group_figure(table: pd.DataFrame) -> go.Figure:
    """Heatmap of :func:`core.groups.what_if_over_group`: budget across, patience down, cell = the mean
    best validation score over the group's runs, its text the lowest to highest."""
    budgets = sorted({int(b) for b in table["budget"]})
    labels = {_patience_label(p): (0 if _patience_label(p) == "off" else int(p)) for p in table["patience"]}
    patiences = sorted(labels, key=labels.__getitem__)
    z = np.full((len(patiences), len(budgets)), np.nan)
    text = [["" for _ in budgets] for _ in patiences]
    for row in table.itertuples(index=False):
        i, j = patiences.index(_patience_label(row.patience)), budgets.index(int(row.budget))
        z[i, j] = row.best_score
        text[i][j] = f"{row.best_score:.2f}<br>{row.lowest:.2f}–{row.highest:.2f}"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(b) for b in budgets],
            y=patiences,
            text=text,
            texttemplate="%{text}",
            hovertemplate="Budget %{x}, patience %{y}<br>Mean best validation score %{z:.3f}<extra></extra>",
            colorscale="Viridis",
            zmin=0.0,
            zmax=1.0,
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": "Mean best validation score", "side": "right"}},
        )
    )
    runs = int(table["runs"].max()) if len(table) else 0
    fig.update_layout(
        title={"text": f"What if, over {runs} seeds: mean (lowest–highest) best validation score"},
        xaxis={"title": {"text": "Budget (metric calls)"}, "type": "category"},
        yaxis={
            "title": {"text": "Patience (iterations without a better score)"},
            "type": "category",
            "autorange": "reversed",
        },
    )
    return fig


def compare_runs_figure(curves: Mapping[str, Sequence[tuple[int, float]]]) -> go.Figure:
    """One best-so-far step line per run label (from :func:`core.analysis.run_curve`), against metric
    calls. Runs differ by marker symbol and dash, not only colour."""
    fig = go.Figure()
    for number, (label, points) in enumerate(curves.items()):
        name = html.escape(str(label), quote=False)
        fig.add_trace(
            go.Scatter(
                x=[at for at, _ in points],
                y=[score for _, score in points],
                mode="lines+markers",
                line_shape="hv",
                name=name,
                line={"dash": RUN_DASHES[number % len(RUN_DASHES)]},
                marker={"symbol": RUN_SYMBOLS[number % len(RUN_SYMBOLS)], "size": 8},
                hovertext=[f"{name}<br>{at} metric calls: best validation score {score:.3f}" for at, score in points],
                hoverinfo="text",
            )
        )
    return _best_so_far_layout(
        fig,
        "Runs compared: best validation score so far, by budget spent",
        empty="Choose runs to compare." if not curves else None,
    )


def _best_so_far_layout(fig: go.Figure, title: str, *, empty: str | None) -> go.Figure:
    """The axes every best-so-far comparison shares (metric calls across, score 0 to 1 up), and
    ``empty``'s note when there is nothing to draw."""
    fig.update_layout(
        title=title,
        xaxis_title=_X_TITLES["metric_calls"],
        yaxis_title="Best validation score so far",
        yaxis_range=[-0.05, 1.05],
        hovermode="closest",
    )
    if empty:
        _empty_note(fig, empty)
    return fig


CLASS_BEST_OUTLINE = "#31333f"
CLASS_KEY_COLOR = "#8a8f98"
CLASS_NO_NAME_COLOR = "#6b7079"
# Saturated and distinct on white (plotly's Dark24), so thirty participants stay told apart by hover,
# not by a pale tint; the pale half of the app's own colourway would vanish on a projector.
CLASS_COLORS = (
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100", "#750D86",
    "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE",
    "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038",
)  # fmt: skip
PARTICIPANT_GROUP = "participant:"  # + the name: a participant's points and their legend entry


def _shown(value: object, form: str = "{}") -> str:
    """A table cell as hover text: '?' for a missing one (None, NaN or pandas' NA)."""
    import pandas as pd

    return "?" if pd.isna(value) else form.format(value)  # type: ignore[call-overload]


def _patience_key(patience: object) -> str:
    return f"patience {_shown(patience)}"


def _class_hover(row: Mapping[str, Any]) -> str:
    test = "" if _shown(row["test"]) == "?" else f", test {row['test']:.0%}"
    best = f"<br>best of {plain(row['participant'])}'s runs" if row["best of participant"] else ""
    return (
        f"{plain(row['participant'])} · {plain(row['run'], lines=1)} (run {plain(row['run id'][:8])})<br>"
        f"best validation {row['best validation']:.0%}{test}<br>"
        f"{row['metric calls']} metric calls of budget {_shown(row['budget'])}, {_patience_key(row['patience'])}, "
        f"seed {_shown(row['seed'])}<br>{plain(row['scorer'], lines=1)} · {row['status']}{best}"
    )


def class_scatter_figure(table: pd.DataFrame) -> go.Figure:
    """The class's runs on one dataset (a :func:`core.participants.class_table`): best validation score
    against metric calls used, one point per scored run. A colour per participant and a marker symbol
    per patience; the legend keys each apart (a coloured line per participant, in legend group
    :data:`PARTICIPANT_GROUP` + name with their points, so a click hides them; a grey marker per
    patience, group ``patience``). Each participant's best run is drawn larger and outlined.
    ``customdata`` is the run id; hover text names the participant and the run."""
    scored = table[table["best validation"].notna() & table["metric calls"].notna()]
    patiences = sorted({_patience_key(p) for p in scored["patience"]}, key=lambda k: (k == "patience ?", len(k), k))
    symbol = {key: RUN_SYMBOLS[number % len(RUN_SYMBOLS)] for number, key in enumerate(patiences)}
    fig = go.Figure()
    names = sorted(set(scored["participant"]), key=lambda name: (name.startswith("("), name))
    for number, name in enumerate(names):
        rows = scored[scored["participant"] == name].to_dict("records")
        color = CLASS_NO_NAME_COLOR if name.startswith("(") else CLASS_COLORS[number % len(CLASS_COLORS)]
        label = html.escape(str(name), quote=False)
        fig.add_trace(
            go.Scatter(
                x=[int(row["metric calls"]) for row in rows],
                y=[float(row["best validation"]) for row in rows],
                mode="markers",
                name=label,
                legendgroup=PARTICIPANT_GROUP + name,
                showlegend=False,
                marker={
                    "symbol": [symbol[_patience_key(row["patience"])] for row in rows],
                    "size": [15 if row["best of participant"] else 11 for row in rows],
                    "color": color,
                    "line": {
                        "width": [2 if row["best of participant"] else 0 for row in rows],
                        "color": CLASS_BEST_OUTLINE,
                    },
                    "opacity": 0.9,
                },
                customdata=[row["run id"] for row in rows],
                hovertext=[_class_hover(row) for row in rows],
                hoverinfo="text",
            )
        )
        fig.add_trace(  # the legend entry: a line, which no patience's marker can be mistaken for
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=label,
                legendgroup=PARTICIPANT_GROUP + name,
                legendgrouptitle={"text": "Participant (colour)"} if number == 0 else None,
                line={"color": color, "width": 4},
                hoverinfo="skip",
            )
        )
    for key in patiences:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=key,
                legendgroup="patience",
                legendgrouptitle={"text": "Patience (marker)"} if key == patiences[0] else None,
                marker={"symbol": symbol[key], "size": 11, "color": CLASS_KEY_COLOR},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title={
            "text": "The class: best validation score against metric calls used",
            "subtitle": {"text": "One point per run; the larger, outlined point is each participant's best"},
        },
        xaxis={"title": {"text": "Metric calls used"}, "rangemode": "tozero"},
        yaxis={"title": {"text": "Best validation score"}, "tickformat": ".0%", "range": [-0.03, 1.03]},
        hovermode="closest",
        legend={"tracegroupgap": 2},
        margin={"t": 90},
        height=480,
    )
    if scored.empty:
        _empty_note(fig, "No run on this dataset has a score yet.")
    return fig


def live_scores_figure(view: RunView) -> go.Figure:
    """A small (:data:`LIVE_HEIGHT` px) chart for a running optimization: each validated candidate's
    score by iteration, the best so far, and the baseline's score as a dashed reference line."""
    fig = go.Figure()
    candidates = view.candidates
    fig.add_trace(
        go.Scatter(
            x=[c.iteration for c in candidates],
            y=[c.aggregate for c in candidates],
            mode="markers",
            name="Candidate",
            marker={"symbol": "circle", "size": 8},
            customdata=_ids(candidates),
            hovertext=[f"Candidate {c.index}, iteration {c.iteration}: {c.aggregate:.3f}" for c in candidates],
            hoverinfo="text",
        )
    )
    fig.add_trace(_best_line(best_so_far(view, "iteration"), "Best so far"))
    if candidates:
        baseline = candidates[0].aggregate
        end = max(view.last_iteration, 1)
        fig.add_trace(
            go.Scatter(
                x=[0, end],
                y=[baseline, baseline],
                mode="lines",
                name=f"Baseline ({baseline:.3f})",
                line={"dash": "dash", "width": 1.5, "color": "#666"},
                hovertext=[f"Baseline (candidate 0): {baseline:.3f}"] * 2,
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title="Validation scores so far",
        height=LIVE_HEIGHT,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        xaxis_title="Iteration",
        xaxis=_integer_ticks(view.last_iteration),
        yaxis_title="Validation score",
        yaxis_range=[-0.05, 1.05],
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
    )
    if not candidates:
        _empty_note(fig, "Waiting for the baseline's validation score…")
    return fig


def cost_figure(view: RunView) -> go.Figure:
    """Dollars spent against metric calls used (the budget), one point per usage update: what each part
    of the search cost. Unknown prices leave the line out and say so."""
    series = [(calls, cost) for calls, cost in view.cost_series() if cost is not None]
    fig = go.Figure(
        go.Scatter(
            x=[calls for calls, _ in series],
            y=[cost for _, cost in series],
            mode="lines+markers",
            line_shape="hv",
            name="Cost so far",
            hovertemplate="%{x} metric calls: $%{y:.4f} spent<extra></extra>",
        )
    )
    fig.update_layout(
        title="Cost so far, by budget spent",
        xaxis_title=_X_TITLES["metric_calls"],
        yaxis_title="Dollars (all model calls)",
        hovermode="closest",
    )
    if not series:
        known = view.usage_updates and view.cost is not None and view.cost.total is None
        _empty_note(fig, "A model used has no known price: give it in the sidebar." if known else "No cost recorded.")
    return fig


VALIDATION_TEST_TRACE = "Candidate"
CHOSEN_TRACE = "The run's pick (best on validation)"
EQUAL_TRACE = "Validation = test"


def validation_test_figure(table: pd.DataFrame) -> go.Figure:
    """Each candidate's validation score (across) against its test score (up), from
    :func:`core.analysis.validation_vs_test`, with the y = x line: a point below the line did better
    on the validation examples the search chose by than on new ones. The validation best is a star."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name=EQUAL_TRACE,
            line={"dash": "dash", "width": 1.5, "color": "#666"},
            hoverinfo="skip",
        )
    )
    # Candidates on the same spot share one label ("4, 5, 7"), written once, beside the run's pick if
    # it is one of them.
    at_spot: dict[tuple[float, float], list[int]] = {}
    for row in table.sort_values("best", ascending=False, kind="stable").itertuples():
        at_spot.setdefault((row.validation, row.test), []).append(int(row.candidate))
    labels = {spot[0]: ", ".join(map(str, sorted(spot))) for spot in at_spot.values()}
    for name, rows, symbol, size in (
        (VALIDATION_TEST_TRACE, table[~table["best"]], "circle", 10),
        (CHOSEN_TRACE, table[table["best"]], "star", 16),
    ):
        fig.add_trace(
            go.Scatter(
                x=list(rows["validation"]),
                y=list(rows["test"]),
                mode="markers+text" if len(table) <= NODE_LABEL_LIMIT else "markers",
                name=name,
                text=[labels.get(int(c), "") for c in rows["candidate"]],
                textposition="top center",
                marker={"symbol": symbol, "size": size},
                customdata=[[int(c), int(i)] for c, i in zip(rows["candidate"], rows["iteration"], strict=True)],
                hovertext=[
                    f"Candidate {int(r.candidate)} (iteration {int(r.iteration)})<br>validation {r.validation:.3f}, "
                    f"test {r.test:.3f}<br>gap {r.gap * 100:+.1f} points (chance at these sizes: ±{r.chance * 100:.0f})"
                    for r in rows.itertuples()
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title={
            "text": "Validation against test, per candidate",
            "subtitle": {"text": "below the dashed line: better on the examples GEPA chose by than on new ones"},
        },
        xaxis={"title": {"text": "Validation score (the search saw these)"}, "range": [-0.05, 1.05]},
        yaxis={"title": {"text": "Test score (held out)"}, "range": [-0.05, 1.05]},
        hovermode="closest",
        margin={"t": 90},
    )
    return fig


def what_if_test_figure(table: pd.DataFrame) -> go.Figure:
    """Heatmap of :func:`core.analysis.what_if_on_test`: budget across, patience down, cell = the test
    score of the candidate each stop would have ended with, its validation score written beside it."""
    return _stop_heatmap(
        table,
        lambda row: row.test_score,
        lambda row: f"{row.test_score:.2f}{'*' if row.beyond_recording else ''}<br>val {row.best_score:.2f}",
        lambda row: (
            f"Budget {row.budget} metric calls, patience {_patience_label(row.patience)}"
            f"<br>Stops by: {row.stopped_by}, with candidate {row.best_candidate}"
            f"<br>Test score {row.test_score:.3f}, validation score {row.best_score:.3f}"
        ),
        "Test score",
        {
            "text": "What if, on the test set: where each stop would have landed",
            "subtitle": {"text": "each cell: the test score of the candidate it ends with, its validation score below"},
        },
    )


def compare_groups_figure(bands: Mapping[str, CurveBand]) -> go.Figure:
    """One mean best-so-far line per group of seeds (from :func:`core.analysis.curve_band`), against
    metric calls, inside a shaded band from its lowest to its highest run: distributions, not single
    runs. Groups differ by dash and marker symbol, not only colour."""
    fig = go.Figure()
    for number, (label, band) in enumerate(bands.items()):
        name = html.escape(str(label), quote=False)
        xs = list(band.metric_calls)
        fig.add_trace(
            go.Scatter(
                x=xs + xs[::-1],
                y=list(band.highest) + list(band.lowest)[::-1],
                fill="toself",
                line={"width": 0, "shape": "hv"},
                opacity=0.25,
                name=f"{name}: lowest to highest",
                legendgroup=name,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=list(band.mean),
                mode="lines+markers",
                line_shape="hv",
                name=f"{name}: mean",
                legendgroup=name,
                line={"dash": RUN_DASHES[number % len(RUN_DASHES)]},
                marker={"symbol": RUN_SYMBOLS[number % len(RUN_SYMBOLS)], "size": 7},
                hovertext=[
                    f"{name}<br>{x} metric calls: mean {m:.3f} over {n} runs (lowest {lo:.3f}, highest {hi:.3f})"
                    for x, m, lo, hi, n in zip(xs, band.mean, band.lowest, band.highest, band.runs, strict=True)
                ],
                hoverinfo="text",
            )
        )
    return _best_so_far_layout(
        fig,
        "Groups compared: mean best validation score so far, lowest to highest seed",
        empty="Choose groups to compare." if not bands else None,
    )


# The colours Streamlit's light theme draws traces in. In the app a figure carries Streamlit's plotly
# template, whose colours are placeholders ("#000001", "#000002", ...) that only its frontend replaces,
# so a file written from such a figure draws every trace black: the export gets these colours itself.
COLORWAY = (
    "#0068c9",
    "#83c9ff",
    "#ff2b2b",
    "#ffabab",
    "#29b09d",
    "#7defa1",
    "#ff8700",
    "#ffd16a",
    "#6d3fc0",
    "#d5dae5",
)
GRID_COLOR = "#e6eaf1"


def export_template() -> go.layout.Template:
    """The template of an exported chart: plotly's white one with the app's colours, grid and font."""
    import plotly.io as pio

    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.colorway = COLORWAY
    template.layout.font = {"family": '"Source Sans Pro", "Source Sans", sans-serif', "color": "#31333f"}
    for axis in (template.layout.xaxis, template.layout.yaxis):
        axis.gridcolor = GRID_COLOR
    return template


def figure_html(fig: go.Figure) -> str:
    """A standalone HTML page of ``fig`` that looks as in the app (:func:`export_template`), with
    plotly.js embedded (about 5 MB), so the file opens offline. (The embedded library mentions
    map-tile and CDN addresses it only uses for map traces, which we never draw.)"""
    exported = go.Figure(fig)
    exported.update_layout(template=export_template())
    return exported.to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False})


def page_figures(view: RunView, run_label: str) -> dict[str, Callable[[], go.Figure]]:
    """Every chart of the Results page by file-name stem, built on demand (for the HTML export)."""
    return {
        "candidates": lambda: candidates_figure(view),
        "pareto-front": lambda: front_timeline_figure(view),
        "lineage": lambda: lineage_figure(view),
        "score-matrix": lambda: score_matrix_figure(view),
        "what-if": lambda: what_if_figure(what_if(view, *what_if_grid(view))),
        "best-so-far": lambda: compare_runs_figure({run_label: run_curve(view)}),
    }


def clicked_candidate(selection: Any) -> int | None:
    """The candidate a user clicked in a chart built here, from the chart's selection event
    (points carry the candidate as the first ``customdata`` value); None for anything else."""
    try:
        points = selection.selection.points
    except AttributeError:
        return None
    for point in points:
        data = point.get("customdata")
        if isinstance(data, list | tuple) and data:
            data = data[0]
        if isinstance(data, int | float):
            return int(data)
    return None
