"""Stage `validate`: good data passes; bad data fails with one line per failed expectation naming
the expectation, the column and the offending values; unreadable data or suites stop it in one line;
data that meets the suite but holds the label in one of its columns stops it too (leakage).

Great Expectations takes 5-10 s to import, once per test process: the commands run in-process
(typer's CliRunner), and the runs that several tests look at happen once per module. The
committed suite is checked on the configured data; the stage's reports are checked on a made-up
table with every kind of column, whose faults are known exactly.
"""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from tables import mixed_frame, raw_frame
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.config import (
    EXPECTATION_SUITE,
)
from {{ cookiecutter.module_name }}.params import (
    load_params,
)
from {{ cookiecutter.module_name }}.suite import (
    DEFAULT_MARGIN,
    suite_document,
    suite_text,
)
from {{ cookiecutter.module_name }}.validation import (
    app,
)

runner = CliRunner()
ROWS = 300


@pytest.fixture(scope="module")
def table():
    """A made-up table: four numeric columns, a category, a text and the label (`band`)."""
    frame, settings = mixed_frame(rows=ROWS)
    rng = np.random.default_rng(1)
    frame.insert(2, "width", rng.uniform(1, 5, ROWS).round(3))
    frame.insert(3, "depth", rng.uniform(10, 20, ROWS).round(3))
    return frame, settings


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("validation")


@pytest.fixture(scope="module")
def suite_path(table, folder):
    """A suite written from the table, as `python -m <package>.suite` writes one."""
    frame, settings = table
    path = folder / "suite.json"
    document = suite_document(frame, settings.target, settings.columns, DEFAULT_MARGIN, "table")
    path.write_text(suite_text(document))
    return path


@pytest.fixture(scope="module")
def params_path(table, folder):
    """The project's params.yaml with the `data` section of the table."""
    document = load_params().model_dump()
    document["data"] = table[1].model_dump()
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def validate(frame, folder, suite_path, name, params=None):
    """Run the command on `frame`; return its result and its report folder."""
    data, reports = folder / f"{name}.csv", folder / f"{name}-reports"
    frame.to_csv(data, index=False)
    return invoke(data, suite_path, reports, params), reports


def invoke(data, suite, reports, params=None):
    """The command on `data`, with the `data` settings of `params` (default: the project's)."""
    arguments = ["--input-path", data, "--suite-path", suite, "--report-dir", reports]
    if params is not None:
        arguments += ["--params-file", params]
    result = runner.invoke(app, [str(argument) for argument in arguments])
    assert "Traceback" not in result.output
    return result


def data_docs_page(reports):
    """The Data Docs page of the run's result (its folder is named after the run's time)."""
    (page,) = (reports / "data_docs" / "validations").rglob("*.html")
    return page


@pytest.fixture(scope="module")
def expected_count(suite_path):
    return len(json.loads(suite_path.read_text())["expectations"])


@pytest.fixture(scope="module")
def good_run(table, folder, suite_path, params_path):
    return validate(table[0], folder, suite_path, "good", params_path)


def test_good_data_passes_and_writes_the_reports(good_run, suite_path, expected_count):
    result, reports = good_run
    assert result.exit_code == 0, result.output
    assert f"{expected_count} of {expected_count} expectations met" in result.output
    assert "validate: no single column predicts band: the best alone, " in result.output
    summary = json.loads((reports / "summary.json").read_text())
    expectations = json.loads(suite_path.read_text())["expectations"]
    assert summary["success"] is True
    assert summary["statistics"]["successful_expectations"] == len(expectations)
    # GE's description, in the suite's order.
    assert [entry["expectation_type"] for entry in summary["expectations"]] == [
        item["type"] for item in expectations
    ]
    assert (reports / "data_docs" / "index.html").is_file()
    assert str(data_docs_page(reports).relative_to(reports)) in result.output.replace("\\", "/")
    assert sorted(path.name for path in reports.iterdir()) == ["data_docs", "summary.json"]


