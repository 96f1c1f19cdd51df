"""`python -m <package>.suite`: the suite it writes is met by its data, reads back through Great
Expectations unchanged, and keeps one expectation per line. The command runs on the configured
data; the expectations of each kind of column are checked on a made-up table that has them all.
"""

import json
import math
import re

import pandas as pd
import pytest
from tables import manifest_frame, mixed_frame, raw_frame
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.params import (
    load_params,
)
from {{ cookiecutter.module_name }}.suite import (
    BLANK_PATTERN,
    DEFAULT_DUPLICATES,
    DEFAULT_MARGIN,
    NUMBER_PATTERN,
    SuiteError,
    app,
    suite_document,
    suite_text,
    widened_range,
)
from {{ cookiecutter.module_name }}.validation import (
    gx_suite,
    read_data,
    read_suite,
    run_suite,
)

TARGET = load_params().data.target
runner = CliRunner()


def invoke(*arguments):
    result = runner.invoke(app, [str(argument) for argument in arguments])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def frame():
    return raw_frame()


@pytest.fixture(scope="module")
def written(frame, tmp_path_factory):
    """The configured data as a CSV, and the suite the command writes from it."""
    folder = tmp_path_factory.mktemp("suite")
    data, suite = folder / "dataset.csv", folder / "raw_data.json"
    frame.to_csv(data, index=False)
    result = invoke("--input-path", data, "--output-path", suite)
    assert result.exit_code == 0, result.output
    return data, suite


def test_one_expectation_per_line(written):
    _data, suite = written
    text = suite.read_text()
    document = json.loads(text)
    lines = [line.strip().rstrip(",") for line in text.splitlines()]
    one_per_line = [json.loads(line) for line in lines if line.startswith('{"type": ')]
    assert one_per_line == document["expectations"]
    assert suite_text(document) == text


def test_suite_reads_back_through_great_expectations_unchanged(written, tmp_path):
    document = json.loads(written[1].read_text())
    document["expectations"][0]["meta"] = {"notes": "a team's note"}
    document["notes"] = "edited by hand"
    suite = tmp_path / "suite.json"
    suite.write_text(suite_text(document))

    loaded = read_suite(suite)

    assert [
        {"type": item.expectation_type, "kwargs": item.configuration.kwargs}
        | ({"meta": item.meta} if item.meta else {})
        for item in loaded.expectations
    ] == document["expectations"]
    assert loaded.notes == "edited by hand"


def test_data_meets_the_suite_written_from_it(written):
    data, suite = written
    _context, result = run_suite(read_data(data), read_suite(suite))
    assert result.success, [item.expectation_config.type for item in result.results]


def test_each_kind_of_column_gets_its_expectations(tmp_path):
    frame, settings = mixed_frame(rows=300)
    frame.loc[7, "reading"] = None  # a column with a few nulls gets a `mostly`
    data, suite = tmp_path / "data.csv", tmp_path / "suite.json"
    frame.to_csv(data, index=False)
    document = suite_document(read_data(data), settings.target, settings.columns, 0, "data.csv")
    suite.write_text(suite_text(document))

    _context, result = run_suite(read_data(data), read_suite(suite))

    assert result.success, [item.expectation_config.type for item in result.results]
    expectations = {
        (item["type"], item["kwargs"].get("column")): item["kwargs"]
        for item in document["expectations"]
    }
    assert expectations[("expect_column_values_to_not_be_null", "reading")]["mostly"] == 0.99
    assert expectations[("expect_column_values_to_be_between", "count")] == {
        "column": "count",
        "min_value": int(frame["count"].min()),
        "max_value": int(frame["count"].max()),
    }
    assert expectations[("expect_table_row_count_to_be_between", None)] == {
        "min_value": 150,
        "max_value": 600,
    }
    assert expectations[("expect_compound_columns_to_be_unique", None)] == {
        "column_list": list(frame.columns),
        "mostly": 1 - DEFAULT_DUPLICATES,
    }
    assert expectations[("expect_column_values_to_be_in_set", "site")]["value_set"] == sorted(
        frame["site"].unique()
    )
    assert expectations[("expect_column_value_lengths_to_be_between", "note")] == {
        "column": "note",
        "min_value": 1,
        "max_value": int(frame["note"].str.len().max()),
    }
    assert expectations[("expect_column_values_to_not_match_regex", "note")] == {
        "column": "note",
        "regex": BLANK_PATTERN,
    }
    unique_notes = 1 - frame["note"].duplicated(keep=False).mean()
    assert expectations[("expect_column_values_to_be_unique", "note")]["mostly"] == min(
        1 - DEFAULT_DUPLICATES, math.floor(100 * unique_notes) / 100
    )
    assert ("expect_column_values_to_match_regex", "site") not in expectations
    assert ("expect_column_values_to_match_regex", settings.target) not in expectations
    assert expectations[("expect_column_values_to_be_in_set", settings.target)]["value_set"] == [
        "high",
        "low",
        "mid",
    ]


