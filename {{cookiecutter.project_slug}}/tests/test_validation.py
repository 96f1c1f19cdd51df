"""The validate stage: the shipped suite accepts the default data, and each kind of bad data fails
naming the expectation and column at fault.

Great Expectations is imported once, on the first test that needs it; the later ones reuse it.
"""

import json
import math
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.config import (
    EXPECTATION_SUITE,
    load_params,
)
from {{ cookiecutter.module_name }}.dataset import builtin_dataset
from {{ cookiecutter.module_name }}.validation import (
    app,
    read_dataset,
    read_suite,
    run_suite,
    suite_document,
    summarize,
    widened_range,
)

TARGET = "diagnosis"
runner = CliRunner()


@pytest.fixture(scope="session")
def default_frame():
    """The default raw data, built here so the tests do not depend on the pipeline having run."""
    return builtin_dataset(TARGET)


@pytest.fixture(scope="session")
def built_suite(default_frame):
    """A suite built from the default data (the shipped one may have been edited by the team)."""
    return suite_document(default_frame, TARGET, 0.1, "raw_data", "dataset.csv")


@pytest.fixture
def write_csv(tmp_path):
    def write(frame, name="dataset.csv"):
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return write


def invoke(*args):
    result = runner.invoke(app, [str(arg) for arg in args])
    assert "Traceback" not in result.output
    return result


def failures(frame, suite):
    """The summary of `suite` on `frame`, and the (expectation, column) of each failure."""
    _context, result = run_suite(frame, suite)
    summary = summarize(result, list(frame.columns))
    return summary, [
        (entry["expectation"], entry["column"])
        for entry in summary["expectations"]
        if not entry["success"]
    ]


@pytest.mark.skipif(
    load_params()["data"]["source"] != "builtin",
    reason="the shipped suite describes the builtin data; yours is checked by `dvc repro`",
)
def test_shipped_suite_passes_on_default_data(default_frame, write_csv, tmp_path):
    data = write_csv(default_frame)
    reports = tmp_path / "reports"

    result = invoke(
        "validate", "--input-path", data, "--suite-path", EXPECTATION_SUITE, "--report-dir", reports
    )

    assert result.exit_code == 0, result.output
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["success"] is True
    assert summary["failed"] == 0
    assert summary["evaluated"] == summary["passed"] > 0
    assert "PASSED" in (reports / "report.md").read_text()
    assert (reports / "data_docs" / "index.html").is_file()


def test_importing_the_stage_does_not_import_great_expectations():
    # The other stages import this package: they must not pay Great Expectations' import time.
    module = read_suite.__module__
    code = f"import sys, {module}; sys.exit('great_expectations' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_shipped_suite_is_a_valid_native_suite():
    assert read_suite(EXPECTATION_SUITE)["expectations"]


def drop_column(frame):
    return frame.drop(columns="mean_area")


def null_value(frame):
    frame.loc[4, "mean_texture"] = None
    return frame


def out_of_range(frame):
    frame.loc[3, "mean_radius"] = 999.0
    return frame


def unseen_label(frame):
    frame.loc[5, TARGET] = "unknown"
    return frame


def too_few_rows(frame):
    return frame.head(100)


@pytest.mark.parametrize(
    ("corrupt", "expected", "sample"),
    [
        (null_value, ("expect_column_values_to_not_be_null", "mean_texture"), None),
        (out_of_range, ("expect_column_values_to_be_between", "mean_radius"), 999.0),
        (unseen_label, ("expect_column_values_to_be_in_set", TARGET), "unknown"),
        (too_few_rows, ("expect_table_row_count_to_be_between", None), None),
    ],
)
def test_corruption_fails_exactly_the_right_expectation(
    corrupt, expected, sample, default_frame, built_suite, write_csv
):
    # Through a CSV file, as the stage reads it.
    frame = read_dataset(write_csv(corrupt(default_frame.copy())))

    summary, failed = failures(frame, built_suite)

    assert failed == [expected]
    if sample is not None:
        entry = next(item for item in summary["expectations"] if not item["success"])
        assert sample in entry["sample_unexpected"]
        assert json.dumps(sample) in entry["detail"]