def test_the_committed_suite_passes_on_the_configured_data(folder):
    """expectations/raw_data.json describes the project's data (`make data-new` rewrites it)."""
    result, _reports = validate(raw_frame(), folder, EXPECTATION_SUITE, "configured")
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def bad_run(table, folder, suite_path, params_path):
    """One run on data with one fault of each kind, each in its own column."""
    frame = table[0].copy()
    frame.loc[[4, 7], "reading"] = None
    frame.loc[3, "count"] = 999.0
    frame.loc[5, "band"] = "unknown"
    frame["width"] = frame["width"].astype(object)
    frame.loc[[3, 10], "width"] = ["abc", "12,5"]  # pandas reads the column as text
    frame.loc[6, "site"] = "site-9"
    frame.loc[8, "note"] = "far too long " * 10
    frame = frame.drop(columns="depth")
    result, reports = validate(frame, folder, suite_path, "bad", params_path)
    return result, reports, result.stderr.splitlines()


def test_bad_data_fails_with_one_line_per_failed_expectation(bad_run, expected_count):
    result, reports, lines = bad_run
    summary = json.loads((reports / "summary.json").read_text())
    failed = summary["statistics"]["unsuccessful_expectations"]
    assert result.exit_code == 1
    assert len(lines) == failed + 1
    assert all(line.startswith("validate: expect_") for line in lines[:-1])
    assert lines[-1].startswith(f"validate: {failed} of {expected_count} expectations failed on ")
    assert lines[-1].endswith(".html") and "summary.json" in lines[-1]


@pytest.mark.parametrize(
    "line",
    [
        "expect_column_values_to_not_be_null on column reading: "
        f"2 of {ROWS} values unexpected: null (rows 4, 7)",
        "expect_column_values_to_be_between on column count: "
        f"1 of {ROWS} values unexpected: 999.0 (row 3)",
        "expect_column_values_to_be_in_set on column band: "
        f'1 of {ROWS} values unexpected: "unknown" (row 5)',
        # Only the values that are not numbers: the column's numbers, read as text, pass.
        "expect_column_values_to_match_regex on column width: "
        f'2 of {ROWS} values unexpected: "12,5", "abc" (rows 3, 10)',
        "expect_column_values_to_be_in_set on column site: "
        f'1 of {ROWS} values unexpected: "site-9" (row 6)',
        "expect_column_value_lengths_to_be_between on column note: "
        f'1 of {ROWS} values unexpected: "{"far too long " * 10}" (row 8)',
        "expect_table_columns_to_match_ordered_list on the table: missing depth",
        "expect_column_values_to_not_be_null on column depth: could not be checked: "
        'The column "depth" in BatchData does not exist.',
    ],
    ids=[
        "nulls",
        "out-of-range",
        "unknown-label",
        "text-in-numbers",
        "unknown-category",
        "long-text",
        "no-column",
        "its-checks",
    ],
)
def test_each_fault_is_named_with_its_offending_values(bad_run, line):
    _result, _reports, lines = bad_run
    assert f"validate: {line}" in lines


def test_summary_is_ges_description_with_every_error_message(bad_run):
    _result, reports, _lines = bad_run
    summary = json.loads((reports / "summary.json").read_text())
    entries = {
        (entry["expectation_type"], entry["kwargs"].get("column")): entry
        for entry in summary["expectations"]
    }
    pattern = entries[("expect_column_values_to_match_regex", "width")]
    assert pattern["success"] is False
    assert sorted(pattern["result"]["partial_unexpected_list"]) == ["12,5", "abc"]
    missing = entries[("expect_column_values_to_be_between", "depth")]
    assert "does not exist" in missing["exception_info"]["exception_message"]
    assert "exception_traceback" not in missing["exception_info"]  # it holds machine paths


def test_data_docs_page_stays_readable_offline(bad_run):
    _result, reports, _lines = bad_run
    page = data_docs_page(reports).read_text(encoding="utf-8")
    # The status icons come from a CDN: offline, these styles show the words instead.
    assert 'content: "FAIL"' in page and "fa-times" in page
    assert "12,5" in page


