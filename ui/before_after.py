"""The before/after an instructor can defend: baseline against the best candidate on each split,
with its size, a paired significance test, a 95% interval and one sentence in plain words."""

from __future__ import annotations

import streamlit as st

from core import analysis
from core.templates import markdown_escape

SPLIT_NAMES = {"validation": "Validation", "test": "Test"}
SPLIT_ROLES = {
    "validation": "the examples GEPA selected candidates by",
    "test": "held out: never seen by the search",
}
METHODS = {
    "exact_mcnemar": "exact McNemar test on the examples that changed",
    "sign_flip": "paired sign-flip permutation test",
}


def render_before_after(view: analysis.RunView) -> None:
    """One row of metrics and one sentence per split the final evaluation scored; nothing before it."""
    comparisons = analysis.before_after(view)
    if not comparisons:
        return
    for split, comparison in comparisons.items():
        st.markdown(f"**{SPLIT_NAMES.get(split, split)}, {comparison.n} examples** · {SPLIT_ROLES.get(split, '')}")
        interval = comparison.interval
        with st.container(horizontal=True, gap="large"):  # as wide as their labels, wrapping when narrow
            st.metric(f"Baseline ({split})", f"{comparison.before_mean:.1%}", width="content")
            st.metric(f"Optimized ({split})", f"{comparison.after_mean:.1%}", width="content")
            st.metric(
                "Gain (95% interval)",
                f"{comparison.mean_difference:+.1%}",
                delta=f"{interval.low:+.1%} to {interval.high:+.1%}",
                delta_color="off",
                width="content",
                help=f"Paired bootstrap interval of the gain ({interval.resamples:,} resamples), "
                f"p from the {METHODS.get(comparison.method, comparison.method)}.",
            )
        st.markdown(markdown_escape(comparison.sentence))
    if "test" not in comparisons:
        st.caption(
            "No test set: these scores are on the examples GEPA selected by, so they flatter the optimized "
            "prompt. Hold out a test set to know how it does on new questions."
        )
    warning = analysis.overfitting_warning(view)
    if warning:
        st.warning(markdown_escape(warning), icon=":material/warning:")