@pytest.mark.parametrize(
    ("repeated", "duplicates", "mostly"),
    [
        (0, DEFAULT_DUPLICATES, 0.95),
        (5, DEFAULT_DUPLICATES, 0.95),  # 10 of 300 rows have a twin: within the 5 %
        (30, DEFAULT_DUPLICATES, 0.8),  # 60 of 300: the suite allows what the data holds
        (0, 0.0, 1.0),
        (5, 0.0, 0.96),
    ],
)
def test_duplicated_rows_are_allowed_up_to_a_share(repeated, duplicates, mostly):
    frame, settings = mixed_frame(rows=300 - repeated)
    frame = pd.concat([frame, frame.head(repeated)], ignore_index=True)
    document = suite_document(frame, settings.target, settings.columns, 0, "data", duplicates)
    (rows,) = [e for e in document["expectations"] if e["type"].startswith("expect_compound")]
    assert rows["kwargs"]["mostly"] == mostly
    _context, result = run_suite(frame, gx_suite(document, "suite"))
    assert result.success


def test_blank_or_repeated_texts_fail_the_suite_of_clean_texts():
    """A text column written from distinct, non-blank texts; then a tenth of them blanked with
    spaces (pandas keeps them: not missing) or repeated under another label (every row still
    unique, so only the text's own expectation sees it)."""
    frame = pd.DataFrame(
        {
            "message": [f"message number {i} about topic {i % 3}" for i in range(200)],
            "topic": [f"t{i % 3}" for i in range(200)],
        }
    )
    document = suite_document(frame, "topic", {"message": "text"}, 0.1, "data", 0.05)
    assert run_suite(frame, gx_suite(document, "suite"))[1].success

    def failures(damaged: pd.DataFrame) -> set[str]:
        _context, result = run_suite(damaged, gx_suite(document, "suite"))
        return {item.expectation_config.type for item in result.results if not item.success}

    blank = frame.copy()
    blank.loc[:19, "message"] = [" " * (i + 1) for i in range(20)]  # distinct, so no repeats
    assert failures(blank) == {"expect_column_values_to_not_match_regex"}
    relabelled = frame.copy()
    relabelled.loc[:19, "message"] = frame.loc[100:119, "message"].to_numpy()
    relabelled.loc[:19, "topic"] = [f"t{(i + 1) % 3}" for i in range(100, 120)]
    assert failures(relabelled) == {"expect_column_values_to_be_unique"}


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", True),
        ("-0.5", True),
        ("1e-05", True),
        ("1.2E+30", True),
        ("12.0", True),  # whole numbers in a column that has a null
        (".5", True),
        ("abc", False),
        ("12,5", False),
        ("1.2.3", False),
        ("inf", False),
        ("", False),
    ],
)
def test_number_pattern(text, number):
    assert bool(re.search(NUMBER_PATTERN, text)) is number


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--input-path", "missing.csv"], "missing.csv does not exist"),
        (["--margin", "-0.1"], "the margin must be 0 or more"),
        (["--duplicates", "1"], "the share of duplicated rows must be at least 0, below 1: 1.0"),
    ],
)
def test_bad_input_stops_in_one_line(arguments, message, written, tmp_path):
    data, _suite = written
    result = invoke("--input-path", data, "--output-path", tmp_path / "suite.json", *arguments)
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith("suite: ") and message in result.output
    assert not (tmp_path / "suite.json").exists()


def test_data_without_the_label_column_stops_in_one_line(frame, tmp_path):
    data = tmp_path / "data.csv"
    frame.drop(columns=TARGET).to_csv(data, index=False)
    result = invoke("--input-path", data, "--output-path", tmp_path / "suite.json")
    assert result.exit_code == 1
    assert f"the label column {TARGET!r} (data.target) is not in" in result.output