def test_duplicated_rows_stop_it(table, folder, suite_path, params_path):
    """200 rows appended again: the expectations on whole rows and on repeated texts fail, every
    other one holds."""
    frame = table[0]
    twice = pd.concat([frame, frame.sample(200, random_state=0)], ignore_index=True)
    result, _reports = validate(twice, folder, suite_path, "duplicated", params_path)
    lines = result.stderr.splitlines()
    assert result.exit_code == 1
    assert lines[0] == (
        "validate: expect_compound_columns_to_be_unique on the table: "
        f"400 of {ROWS + 200} rows unexpected (80%, at most 5% allowed) (rows "
        + ", ".join(map(str, sorted(frame.sample(200, random_state=0).index)[:5]))
        + ", ...)"
    )
    # The repeated rows repeat their texts too: the text column's own uniqueness fails as well.
    assert lines[1].startswith("validate: expect_column_values_to_be_unique on column note: ")
    assert lines[2].startswith("validate: 2 of ")


def test_a_column_holding_the_label_stops_it_unless_allowed(table, folder, suite_path, params_path):
    """The label hidden in `reading`, inside its usual range: the suite sees nothing wrong."""
    frame = table[0].copy()
    frame["reading"] = frame["band"].map({"low": 0.0, "mid": 1.0, "high": 2.0})
    result, _reports = validate(frame, folder, suite_path, "leaky", params_path)
    assert result.exit_code == 1
    assert "expectations met" in result.stdout
    assert result.stderr.startswith("validate: reading (1.00) alone predicts band almost ")
    assert len(result.stderr.splitlines()) == 1

    document = yaml.safe_load(params_path.read_text())
    document["data"]["allow_leaky_features"] = ["reading"]
    allowed = folder / "params-allowing.yaml"
    allowed.write_text(yaml.safe_dump(document))
    result, _reports = validate(frame, folder, suite_path, "allowed", allowed)
    assert result.exit_code == 0, result.output
    assert "no single column predicts band: the best alone, site," in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist: run the data stage first"),
        (b"", "is empty"),
        (b"reading,band\n", "has a header but no rows"),
        (b"a,b\n1,2\n3,4,5,6\n", "cannot read"),
        (b"a,b\n\xff\xfe,1\n", "cannot read"),
    ],
    ids=["missing", "empty", "header-only", "ragged", "not-utf8"],
)
def test_unreadable_data_stops_in_one_line(content, message, suite_path, tmp_path):
    data = tmp_path / "dataset.csv"
    if content is not None:
        data.write_bytes(content)

    result = invoke(data, suite_path, tmp_path / "reports")

    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("validate: ") and message in result.stderr
    assert not (tmp_path / "reports").exists()


def suite_with(*expectations):
    return json.dumps({"name": "raw_data", "expectations": list(expectations)})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist: write one with `python -m"),
        ('{"expectations": [', "is not valid JSON"),
        ("[]", "must be a JSON object with an `expectations` list"),
        ('{"expectations": [], "expectation": []}', "has unknown keys: expectation"),
        (
            suite_with({"type": "expect_column_values_to_be_betwen", "kwargs": {"column": "a"}}),
            "expectation #1 (expect_column_values_to_be_betwen) is invalid: "
            "expect_column_values_to_be_betwen not found",
        ),
        (
            suite_with(
                {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
                {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a"}},
            ),
            "expectation #2 (expect_column_values_to_be_between) is invalid: "
            "min_value and max_value cannot both be None",
        ),
        (
            suite_with({"type": "expect_column_values_to_not_be_null", "kwargs": {"colum": "a"}}),
            "is invalid: column: field required; colum: extra fields not permitted",
        ),
        (suite_with("expect_column_values_to_not_be_null"), "must be an object with `type`"),
    ],
    ids=[
        "missing",
        "not-json",
        "not-an-object",
        "unknown-key",
        "unknown-type",
        "no-bounds",
        "misspelt-argument",
        "not-an-expectation",
    ],
)
def test_unreadable_or_invalid_suite_stops_in_one_line(content, message, table, tmp_path):
    data, suite = tmp_path / "dataset.csv", tmp_path / "suite.json"
    table[0].to_csv(data, index=False)
    if content is not None:
        suite.write_text(content)

    result = invoke(data, suite, tmp_path / "reports")

    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("validate: ") and message in result.stderr
    assert not (tmp_path / "reports").exists()