def test_missing_column_fails_on_the_column_list_and_names_the_column(
    default_frame, built_suite, write_csv
):
    frame = read_dataset(write_csv(drop_column(default_frame.copy())))

    summary, failed = failures(frame, built_suite)

    assert ("expect_table_columns_to_match_ordered_list", None) in failed
    assert {column for _type, column in failed} == {None, "mean_area"}
    table = next(e for e in summary["expectations"] if e["column"] is None and not e["success"])
    assert table["detail"] == "missing: mean_area"


def test_text_in_numeric_column_fails_its_type(default_frame, built_suite, write_csv):
    frame = default_frame.copy()
    frame["mean_smoothness"] = frame["mean_smoothness"].astype(object)
    frame.loc[0, "mean_smoothness"] = "not measured"
    frame = read_dataset(write_csv(frame))

    _summary, failed = failures(frame, built_suite)

    assert ("expect_column_values_to_be_in_type_list", "mean_smoothness") in failed
    assert {column for _type, column in failed} == {"mean_smoothness"}


def test_failing_validation_exits_1_and_prints_one_line_per_failure(
    default_frame, built_suite, write_csv, tmp_path
):
    data = write_csv(unseen_label(out_of_range(default_frame.copy())))
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(built_suite))
    reports = tmp_path / "reports"

    result = invoke(
        "validate", "--input-path", data, "--suite-path", suite, "--report-dir", reports
    )

    assert result.exit_code == 1
    failed_lines = [line for line in result.output.splitlines() if "FAILED" in line]
    assert len(failed_lines) == 2
    assert "expect_column_values_to_be_between on column mean_radius" in failed_lines[0]
    assert f"expect_column_values_to_be_in_set on column {TARGET}" in failed_lines[1]
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["success"] is False
    assert summary["failed"] == 2
    report = (reports / "report.md").read_text()
    assert "FAILED" in report
    assert "| **FAIL** | 1 unexpected value(s), e.g. 999.0 |" in report
    assert (reports / "data_docs" / "index.html").is_file()


def test_added_expectations_report_their_columns_and_observed_values(
    default_frame, built_suite, write_csv, tmp_path
):
    frame = default_frame.copy()
    frame["worst_area"] = frame["worst_area"].round().astype(int)
    frame.loc[0, "worst_radius"] = 1.0  # below its own mean: breaks the pair expectation
    data = write_csv(frame)
    suite = dict(built_suite)
    suite["expectations"] = [
        item
        for item in built_suite["expectations"]
        if item["kwargs"].get("column") not in ("worst_area", "worst_radius")
    ] + [
        {  # the example of expectations/README.md
            "type": "expect_column_pair_values_a_to_be_greater_than_b",
            "kwargs": {"column_A": "worst_radius", "column_B": "mean_radius", "or_equal": True},
        },
        {
            "type": "expect_column_max_to_be_between",
            "kwargs": {"column": "worst_area", "max_value": 10},
        },
    ]
    suite_path = tmp_path / "suite.json"
    suite_path.write_text(json.dumps(suite))
    reports = tmp_path / "reports"

    result = invoke(
        "validate", "--input-path", data, "--suite-path", suite_path, "--report-dir", reports
    )

    assert result.exit_code == 1
    assert (
        "expect_column_pair_values_a_to_be_greater_than_b on column worst_radius, mean_radius"
        in result.output
    )
    summary = json.loads((reports / "summary.json").read_text())
    observed = {
        entry["expectation"]: entry.get("observed_value") for entry in summary["expectations"]
    }
    assert observed["expect_column_max_to_be_between"] == int(frame["worst_area"].max())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"mean_radius,diagnosis\n", "no rows"),
        (b"a,b\n1,2\n3,4,5,6\n", "cannot read"),
    ],
)
def test_unreadable_data_fails_cleanly(content, message, tmp_path):
    data = tmp_path / "dataset.csv"
    if content is not None:
        data.write_bytes(content)

    result = invoke("validate", "--input-path", data, "--report-dir", tmp_path / "reports")

    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "reports").exists()


