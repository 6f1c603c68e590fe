"""Choosing a dataset on a page: a bundled one, or an upload validated on the spot."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import store
from core.analysis import example_inputs_text
from core.offline_model import own_data_note
from core.templates import markdown_escape


def render_dataset_picker(prefix: str, *, simulated: bool = False) -> Any:
    """Choose a bundled dataset or upload one (validated on the spot). Returns (Dataset, bundled
    entry or None) or None when nothing usable is chosen; problems are shown where they are.

    An upload is kept for the session (``PREFIX.uploaded``): it stays chosen after a run or a visit to
    another page, until another file is uploaded. With the ``simulated`` demo model, an upload it
    cannot answer is said at once.
    """
    from core.datasets import Dataset, DatasetError, bundled_datasets, load_dataset, parse_dataset

    bundled = bundled_datasets()
    options = [b.key for b in bundled] + ["upload"]
    labels = {b.key: b.title for b in bundled} | {"upload": "Upload your own (JSONL, JSON or CSV)"}
    if st.session_state.get(f"{prefix}.dataset") not in options:
        st.session_state[f"{prefix}.dataset"] = options[0]
    choice = st.selectbox("Dataset", options, format_func=labels.get, key=f"{prefix}.dataset")
    if choice != "upload":
        entry = next(b for b in bundled if b.key == choice)
        st.caption(entry.description)
        return load_dataset(entry.path), entry
    upload = st.file_uploader(
        "Dataset file",
        type=["jsonl", "json", "csv"],
        key=f"{prefix}.upload",
        help="Rows in the MLflow shape {'inputs': {...}, 'expectations': {'expected_response': ...}} or flat "
        "rows with one column per template variable plus expected_response (or answer). UTF-8, up to 20 MB "
        "and 5,000 rows.",
    )
    kept = st.session_state.get(f"{prefix}.uploaded")
    if upload is not None:
        data = upload.getvalue()
        try:
            dataset = parse_dataset(data, upload.name)
        except DatasetError as error:
            render_problems(upload.name, error.problems)
            return None
        path = str(store.save_upload(data, upload.name))
        st.session_state[f"{prefix}.uploaded"] = {"file": upload.name, "path": path}
    elif kept:
        try:
            dataset = load_dataset(kept["path"])
        except DatasetError:
            st.session_state.pop(f"{prefix}.uploaded", None)
            return None
        path = kept["path"]
        st.caption(
            f"Using {markdown_escape(kept['file'])} ({len(dataset)} rows), uploaded earlier in this session. "
            "Upload another file to replace it."
        )
    else:
        return None
    if simulated and (note := own_data_note([example_inputs_text(e) for e in dataset.examples])):
        st.warning(markdown_escape(note), icon=":material/science:")
    return Dataset(dataset.name, path, dataset.examples, dataset.fields), None


def render_problems(filename: str, problems: Any) -> None:
    """What is wrong with an upload: a problem of the whole file (a missing column, not JSON at all) as
    one line each; problems of single rows in a table of row, field and problem."""
    name = markdown_escape(filename)
    for problem in (p for p in problems if p.row is None):
        field = f" (field '{markdown_escape(problem.field)}')" if problem.field else ""
        st.error(f"{name} cannot be used{field}: {markdown_escape(problem.message)}.")
    rows = [p for p in problems if p.row is not None]
    if rows:
        st.error(f"{name} cannot be used: fix these rows and upload it again.")
        st.dataframe(
            [{"row": p.row, "field": p.field or "", "problem": p.message} for p in rows],
            hide_index=True,
            width="stretch",
            column_config={"row": st.column_config.NumberColumn(width="small")},
        )


def render_rows(dataset: Any, *, limit: int = 200) -> None:
    rows = [{"row": e.row, **e.inputs, "expected": e.expected} for e in dataset.examples[:limit]]
    st.dataframe(rows, hide_index=True, width="stretch", height=min(38 + 35 * len(rows), 320))
    if len(dataset) > limit:
        st.caption(f"Showing the first {limit} of {len(dataset)} rows.")
