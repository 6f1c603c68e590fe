"""Evaluation datasets: load JSONL, JSON or CSV in two shapes, validate, split.

Shapes accepted, per row:

* MLflow: ``{"inputs": {"question": ...}, "expectations": {"expected_response": ...}}``
  (``"outputs": ...`` is accepted in place of ``expectations``);
* flat: one field per template variable plus ``expected_response`` (alias ``answer``).

Everything is checked before any model call. Errors name the file, the row and the field.
Pure Python (no pandas): loading a dataset must not slow the app down.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError, InputError
from core.templates import template_variables

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 5000
MAX_REPORTED_PROBLEMS = 20
EXPECTED_KEYS = ("expected_response", "answer")
SAMPLE_DATA_DIR = Path(__file__).resolve().parent.parent / "sample_data"


@dataclass(frozen=True)
class DatasetProblem:
    """One thing wrong with a dataset, located as precisely as possible."""

    message: str
    row: int | None = None
    field: str | None = None

    def describe(self, source: str) -> str:
        where = source
        if self.row is not None:
            where += f", row {self.row}"
        if self.field is not None:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


class DatasetError(InputError, ValueError):
    """A dataset that cannot be used; ``problems`` lists every problem found (up to a limit)."""

    def __init__(self, source: str, problems: Sequence[DatasetProblem]):
        self.source = source
        self.problems = list(problems)
        lines = [p.describe(source) for p in self.problems[:5]]
        if len(self.problems) > 5:
            lines.append(f"... and {len(self.problems) - 5} more problem(s)")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Example:
    """One row: the template inputs and the expected answer. ``row`` is 1-based, as in the file."""

    inputs: dict[str, str]
    expected: str
    row: int

    def to_mlflow_record(self) -> dict[str, object]:
        return {"inputs": dict(self.inputs), "expectations": {"expected_response": self.expected}}


@dataclass(frozen=True)
class Dataset:
    """A validated dataset. ``fields`` are the input fields present in every row."""

    name: str
    source: str
    examples: tuple[Example, ...]
    fields: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.examples)

    def to_mlflow_records(self) -> list[dict[str, object]]:
        return [example.to_mlflow_record() for example in self.examples]

    def subset(self, indices: Iterable[int], suffix: str) -> Dataset:
        examples = tuple(self.examples[i] for i in indices)
        return Dataset(f"{self.name} ({suffix})", self.source, examples, self.fields)

    def check_template(self, template: str) -> None:
        """Raise :class:`DatasetError` for the variables of ``template`` the rows lack: one problem naming
        the file's columns when no row has it, else the rows without it."""
        problems = []
        columns = ", ".join(dict.fromkeys(k for e in self.examples for k in e.inputs)) or "none"
        for variable in template_variables(template):
            if not any(variable in example.inputs for example in self.examples):
                problems.append(
                    DatasetProblem(
                        f"the template uses {{{{{variable}}}}} but the file has no '{variable}' column "
                        f"(its input columns: {columns})"
                    )
                )
                continue
            for example in self.examples:
                if variable not in example.inputs:
                    problems.append(
                        DatasetProblem(
                            f"the template uses {{{{{variable}}}}} but this row has no '{variable}'",
                            example.row,
                            variable,
                        )
                    )
                    if len(problems) >= MAX_REPORTED_PROBLEMS:
                        raise DatasetError(self.source, problems)
        if problems:
            raise DatasetError(self.source, problems)


@dataclass(frozen=True)
class DeclaredSplit:
    """How many rows of a bundled dataset are held out for test and for validation by default."""

    test: int
    validation: int


@dataclass(frozen=True)
class BundledDataset:
    """A dataset shipped in ``sample_data/`` with its plain baseline prompt and default split."""

    key: str
    title: str
    description: str
    path: Path
    prompt_name: str
    baseline_template: str
    split: DeclaredSplit | None = None


def bundled_datasets() -> list[BundledDataset]:
    """The datasets listed in ``sample_data/catalog.json``; the first is the default."""
    catalog = json.loads((SAMPLE_DATA_DIR / "catalog.json").read_text(encoding="utf-8"))
    return [
        BundledDataset(
            key=item["key"],
            title=item["title"],
            description=item["description"],
            path=SAMPLE_DATA_DIR / item["file"],
            prompt_name=item["prompt_name"],
            baseline_template=item["baseline_template"],
            split=DeclaredSplit(**item["split"]) if item.get("split") else None,
        )
        for item in catalog["datasets"]
    ]