UNKNOWN_EXPECTATION = {
    "type": "expect_the_moon",
    "kwargs": {},
}
BETWEEN_WITHOUT_BOUNDS = {
    "type": "expect_column_values_to_be_between",
    "kwargs": {"column": "mean_radius"},
}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ('{"expectations": [', "is not valid JSON"),
        ("[]", "`expectations` list"),
        (json.dumps({"expectations": [], "expectation": []}), "unknown keys: expectation"),
        (json.dumps({"expectations": [UNKNOWN_EXPECTATION]}), "expect_the_moon"),
        (
            json.dumps({"expectations": [BETWEEN_WITHOUT_BOUNDS]}),
            "expectation #1 (expect_column_values_to_be_between) is invalid",
        ),
    ],
)
def test_missing_or_malformed_suite_fails_cleanly(
    content, message, default_frame, write_csv, tmp_path
):
    data = write_csv(default_frame)
    suite = tmp_path / "suite.json"
    if content is not None:
        suite.write_text(content)

    reports = tmp_path / "reports"
    result = invoke(
        "validate", "--input-path", data, "--suite-path", suite, "--report-dir", reports
    )

    assert result.exit_code == 1
    assert message in result.output


def test_build_suite_round_trip_is_deterministic_and_validates_its_data(write_csv, tmp_path):
    frame = builtin_dataset(load_params()["data"]["target"]).head(300)
    frame.loc[7, "mean_texture"] = None  # a column with a few nulls gets a `mostly`
    frame["worst_area"] = frame["worst_area"].round().astype(int)
    data = write_csv(frame)
    first, second = tmp_path / "first" / "suite.json", tmp_path / "second" / "suite.json"

    assert invoke("build-suite", "--input-path", data, "--output-path", first).exit_code == 0
    assert invoke("build-suite", "--input-path", data, "--output-path", second).exit_code == 0
    reports = tmp_path / "reports"
    result = invoke(
        "validate", "--input-path", data, "--suite-path", first, "--report-dir", reports
    )

    assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    kwargs = {
        (item["type"], item["kwargs"].get("column")): item["kwargs"]
        for item in json.loads(first.read_text())["expectations"]
    }
    assert kwargs[("expect_column_values_to_not_be_null", "mean_texture")]["mostly"] == 0.99
    assert kwargs[("expect_column_values_to_be_in_type_list", "worst_area")]["type_list"] == [
        "int64"
    ]
    assert kwargs[("expect_table_row_count_to_be_between", None)] == {
        "min_value": 150,
        "max_value": 600,
    }


def test_build_suite_without_the_label_column_fails_cleanly(default_frame, write_csv, tmp_path):
    data = write_csv(default_frame.drop(columns=TARGET))

    result = invoke("build-suite", "--input-path", data, "--output-path", tmp_path / "suite.json")

    assert result.exit_code == 1
    assert "label column" in result.output


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
    ],
)
def test_widened_range(low, high, margin, integer, expected):
    result = widened_range(low, high, margin, integer)
    assert result == expected
    assert all(isinstance(bound, int if integer else float) for bound in result)


def test_widened_range_always_contains_the_data():
    for low, high in [(0.0123, 0.0456), (-3.3, 1234.5), (1e-6, 2e-6), (1e6, 3e6)]:
        lower, upper = widened_range(low, high, 0.1, integer=False)
        assert lower <= low and upper >= high
        assert not math.isclose(lower, low) and not math.isclose(upper, high)
