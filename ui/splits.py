"""Choosing how a dataset is split for a run: train (GEPA learns from it), validation (GEPA picks by it)
and test (never seen by the search, scored once at the end). The sizes shown are computed by the
engine's own rule (:func:`core.datasets.choose_splits`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core import store
from core.datasets import DatasetError, Splits, choose_splits, load_dataset, parse_dataset
from core.errors import InputError
from core.templates import markdown_escape
from ui import shell

DECLARED, SHARE, FILE, NONE = "declared", "share", "file", "none"
MIN_ROWS_TO_SPLIT = 10


@dataclass(frozen=True)
class SplitChoice:
    """The config fields a split choice sets, and the splits they give."""

    fields: dict[str, Any]
    splits: Splits


def render_splits(dataset: Any, bundled: Any, *, offline: bool) -> SplitChoice | None:
    """The split radio and shares; None (with the reason shown) when the choice leaves a part empty."""
    declared = bundled.split if bundled is not None else None
    modes = ([DECLARED] if declared else []) + [SHARE, FILE, NONE]
    labels = {
        DECLARED: f"Its own split ({declared.test} test, {declared.validation} validation, the rest train)"
        if declared
        else "",
        SHARE: "Hold out a share of the rows for test",
        FILE: "A separate test file",
        NONE: "No test set",
    }
    if st.session_state.get("optimize.test_mode") not in modes:
        # Too few rows to hold any out: validate on what there is, and say so below.
        st.session_state["optimize.test_mode"] = modes[0] if declared or len(dataset) >= MIN_ROWS_TO_SPLIT else NONE
    mode = st.radio("Test set", modes, format_func=labels.get, key="optimize.test_mode", horizontal=True)
    fields: dict[str, Any] = {"test_fraction": None, "validation_fraction": None, "test_dataset_path": None}
    test_file = None
    if mode == SHARE:
        st.session_state.setdefault("optimize.test_share", 0.3)
        fields["test_fraction"] = st.slider("Test share", 0.1, 0.6, step=0.05, key="optimize.test_share")
    elif mode == FILE:
        test_file, fields["test_dataset_path"] = _render_test_upload()
        if test_file is None:
            return None
    elif mode == NONE:
        fields["test_fraction"] = 0.0
    if mode != DECLARED:
        st.session_state.setdefault("optimize.split", len(dataset) >= MIN_ROWS_TO_SPLIT)
        st.session_state.setdefault("optimize.fraction", 0.5)
        separate = st.checkbox(
            "Hold out validation rows (otherwise GEPA validates on its training rows)", key="optimize.split"
        )
        share = st.slider("Validation share of the rest", 0.1, 0.9, step=0.05, key="optimize.fraction")
        fields["validation_fraction"] = share if separate else 0.0
    try:
        splits = choose_splits(
            dataset,
            test_fraction=fields["test_fraction"],
            validation_fraction=fields["validation_fraction"],
            test_file=test_file,
            declared=declared if mode == DECLARED else None,
        )
    except InputError as error:
        st.error(shell.one_line(error))
        return None
    same = splits.validation is splits.train
    st.caption(
        f"Train {len(splits.train)} · validation {len(splits.validation)}"
        + (" (the training rows)" if same else "")
        + f" · test {len(splits.test_ids)} rows. GEPA learns from the training rows and picks by the "
        "validation rows; the test rows are scored once at the end, never seen by the search."
    )
    if splits.test_ids:
        st.session_state.setdefault("optimize.all_on_test", offline)
        fields["score_candidates_on_test"] = st.checkbox(
            "Also score every candidate on the test set",
            key="optimize.all_on_test",
            help=f"{len(splits.test_ids)} more calls per candidate, outside the budget; on by default for the "
            "offline demo model, off for real models, whose calls cost money.",
        )
    return SplitChoice(fields, splits)


def _render_test_upload() -> tuple[Any, str | None]:
    """The separate test file, kept for the session like the dataset (``optimize.test_uploaded``)."""
    upload = st.file_uploader("Test file", type=["jsonl", "json", "csv"], key="optimize.test_upload")
    kept = st.session_state.get("optimize.test_uploaded")
    if upload is None and kept:
        try:
            test = load_dataset(kept["path"])
        except DatasetError:
            st.session_state.pop("optimize.test_uploaded", None)
            return None, None
        st.caption(f"Test rows from {markdown_escape(kept['file'])}, uploaded earlier in this session.")
        return test, kept["path"]
    if upload is None:
        st.caption("Upload the test rows: the same fields as the dataset, either accepted shape.")
        return None, None
    data = upload.getvalue()
    try:
        test = parse_dataset(data, upload.name)
    except DatasetError as error:
        st.error(f"{markdown_escape(upload.name)} cannot be used: {shell.one_line(error)}")
        return None, None
    path = str(store.save_upload(data, upload.name))
    st.session_state["optimize.test_uploaded"] = {"file": upload.name, "path": path}
    return test, path


def settings_of(config: Mapping[str, Any], *, declared: bool) -> dict[str, Any]:
    """The split widgets' values that give the splits of a run's ``config`` (its recorded settings)
    on a dataset with a ``declared`` split, or without one, so a new run set up from it starts there."""
    test_path, test_share = config.get("test_dataset_path"), config.get("test_fraction")
    validation = config.get("validation_fraction")
    values: dict[str, Any] = {}
    if test_path:
        values["optimize.test_mode"] = FILE
        values["optimize.test_uploaded"] = {"file": os.path.basename(test_path), "path": test_path}
    elif test_share:
        values |= {"optimize.test_mode": SHARE, "optimize.test_share": float(test_share)}
    elif test_share is None and validation is None:
        values["optimize.test_mode"] = DECLARED if declared else NONE
        if not declared:
            values["optimize.split"] = False  # validated on its training rows
    else:
        values["optimize.test_mode"] = NONE
    if validation is not None:
        values["optimize.split"] = bool(validation)
        if validation:
            values["optimize.fraction"] = float(validation)
    if config.get("score_candidates_on_test") is not None:
        values["optimize.all_on_test"] = bool(config["score_candidates_on_test"])
    return values
