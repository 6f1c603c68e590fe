import json

import pytest

from conftest import rows_jsonl
from core.datasets import (
    MAX_BYTES,
    MAX_ROWS,
    DatasetError,
    bundled_datasets,
    load_dataset,
    parse_dataset,
    split_dataset,
)


def test_bundled_short_answer_set_has_forty_short_answers(short_qa):
    dataset = load_dataset(short_qa)
    assert len(dataset) >= 40
    assert dataset.fields == ("question",)
    assert all(1 <= len(e.expected.split()) <= 3 for e in dataset.examples)


def test_bundled_context_set_needs_two_variables(context_qa):
    dataset = load_dataset(context_qa)
    assert len(dataset) >= 16
    assert set(dataset.fields) == {"context", "question"}


def test_every_bundled_baseline_fits_its_dataset():
    for bundled in bundled_datasets():
        load_dataset(bundled.path).check_template(bundled.baseline_template)


def test_mlflow_shape_with_outputs_is_accepted(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"inputs": {"question": "Q?"}, "outputs": "A"}]))
    assert load_dataset(path).examples[0].expected == "A"


def test_flat_rows_accept_answer_as_alias(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"question": "Q?", "answer": 7}]))
    example = load_dataset(path).examples[0]
    assert example.inputs == {"question": "Q?"} and example.expected == "7"


def test_csv_flat_rows(write_file):
    path = write_file("d.csv", "context,question,expected_response\nc1,q1,a1\nc2,q2,a2\n")
    dataset = load_dataset(path)
    assert dataset.fields == ("context", "question")
    assert [e.row for e in dataset.examples] == [2, 3]


def test_csv_in_mlflow_shape(write_file):
    path = write_file("d.csv", 'inputs,expectations\n"{""question"": ""Q?""}","{""expected_response"": ""A""}"\n')
    assert load_dataset(path).examples[0].inputs == {"question": "Q?"}


def test_json_list_is_accepted(write_file):
    path = write_file("d.json", json.dumps([{"question": "Q?", "expected_response": "A"}]))
    assert len(load_dataset(path)) == 1


def test_missing_expected_answer_names_file_row_and_field(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"question": "Q1", "answer": "A"}, {"question": "Q2"}]))
    with pytest.raises(DatasetError) as error:
        load_dataset(path)
    assert "d.jsonl, row 2, field 'expected_response': no expected answer" in str(error.value)


def test_empty_expected_answer_is_rejected(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"inputs": {"q": "x"}, "expectations": {"expected_response": "  "}}]))
    message = "row 1, field 'expectations.expected_response': the expected answer is empty"
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_invalid_json_line_is_located(write_file):
    path = write_file("d.jsonl", '{"question": "a", "answer": "b"}\n{"question": "c", answer}\n')
    with pytest.raises(DatasetError, match=r"d.jsonl, row 2: not valid JSON"):
        load_dataset(path)


def test_non_utf8_file_is_rejected_with_offset(write_file):
    path = write_file("d.csv", "question,answer\ncaf\xe9,x\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8 text .*offset 19"):
        load_dataset(path)


def test_nested_value_is_rejected(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"question": ["a"], "answer": "b"}]))
    with pytest.raises(DatasetError, match="field 'question': expected text, got list"):
        load_dataset(path)


def test_every_problem_is_listed(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"question": "q", "answer": "a"}] + [{"question": "q"}] * 3))
    with pytest.raises(DatasetError) as error:
        load_dataset(path)
    assert [p.row for p in error.value.problems] == [2, 3, 4]


def test_oversized_file_is_refused_before_reading(write_file, monkeypatch):
    path = write_file("big.jsonl", "")
    with path.open("r+b") as handle:
        handle.truncate(MAX_BYTES + 1)
    opened = []
    monkeypatch.setattr(type(path), "open", lambda *a, **k: opened.append(a) or (_ for _ in ()).throw(AssertionError))
    with pytest.raises(DatasetError, match="limit is 20 MB"):
        load_dataset(path)
    assert opened == []


def test_too_many_rows_are_refused():
    data = rows_jsonl([{"question": f"q{i}", "answer": "a"} for i in range(MAX_ROWS + 1)]).encode()
    with pytest.raises(DatasetError, match=f"more than {MAX_ROWS} rows"):
        parse_dataset(data, "d.jsonl")


def test_unknown_extension_is_refused():
    with pytest.raises(DatasetError, match="unsupported file type '.txt'"):
        parse_dataset(b"x", "d.txt")


def test_missing_file_says_so(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nope.jsonl")


def test_template_check_lists_rows_without_the_variable(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"question": "q", "answer": "a"}, {"query": "q", "answer": "a"}]))
    with pytest.raises(DatasetError, match="row 2, field 'question'"):
        load_dataset(path).check_template("{{question}}")


def test_split_is_seeded_and_disjoint(short_qa):
    dataset = load_dataset(short_qa)
    train, val = split_dataset(dataset, 0.25, seed=3)
    _, again_val = split_dataset(dataset, 0.25, seed=3)
    assert [e.row for e in val.examples] == [e.row for e in again_val.examples]
    assert len(val) == round(len(dataset) * 0.25) and len(train) == len(dataset) - len(val)
    assert not {e.row for e in train.examples} & {e.row for e in val.examples}


def test_split_needs_a_fraction_between_zero_and_one(short_qa):
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_dataset(load_dataset(short_qa), 1.5, seed=0)


def test_jsonl_lines_end_only_at_newlines(write_file):
    text = json.dumps({"question": "a\u2028b\u0085c", "answer": "x"}, ensure_ascii=False) + "\n"
    path = write_file("u.jsonl", text + '{"question": "q2", "answer": "y"}\r\n')
    dataset = load_dataset(path)
    assert [e.row for e in dataset.examples] == [1, 2]
    assert dataset.examples[0].inputs["question"] == "a\u2028b\u0085c"


def test_short_csv_row_names_the_missing_cells(write_file):
    path = write_file("short.csv", "question,context,answer\nq1,c1,a1\nq2\n")
    with pytest.raises(DatasetError) as error:
        load_dataset(path)
    problems = [(p.row, p.field, p.message) for p in error.value.problems]
    assert problems[0] == (3, "context", "no value (a null, or a CSV row shorter than the header)")


def test_the_default_set_declares_30_test_30_validation_30_train_disjoint_and_seeded(short_qa):
    from core.datasets import bundled_dataset_at, choose_splits

    dataset, declared = load_dataset(short_qa), bundled_dataset_at(short_qa).split
    splits = choose_splits(dataset, declared=declared)
    parts = [set(splits.train_ids), set(splits.validation_ids), set(splits.test_ids)]
    assert [len(p) for p in parts] == [30, 30, 30] and set().union(*parts) == set(range(90))
    assert choose_splits(dataset, declared=declared) == splits
    assert set(choose_splits(dataset, declared=declared, seed=1).test_ids) != parts[2]


def test_a_test_share_is_taken_before_the_validation_share(short_qa):
    from core.datasets import choose_splits

    splits = choose_splits(load_dataset(short_qa), test_fraction=0.2, validation_fraction=0.25)
    assert (len(splits.test_ids), len(splits.validation_ids), len(splits.train_ids)) == (18, 18, 54)
    assert not set(splits.test_ids) & (set(splits.train_ids) | set(splits.validation_ids))


def test_a_split_that_leaves_a_part_empty_is_one_clear_error(write_file):
    from core.datasets import choose_splits
    from core.errors import ConfigError

    tiny = load_dataset(
        write_file("tiny.jsonl", rows_jsonl([{"question": "q1", "answer": "a"}, {"question": "q2", "answer": "b"}]))
    )
    with pytest.raises(ConfigError, match="train and validation need at least one each"):
        choose_splits(tiny, test_fraction=0.5, validation_fraction=0.5)


def test_a_test_file_must_have_the_dataset_fields(short_qa, write_file):
    from core.datasets import choose_splits
    from core.errors import ConfigError

    other = load_dataset(write_file("test.jsonl", rows_jsonl([{"query": "q", "answer": "a"}])))
    with pytest.raises(ConfigError, match="has the fields query, but the dataset has question"):
        choose_splits(load_dataset(short_qa), test_file=other)


def test_a_column_missing_from_every_row_is_one_problem_naming_the_columns_found(write_file):
    path = write_file("d.csv", "question,response\nq1,a1\nq2,a2\nq3,a3\n")
    with pytest.raises(DatasetError) as error:
        load_dataset(path)
    assert [(p.row, p.field) for p in error.value.problems] == [(None, None)]
    assert "no column holds the expected answer" in error.value.problems[0].message
    assert "the file's columns are question, response" in error.value.problems[0].message


def test_a_row_with_an_empty_question_is_refused(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"question": "Q1", "answer": "A"}, {"question": "  ", "answer": "B"}]))
    with pytest.raises(DatasetError) as error:
        load_dataset(path)
    assert [(p.row, p.field, p.message) for p in error.value.problems] == [
        (2, "question", "empty: every input needs a value")
    ]


def test_template_variable_no_row_has_is_one_problem_naming_the_columns(write_file):
    path = write_file("d.jsonl", rows_jsonl([{"query": "q", "answer": "a"}, {"query": "r", "answer": "b"}]))
    with pytest.raises(DatasetError) as error:
        load_dataset(path).check_template("{{question}}")
    assert [p.message for p in error.value.problems] == [
        "the template uses {{question}} but the file has no 'question' column (its input columns: query)"
    ]