def bundled_dataset_at(path: str | os.PathLike[str]) -> BundledDataset | None:
    """The bundled dataset stored at ``path``, if it is one."""
    wanted = os.path.abspath(path)
    return next((b for b in bundled_datasets() if os.path.abspath(b.path) == wanted), None)


def default_dataset() -> BundledDataset:
    return bundled_datasets()[0]


def load_dataset(path: str | os.PathLike[str], *, name: str | None = None) -> Dataset:
    """Load and validate a dataset file (``.jsonl``, ``.json`` or ``.csv``).

    The size is checked from the file system before anything is read, so a huge file is refused
    without being loaded.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DatasetError(source, [DatasetProblem("no such file: check the path")])
    if path.is_dir():
        raise DatasetError(source, [DatasetProblem("this is a folder: give a .jsonl, .json or .csv file")])
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DatasetError(source, [_too_big(size)])
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return parse_dataset(data, path.name, source=source, name=name)


def parse_dataset(data: bytes, filename: str, *, source: str | None = None, name: str | None = None) -> Dataset:
    """Validate dataset ``data`` (an upload's bytes); ``filename``'s extension picks the format."""
    source = source or filename
    if len(data) > MAX_BYTES:
        raise DatasetError(source, [_too_big(len(data))])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(
            source,
            [
                DatasetProblem(
                    f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}): save the file as UTF-8"
                )
            ],
        ) from None
    suffix = Path(filename).suffix.lower()
    if suffix == ".jsonl":
        raw_rows = _jsonl_rows(text, source)
    elif suffix == ".json":
        raw_rows = _json_rows(text, source)
    elif suffix == ".csv":
        raw_rows = _csv_rows(text, source)
    else:
        raise DatasetError(
            source, [DatasetProblem(f"unsupported file type '{suffix or filename}': use .jsonl, .json or .csv")]
        )
    return _validate(raw_rows, source, name or Path(filename).stem)


@dataclass(frozen=True)
class Splits:
    """A dataset cut into train (GEPA's reflection minibatches), validation (its Pareto tracking and
    selection) and test (never seen by the search). Ids index ``dataset.examples`` and then, for a
    separate test file, ``test_file.examples`` numbered on after them. ``validation`` is ``train`` itself
    when the run validates on its training rows (MLflow's default)."""

    dataset: Dataset
    train: Dataset
    validation: Dataset
    test: Dataset | None
    train_ids: tuple[int, ...]
    validation_ids: tuple[int, ...]
    test_ids: tuple[int, ...] = ()
    test_file: Dataset | None = None

    @property
    def examples(self) -> tuple[Example, ...]:
        """Every row the ids point at: the dataset's, then the test file's."""
        return self.dataset.examples + (self.test_file.examples if self.test_file else ())


def split_three_ways(
    dataset: Dataset,
    *,
    test_rows: int = 0,
    validation_fraction: float | None = None,
    seed: int = 0,
    test_file: Dataset | None = None,
) -> Splits:
    """Hold out ``test_rows`` rows for test (the first ones of a ``seed``-shuffled order), or take the
    test set from ``test_file``; then split the rest into train and validation with
    :func:`split_dataset` (``validation_fraction`` of it; None or 0 validates on the training rows).

    Raises:
        ConfigError: a part would be empty, or the test file's fields differ from the dataset's.
    """
    n = len(dataset)
    if test_file is not None and test_rows:
        raise ConfigError("Give either a test file or a share of rows to hold out for test, not both.")
    if test_file is not None and set(test_file.fields) != set(dataset.fields):
        raise ConfigError(
            f"The test file {test_file.name} has the fields {', '.join(test_file.fields) or 'none'}, but the "
            f"dataset has {', '.join(dataset.fields)}: they must be the same."
        )
    if test_rows and not 0 < test_rows < n:
        raise ConfigError(
            f"Holding out {test_rows} of {n} rows for test leaves "
            f"{'no test rows' if test_rows <= 0 else 'no rows to optimize on'}: choose a smaller share."
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    test_ids = tuple(sorted(order[:test_rows]))
    held = set(test_ids)
    rest_ids = [i for i in range(n) if i not in held]
    rest = dataset.subset(rest_ids, "optimization rows") if test_rows else dataset
    if validation_fraction:
        if len(rest) < 2:
            raise ConfigError(
                f"After the test rows, {len(rest)} row is left: train and validation need at least one each."
            )
        train, validation = split_dataset(rest, validation_fraction, seed)
        position = {id(example): i for i, example in zip(rest_ids, rest.examples, strict=True)}
        train_ids = tuple(position[id(e)] for e in train.examples)
        validation_ids = tuple(position[id(e)] for e in validation.examples)
    else:
        train = validation = rest
        train_ids = validation_ids = tuple(rest_ids)
    test = dataset.subset(test_ids, "test") if test_rows else test_file
    if test_file is not None:
        test_ids = tuple(range(n, n + len(test_file)))
    return Splits(dataset, train, validation, test, train_ids, validation_ids, test_ids, test_file)


def choose_splits(
    dataset: Dataset,
    *,
    test_fraction: float | None = None,
    validation_fraction: float | None = None,
    seed: int = 0,
    test_file: Dataset | None = None,
    declared: DeclaredSplit | None = None,
) -> Splits:
    """The splits a run uses: the ``declared`` split of a bundled dataset when no fraction and no test
    file is given; otherwise a ``test_fraction`` share of the rows for test (or ``test_file``), then a
    ``validation_fraction`` share of the rest for validation (None or 0: validate on the training rows).

    Raises:
        ConfigError: a part would be empty (see :func:`split_three_ways`).
    """
    if test_file is None and test_fraction is None and validation_fraction is None and declared is not None:
        test_rows = declared.test
        validation_fraction = declared.validation / max(1, len(dataset) - test_rows)
    else:
        test_rows = round(len(dataset) * test_fraction) if test_fraction else 0
        if test_fraction and test_rows == 0:
            raise ConfigError(
                f"A test fraction of {test_fraction:g} of {len(dataset)} rows is no row at all: choose a larger one."
            )
    return split_three_ways(
        dataset, test_rows=test_rows, validation_fraction=validation_fraction, seed=seed, test_file=test_file
    )


def split_dataset(dataset: Dataset, validation_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Shuffle with ``seed`` and cut into (train, validation); both keep at least one row."""
    if not 0 < validation_fraction < 1:
        raise ConfigError("The validation fraction must be between 0 and 1 (for example 0.5).")
    if len(dataset) < 2:
        raise ConfigError("A dataset needs at least 2 rows to be split into train and validation.")
    order = list(range(len(dataset)))
    random.Random(seed).shuffle(order)
    n_val = min(len(order) - 1, max(1, round(len(order) * validation_fraction)))
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return dataset.subset(train, "train"), dataset.subset(val, "validation")


def _too_big(size: int) -> DatasetProblem:
    return DatasetProblem(
        f"the file is {size / 1e6:.1f} MB; the limit is {MAX_BYTES // (1024 * 1024)} MB: "
        "use a smaller sample of your data"
    )


_RawRow = tuple[int, object]
_NO_EXPECTED = "no expected answer: add 'expected_response' (or 'answer')"


@dataclass(frozen=True)
class _Unreadable:
    """A line that could not be parsed; reported with the other rows' problems."""

    message: str


def _jsonl_rows(text: str, source: str) -> Iterator[_RawRow]:
    # Only "\n" ends a JSONL line: str.splitlines() would also split inside strings at U+2028, U+0085...
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield line_number, json.loads(line)
        except json.JSONDecodeError as error:
            yield line_number, _Unreadable(f"not valid JSON ({error.msg} at column {error.colno})")


def _json_rows(text: str, source: str) -> Iterator[_RawRow]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DatasetError(
            source, [DatasetProblem(f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})")]
        ) from None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        raise DatasetError(source, [DatasetProblem("a .json dataset must be a list of rows")])
    yield from enumerate(document, start=1)


def _csv_rows(text: str, source: str) -> Iterator[_RawRow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise DatasetError(source, [DatasetProblem("the CSV file has no header row")])
    blank = [i + 1 for i, name in enumerate(reader.fieldnames) if not (name or "").strip()]
    if blank:
        raise DatasetError(source, [DatasetProblem(f"header column {blank[0]} has no name")])
    for row in reader:
        # Row numbers count the header as line 1, as a spreadsheet shows them.
        line = reader.line_num
        if None in row:
            raise DatasetError(source, [DatasetProblem("this row has more cells than the header", line)])
        if not any((value or "").strip() for value in row.values()):
            continue
        yield line, _decode_json_cells(row)


def _decode_json_cells(row: dict[str, str | None]) -> dict[str, object]:
    """CSV rows in the MLflow shape carry JSON objects in their ``inputs``/``expectations`` cells."""
    decoded: dict[str, object] = dict(row)
    for key in ("inputs", "expectations"):
        cell = row.get(key)
        if isinstance(cell, str) and cell.strip().startswith("{"):
            try:
                decoded[key] = json.loads(cell)
            except json.JSONDecodeError:
                pass
    return decoded


def _validate(raw_rows: Iterable[_RawRow], source: str, name: str) -> Dataset:
    problems: list[DatasetProblem] = []
    examples: list[Example] = []
    field_sets: list[set[str]] = []
    columns: dict[str, None] = {}
    rows = 0
    for rows, (row_number, raw) in enumerate(raw_rows, start=1):
        if rows > MAX_ROWS:
            raise DatasetError(
                source, [DatasetProblem(f"more than {MAX_ROWS} rows: use a smaller sample of your data")]
            )
        if isinstance(raw, dict):
            columns.update(dict.fromkeys(map(str, raw)))
        example, row_problems = _parse_row(raw, row_number)
        problems.extend(row_problems)
        if example is not None:
            examples.append(example)
            field_sets.append(set(example.inputs))
    if problems:
        raise DatasetError(source, _whole_file(problems, rows, list(columns))[:MAX_REPORTED_PROBLEMS])
    if not examples:
        raise DatasetError(source, [DatasetProblem("the file has no rows")])
    common = set.intersection(*field_sets)
    ordered = tuple(f for f in examples[0].inputs if f in common)
    return Dataset(name=name, source=source, examples=tuple(examples), fields=ordered)


def _whole_file(problems: list[DatasetProblem], rows: int, columns: list[str]) -> list[DatasetProblem]:
    """The same problem on every row of the file is one problem of the file (a missing column, say),
    said once and naming the columns the file does have; other problems stay row by row."""
    if rows < 2:
        return problems
    every: dict[tuple[str | None, str], int] = {}
    for problem in problems:
        if problem.row is not None:
            every[(problem.field, problem.message)] = every.get((problem.field, problem.message), 0) + 1
    whole = {key for key, count in every.items() if count == rows}
    if not whole:
        return problems
    found = ", ".join(columns) or "none"
    said = []
    for field_name, message in sorted(whole, key=lambda key: (key[0] or "", key[1])):
        if message == _NO_EXPECTED:
            said.append(
                DatasetProblem(
                    f"no column holds the expected answer: add one named 'expected_response' (or 'answer'); "
                    f"the file's columns are {found}"
                )
            )
        else:
            said.append(DatasetProblem(f"{message}, in every row", None, field_name))
    return said + [p for p in problems if (p.field, p.message) not in whole]


def _parse_row(raw: object, row: int) -> tuple[Example | None, list[DatasetProblem]]:
    if isinstance(raw, _Unreadable):
        return None, [DatasetProblem(raw.message, row)]
    if not isinstance(raw, dict):
        return None, [DatasetProblem(f"expected an object with named fields, got {type(raw).__name__}", row)]
    if "inputs" in raw:
        inputs_raw = raw["inputs"]
        if not isinstance(inputs_raw, dict):
            return None, [DatasetProblem("'inputs' must be an object of named fields", row, "inputs")]
        expected_raw, expected_field = _mlflow_expected(raw)
    else:
        inputs_raw = {k: v for k, v in raw.items() if k not in EXPECTED_KEYS}
        expected_field = next((k for k in EXPECTED_KEYS if k in raw), EXPECTED_KEYS[0])
        expected_raw = raw.get(expected_field)

    problems: list[DatasetProblem] = []
    inputs: dict[str, str] = {}
    for key, value in inputs_raw.items():
        text = _scalar_text(value)
        if value is None:
            problems.append(DatasetProblem("no value (a null, or a CSV row shorter than the header)", row, str(key)))
        elif text is None:
            problems.append(DatasetProblem(f"expected text, got {type(value).__name__}", row, str(key)))
        elif not text.strip():
            problems.append(DatasetProblem("empty: every input needs a value", row, str(key)))
        else:
            inputs[str(key)] = text
    if not inputs_raw:
        problems.append(DatasetProblem("no input fields: add one per template variable (e.g. 'question')", row))
    expected = _scalar_text(expected_raw)
    if expected_raw is None:
        problems.append(DatasetProblem(_NO_EXPECTED, row, expected_field))
    elif expected is None:
        problems.append(DatasetProblem(f"expected text, got {type(expected_raw).__name__}", row, expected_field))
    elif not expected.strip():
        problems.append(DatasetProblem("the expected answer is empty", row, expected_field))
    if problems:
        return None, problems
    assert expected is not None
    return Example(inputs=inputs, expected=expected, row=row), []


def _mlflow_expected(raw: dict[str, object]) -> tuple[object, str]:
    expectations = raw.get("expectations")
    if isinstance(expectations, dict):
        for key in EXPECTED_KEYS:
            if key in expectations:
                return expectations[key], f"expectations.{key}"
        return None, "expectations.expected_response"
    if expectations is not None:
        return expectations, "expectations"
    return raw.get("outputs"), "outputs"


def _scalar_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None