@pytest.mark.parametrize(
    ("low", "high", "margin", "integer", "expected"),
    [
        (6.981, 28.11, 0.1, False, (4.0, 31.0)),  # rounded outward to the margin's first digit
        (143.5, 2501.0, 0.1, False, (0.0, 2800.0)),  # never below 0 for non-negative data
        (-5.0, 5.0, 0.1, False, (-6.0, 6.0)),
        (0.04996, 0.09744, 0.1, False, (0.045, 0.103)),
        (3.0, 3.0, 0.1, False, (2.7, 3.3)),  # a constant column still gets a range
        (10, 20, 0.05, True, (9, 21)),  # integers stay integers
        (1.5, 2.5, 0.0, False, (1.5, 2.5)),  # no margin: the observed range
        (10.0, 20.0, 0.0, True, (10, 20)),
    ],
)
def test_widened_range(low, high, margin, integer, expected):
    result = widened_range(low, high, margin, integer)
    assert result == expected
    assert all(isinstance(bound, int if integer else float) for bound in result)


def test_widened_range_always_contains_the_data():
    for low, high in [(0.0123, 0.0456), (-3.3, 1234.5), (1e-6, 2e-6), (1e6, 3e6)]:
        lower, upper = widened_range(low, high, DEFAULT_MARGIN, integer=False)
        assert lower <= low and upper >= high
        assert not math.isclose(lower, low) and not math.isclose(upper, high)


def test_same_data_same_file(frame):
    columns = load_params().data.columns
    first = suite_text(suite_document(frame, TARGET, columns, DEFAULT_MARGIN, "data.csv"))
    second = suite_text(suite_document(frame.copy(), TARGET, columns, DEFAULT_MARGIN, "data.csv"))
    assert first == second


def test_a_manifest_of_pictures_gets_their_expectations_and_meets_them():
    frame, data = manifest_frame()
    document = suite_document(frame, data.target, data.columns, DEFAULT_MARGIN, "manifest")
    found = {(e["type"], e["kwargs"].get("column")) for e in document["expectations"]}
    assert {
        ("expect_column_values_to_be_unique", "image"),
        ("expect_column_values_to_be_in_set", "readable"),
        ("expect_column_values_to_be_between", "width"),
        ("expect_column_values_to_be_between", "height"),
        ("expect_column_values_to_be_in_set", "mode"),
        ("expect_column_values_to_be_unique", "sha256"),
        ("expect_column_kl_divergence_to_be_less_than", "animal"),
    } <= found
    assert run_suite(frame, gx_suite(document, "manifest"))[1].success


@pytest.mark.parametrize("classes", [3, 7, 60])
def test_the_class_balance_of_any_number_of_classes_reads_back(classes):
    """GE refuses shares that do not sum to 1: rounded thirds (0.3333 x 3) would not."""
    frame = pd.concat([manifest_frame(per_class=7)[0]] * 30, ignore_index=True).head(7 * classes)
    frame["animal"] = [f"class{i % classes}" for i in range(len(frame))]
    frame["image"] = [f"{i}.png" for i in range(len(frame))]
    data = manifest_frame()[1]
    document = suite_document(frame, data.target, data.columns, DEFAULT_MARGIN, "manifest")
    assert run_suite(frame, gx_suite(document, "manifest"))[1].success


def test_bad_pictures_fail_the_suite_of_good_ones():
    """An unreadable file, a grey picture among colour ones, one file copied under many names
    and a class mostly gone each fail their expectation."""
    frame, data = manifest_frame()
    document = suite_document(frame, data.target, data.columns, DEFAULT_MARGIN, "manifest")
    bad = frame.copy()
    bad.loc[0, ["readable", "width", "height", "mode"]] = [False, 0, 0, ""]
    bad.loc[1, "mode"] = "L"
    bad.loc[2:6, "sha256"] = bad.loc[2, "sha256"]
    bad = bad.drop(index=bad.index[bad["animal"] == "dog"][:17])
    result = run_suite(bad.reset_index(drop=True), gx_suite(document, "manifest"))[1]
    failed = {
        (item.expectation_config.type, item.expectation_config.kwargs.get("column"))
        for item in result.results
        if not item.success
    }
    assert failed == {
        ("expect_column_values_to_be_in_set", "readable"),
        ("expect_column_values_to_be_between", "width"),
        ("expect_column_values_to_be_between", "height"),
        ("expect_column_values_to_be_in_set", "mode"),
        ("expect_column_values_to_be_unique", "sha256"),
        ("expect_column_kl_divergence_to_be_less_than", "animal"),
    }


def test_an_image_column_without_the_manifest_columns_stops_in_one_line():
    frame, data = manifest_frame()
    with pytest.raises(
        SuiteError, match=r"^the data has an image column but not the manifest's \['sha256'\]$"
    ):
        suite_document(frame.drop(columns="sha256"), data.target, data.columns, 0.1, "manifest")
