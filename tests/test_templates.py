from core.templates import (
    check_template,
    diff_counts,
    lost_variables,
    malformed_placeholders,
    render,
    template_variables,
    word_diff,
)


def test_variables_are_found_in_order_once_each():
    assert template_variables("Q: {{question}} C: {{ context }} again {{question}}") == ["question", "context"]


def test_dotted_variables_follow_mlflow_syntax():
    assert template_variables("{{user.name}}") == ["user.name"]


def test_unclosed_braces_are_malformed():
    assert malformed_placeholders("Answer {{question}") == ["{{question}"]


def test_an_unclosed_brace_is_one_message_with_the_fix():
    check = check_template("Answer {{question}", ["question"])
    assert check.problems == ("'{{question}' is not closed: write {{question}}.",)
    assert check.unused == ()  # the field it means to use is that same mistake


def test_each_kind_of_brace_mistake_is_said_once():
    assert check_template("Answer {{ 1st }}").problems == (
        "'{{ 1st }}' is not a variable name: start with a letter or _, then letters, digits or _ "
        "(for example {{question}}).",
    )
    assert check_template("Answer {question}}").problems == ("'{question}}' opens with one brace: write {{question}}.",)


def test_nested_json_braces_are_plain_text():
    assert check_template('Reply as {"a": {"b": 1}} to {{question}}').ok


def test_non_name_placeholder_is_malformed():
    assert malformed_placeholders("{{ 1st }}")


def test_single_braces_are_plain_text():
    assert malformed_placeholders('Reply as JSON {"a": 1} to {{question}}') == []


def test_check_reports_variable_missing_from_dataset():
    check = check_template("{{question}} {{context}}", ["question"])
    assert not check.ok
    assert check.missing == ("context",)
    assert "no 'context' field" in check.problems[0]


def test_check_reports_unused_dataset_fields_without_failing():
    check = check_template("{{question}}", ["question", "context"])
    assert check.ok and check.unused == ("context",)


def test_template_without_variables_is_rejected():
    assert "no {{variable}}" in check_template("Just answer.").problems[0]


def test_render_substitutes_in_one_pass():
    assert render("{{a}} {{b}}", {"a": "{{b}}", "b": "x"}) == "{{b}} x"


def test_render_names_missing_values():
    try:
        render("{{a}} {{b}}", {"a": 1})
    except ValueError as error:
        assert "{{b}}" in str(error)
    else:
        raise AssertionError("render should fail")


def test_lost_variables_lists_what_the_candidate_dropped():
    assert lost_variables("{{context}} {{question}}", "Answer: {{question}}") == ["context"]


def test_word_diff_rejoins_to_both_texts():
    old, new = "Answer this question: {{question}}", "Answer the question briefly: {{question}}"
    diff = word_diff(old, new)
    assert "".join(s.text for s in diff if s.op != "insert") == old
    assert "".join(s.text for s in diff if s.op != "delete") == new
    assert diff_counts(diff) == {"insert": 3, "delete": 2}  # the, question briefly: / this, question:
