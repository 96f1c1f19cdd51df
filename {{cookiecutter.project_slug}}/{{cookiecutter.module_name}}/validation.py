"""Stage `validate`: check the raw data against the expectation suite before anything learns.

`validate` runs the Great Expectations (GE) suite in expectations/raw_data.json on the raw CSV and
writes reports/validation/: summary.json (a dependency of the next stage), report.md (for people)
and GE's Data Docs HTML. A failed expectation stops the pipeline here (exit status 1), so a bad
batch never reaches training or the served model.

`build-suite` writes a starting suite from a dataset you trust; review it, then edit it by hand.
GE is imported inside this module only: the other stages do not pay its import time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer

from {{ cookiecutter.module_name }}.config import (
    EXPECTATION_SUITE,
    PROJ_ROOT,
    RAW_DATASET,
    VALIDATION_DIR,
    load_params,
)

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

app = typer.Typer(add_completion=False, help=__doc__)

SUMMARY_NAME = "summary.json"
REPORT_NAME = "report.md"
DATA_DOCS_NAME = "data_docs"
# How many unexpected values a report shows per expectation.
SAMPLE_SIZE = 10
# How many of them fit in a one-line description.
DETAIL_SAMPLE_SIZE = 5
# Top-level keys of Great Expectations' native suite format.
SUITE_KEYS = {"name", "id", "expectations", "suite_parameters", "meta", "notes"}


class ValidationInputError(ValueError):
    """The data or the suite cannot be read, so nothing can be validated."""


def _import_gx() -> Any:
    """Import Great Expectations here only: it costs seconds that the other stages must not pay."""
    # config (imported above) already sets this; it must be set before the import to take effect.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    # This module reports every problem itself; GE's own log lines would only repeat them.
    logging.getLogger("great_expectations").setLevel(logging.CRITICAL)
    return gx


def display_path(path: Path) -> str:
    """A path relative to the project when it is inside it, so reports hold no machine paths."""
    resolved = path.resolve()
    return str(resolved.relative_to(PROJ_ROOT)) if resolved.is_relative_to(PROJ_ROOT) else str(path)


def one_line(error: object) -> str:
    return " ".join(str(error).split())


def plain(value: Any) -> Any:
    """JSON fallback for what GE results may hold: numpy scalars and arrays, dates, the rest."""
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, default=plain)


# --- reading the inputs -----------------------------------------------------------------------


def read_dataset(path: Path) -> pd.DataFrame:
    """Read the CSV to validate; ValidationInputError if it is missing, unreadable or empty."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError as error:
        raise ValidationInputError(f"data file {path} does not exist") from error
    except pd.errors.EmptyDataError as error:
        raise ValidationInputError(f"data file {path} is empty") from error
    except (OSError, ValueError) as error:  # parser and encoding errors are ValueErrors
        raise ValidationInputError(f"cannot read {path} as CSV: {one_line(error)}") from error
    if frame.empty:
        raise ValidationInputError(f"data file {path} has a header but no rows")
    return frame


def read_suite(path: Path) -> dict[str, Any]:
    """Load a suite file (Great Expectations' native JSON format) and check that GE can build it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ValidationInputError(
            f"suite file {path} does not exist: write one with `build-suite`"
        ) from error
    except (OSError, ValueError) as error:
        raise ValidationInputError(
            f"suite file {path} is not valid JSON: {one_line(error)}"
        ) from error
    gx_suite(document, source=str(path))
    return document


def gx_suite(document: Any, source: str = "the suite") -> ExpectationSuite:
    """Build a GE suite from its native JSON document, checking every expectation.

    GE itself logs and skips an expectation it cannot build; here a bad one is an error instead,
    so a typo in the suite can never silently weaken the validation.
    """
    gx = _import_gx()
    from great_expectations.exceptions import GreatExpectationsError
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    if not isinstance(document, dict) or not isinstance(document.get("expectations"), list):
        raise ValidationInputError(f"{source} must be a JSON object with an `expectations` list")
    unknown = sorted(set(document) - SUITE_KEYS)
    if unknown:
        raise ValidationInputError(f"{source} has unknown keys: {', '.join(unknown)}")

    configurations = []
    for number, item in enumerate(document["expectations"], start=1):
        label = item.get("type", "without a type") if isinstance(item, dict) else repr(item)
        try:
            if not isinstance(item, dict):
                raise TypeError("an expectation must be an object with `type` and `kwargs`")
            configuration = ExpectationConfiguration(**item)
            configuration.to_domain_obj()  # builds the expectation: checks its type and kwargs
        except (GreatExpectationsError, TypeError, ValueError) as error:
            raise ValidationInputError(
                f"{source}: expectation #{number} ({label}) is invalid: {one_line(error)}"
            ) from error
        configurations.append(configuration)
    try:
        suite = gx.ExpectationSuite(
            name=document.get("name") or "raw_data",
            expectations=configurations,
            suite_parameters=document.get("suite_parameters"),
            meta=document.get("meta"),
            notes=document.get("notes"),
        )
    except (GreatExpectationsError, TypeError, ValueError) as error:
        raise ValidationInputError(f"{source} is invalid: {one_line(error)}") from error
    if len(suite.expectations) != len(configurations):  # GE skipped one: never validate less
        raise ValidationInputError(f"{source}: some expectations could not be built")
    return suite


# --- running the suite ------------------------------------------------------------------------


def run_suite(
    frame: pd.DataFrame, document: dict[str, Any]
) -> tuple[AbstractDataContext, ExpectationSuiteValidationResult]:
    """Validate a dataframe against a suite document; return the in-memory GE context (it holds
    the result, for Data Docs) and the result."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # Ephemeral: GE keeps its stores in memory, so no GE project folder lands in the repository.
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(gx_suite(document))
    batch_definition = (
        context.data_sources.add_pandas(name="raw_data")
        .add_dataframe_asset(name="dataframe")
        .add_batch_definition_whole_dataframe("whole_dataframe")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
    )
    # GE returns results grouped by metric; the suite's order reads better in the reports.
    order = {expectation.id: index for index, expectation in enumerate(suite.expectations)}
    result.results.sort(key=lambda item: order.get(item.expectation_config.id, len(order)))
    return context, result


# --- summarising the result -------------------------------------------------------------------


def exception_message(exception_info: Any) -> str | None:
    """The first error message in GE's exception info (flat, or keyed by metric)."""
    if not isinstance(exception_info, dict):
        return None
    infos = [exception_info] if "raised_exception" in exception_info else exception_info.values()
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            message = one_line(info.get("exception_message") or "the check raised an error")
            return message.removeprefix("Error: ")
    return None


def distinct_sample(details: dict[str, Any]) -> list[Any]:
    """Up to SAMPLE_SIZE distinct unexpected values, the most frequent first."""
    counted = details.get("partial_unexpected_counts")
    candidates = [item["value"] for item in counted] if counted else []
    values: list[Any] = []
    for value in candidates or details.get("partial_unexpected_list") or []:
        if value not in values:  # GE counts each missing value apart: keep one null
            values.append(value)
    return values[:SAMPLE_SIZE]


def describe(entry: dict[str, Any], kwargs: dict[str, Any]) -> str:
    """One human sentence on what went wrong (or was observed) for one expectation."""
    if entry["error"]:
        return f"error: {entry['error']}"
    if entry["expectation"] == "expect_table_columns_to_match_ordered_list" and isinstance(
        entry.get("observed_value"), list
    ):
        expected, observed = kwargs.get("column_list") or [], entry["observed_value"]
        parts = [
            f"{label}: {', '.join(map(str, names))}"
            for label, names in (
                ("missing", [name for name in expected if name not in observed]),
                ("unexpected", [name for name in observed if name not in expected]),
            )
            if names
        ]
        return "; ".join(parts) or "columns are out of order"
    if entry["unexpected_count"] is not None:
        shown = entry["sample_unexpected"][:DETAIL_SAMPLE_SIZE]
        sample = ", ".join(to_json(value) for value in shown)
        return f"{entry['unexpected_count']} unexpected value(s)" + (
            f", e.g. {sample}" if sample else ""
        )
    if "observed_value" in entry:
        return f"observed {to_json(entry['observed_value'])}"
    return ""


def checked_columns(expectation_type: str, kwargs: dict[str, Any]) -> list[str]:
    """The columns an expectation checks: none for a table-level one."""
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_A" in kwargs:  # column-pair expectations
        return [kwargs["column_A"], kwargs["column_B"]]
    if not expectation_type.startswith("expect_table_"):  # multicolumn expectations
        return list(kwargs.get("column_list") or [])
    return []


def summarize(result: ExpectationSuiteValidationResult, columns: list[str]) -> dict[str, Any]:
    """A compact, JSON-ready account of a validation run on data with these columns."""
    expectations = []
    for item in result.to_json_dict()["results"]:
        config, details = item["expectation_config"], item.get("result") or {}
        kwargs = config.get("kwargs") or {}
        checked = checked_columns(config["type"], kwargs)
        missing = [name for name in checked if name not in columns]
        entry: dict[str, Any] = {
            "expectation": config["type"],
            "column": ", ".join(map(str, checked)) or None,
            "success": bool(item["success"]),
            "unexpected_count": details.get("unexpected_count"),
            "sample_unexpected": distinct_sample(details),
            # GE's own message for a missing column varies by expectation, some are cryptic.
            "error": f"column {missing[0]} is not in the data"
            if missing
            else exception_message(item.get("exception_info")),
        }
        if "observed_value" in details:
            entry["observed_value"] = details["observed_value"]
        entry["detail"] = "" if entry["success"] else describe(entry, kwargs)
        expectations.append(entry)
    failed = sum(not entry["success"] for entry in expectations)
    return {
        "success": bool(result.success),
        "evaluated": len(expectations),
        "passed": len(expectations) - failed,
        "failed": failed,
        "expectations": expectations,
    }


def failure_lines(summary: dict[str, Any]) -> list[str]:
    """One line per failed expectation, naming the expectation and its column."""
    return [
        f"{entry['expectation']} on {where(entry)}: {entry['detail']}"
        for entry in summary["expectations"]
        if not entry["success"]
    ]


def where(entry: dict[str, Any]) -> str:
    return f"column {entry['column']}" if entry["column"] else "the table"


def markdown_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def report_table(rows: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """Markdown table lines: number, expectation, column, result, details."""
    lines = ["| # | Expectation | Column | Result | Details |", "|---|---|---|---|---|"]
    for number, entry in rows:
        cells = [
            str(number),
            f"`{entry['expectation']}`",
            markdown_cell(entry["column"] or "(table)"),
            "pass" if entry["success"] else "**FAIL**",
            markdown_cell(entry["detail"]),
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def render_report(summary: dict[str, Any]) -> str:
    """report.md: the verdict, the failed expectations, then every expectation."""
    numbered = list(enumerate(summary["expectations"], start=1))
    failed = [(number, entry) for number, entry in numbered if not entry["success"]]
    lines = [
        "# Data validation report",
        "",
        f"**{'PASSED' if summary['success'] else 'FAILED'}**: {summary['passed']} of "
        f"{summary['evaluated']} expectations met on `{summary['data']}` ({summary['rows']} rows) "
        f"with the suite `{summary['suite']}`.",
        "",
        f"The same results in detail, as HTML (GE's Data Docs): `{summary['data_docs']}`.",
        "",
    ]
    if failed:
        lines += ["## Failed expectations", "", *report_table(failed), ""]
    lines += ["## All expectations", "", *report_table(numbered)]
    return "\n".join(lines) + "\n"


def build_data_docs(context: AbstractDataContext, folder: Path) -> Path:
    """Render GE's Data Docs for the context's results into `folder`; return its index.html."""
    # The pages load their CSS and JavaScript from CDNs: offline they open unstyled, still readable.
    if folder.exists():
        shutil.rmtree(folder)  # only this run's result: stale pages would mislead
    context.variables.data_docs_sites = {
        "local_site": {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(folder),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    context.build_data_docs()
    return folder / "index.html"


# --- building a suite from data ---------------------------------------------------------------


def widened_range(low: float, high: float, margin: float, integer: bool) -> tuple[float, float]:
    """[low, high] widened by margin x (high - low) on each side, rounded outward to the leading
    digit of that widening (e.g. 6.98..28.11 with 0.1 -> 4..31), never below 0 for data that is
    never negative."""
    padding = margin * ((high - low) or abs(high) or 1.0)
    if padding <= 0:
        return low, high
    exponent = math.floor(math.log10(padding))
    step = max(10.0**exponent, 1.0) if integer else 10.0**exponent
    digits = max(0, -exponent)
    lower = round(math.floor((low - padding) / step) * step, digits)
    upper = round(math.ceil((high + padding) / step) * step, digits)
    if low >= 0:
        lower = max(lower, 0.0)
    if integer:
        return int(lower), int(upper)
    return float(lower), float(upper)


def not_null_kwargs(series: pd.Series) -> dict[str, Any]:
    """No nulls if the data has none; otherwise at least the observed share of values (rounded
    down to a percent), so the suite always passes on the data it was built from."""
    nulls = int(series.isna().sum())
    if not nulls:
        return {"column": series.name}
    return {"column": series.name, "mostly": math.floor(100 * (1 - nulls / len(series))) / 100}


def expectations_for(frame: pd.DataFrame, target: str, margin: float) -> list[dict[str, Any]]:
    """The expectation configurations (native GE format) that `frame` meets, in suite order."""
    rows = len(frame)
    configs: list[dict[str, Any]] = [
        {
            "type": "expect_table_columns_to_match_ordered_list",
            "kwargs": {"column_list": [str(name) for name in frame.columns]},
        },
        # Half to double the reference size: wide enough for a new export of the same source,
        # narrow enough to catch a truncated file or one appended twice.
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": max(1, rows // 2), "max_value": 2 * rows},
        },
    ]
    for name in frame.columns:
        series = frame[name]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if numeric and name != target:
            # Text in a numeric column makes pandas read it as `object`: this catches it first.
            configs.append(
                {
                    "type": "expect_column_values_to_be_in_type_list",
                    "kwargs": {"column": name, "type_list": [str(series.dtype)]},
                }
            )
        configs.append(
            {"type": "expect_column_values_to_not_be_null", "kwargs": not_null_kwargs(series)}
        )
        if name == target:
            configs.append(
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {
                        "column": name,
                        "value_set": sorted(series.dropna().unique().tolist(), key=str),
                    },
                }
            )
        elif numeric and series.notna().any():
            low, high = widened_range(
                float(series.min()),
                float(series.max()),
                margin,
                integer=pd.api.types.is_integer_dtype(series),
            )
            configs.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": name, "min_value": low, "max_value": high},
                }
            )
    return configs


def suite_document(
    frame: pd.DataFrame, target: str, margin: float, name: str, source: str
) -> dict[str, Any]:
    """A complete suite in GE's native JSON format (without ids, so it is deterministic)."""
    if target not in frame.columns:
        raise ValidationInputError(f"the label column {target!r} (data.target) is not in {source}")
    gx = _import_gx()
    expectations = expectations_for(frame, target, margin)
    for config in expectations:
        config["meta"] = {}  # where a team keeps its notes on an expectation
    return {
        "name": name,
        "expectations": expectations,
        "meta": {
            "great_expectations_version": gx.__version__,
            "generated_by": {
                "command": "build-suite",
                "source": source,
                "rows": len(frame),
                "margin": margin,
            },
        },
        "notes": "Generated by build-suite from data the team trusts; review it and edit it by "
        "hand as you learn what valid data looks like (see expectations/README.md).",
    }


# --- commands ---------------------------------------------------------------------------------


def stop(command: str, message: str) -> typer.Exit:
    """Print a one-line error; return the exit (status 1) to raise: bad input shows no traceback."""
    typer.echo(f"{command}: {message}", err=True)
    return typer.Exit(1)


@app.command()
def validate(
    input_path: Path = RAW_DATASET,
    suite_path: Path = EXPECTATION_SUITE,
    report_dir: Path = VALIDATION_DIR,
) -> None:
    """Validate the data against the suite and write the reports; exit 1 if an expectation fails."""
    try:
        frame = read_dataset(input_path)
        document = read_suite(suite_path)
    except ValidationInputError as error:
        raise stop("validate", str(error)) from None
    context, result = run_suite(frame, document)
    summary = {
        "data": display_path(input_path),
        "rows": len(frame),
        "suite": display_path(suite_path),
        "data_docs": display_path(report_dir / DATA_DOCS_NAME / "index.html"),
        **summarize(result, [str(name) for name in frame.columns]),
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / SUMMARY_NAME).write_text(to_json(summary, indent=2) + "\n", encoding="utf-8")
    (report_dir / REPORT_NAME).write_text(render_report(summary), encoding="utf-8")
    build_data_docs(context, report_dir / DATA_DOCS_NAME)

    if not summary["success"]:
        for line in failure_lines(summary):
            typer.echo(f"validate: FAILED {line}", err=True)
        raise stop(
            "validate",
            f"{summary['failed']} of {summary['evaluated']} expectations failed on "
            f"{summary['data']}; see {display_path(report_dir / REPORT_NAME)}",
        )
    typer.echo(
        f"validate: {summary['passed']}/{summary['evaluated']} expectations met on "
        f"{summary['data']} ({summary['rows']} rows) -> {display_path(report_dir)}"
    )


@app.command()
def build_suite(
    input_path: Path = RAW_DATASET,
    output_path: Path = EXPECTATION_SUITE,
    margin: Annotated[
        float, typer.Option(min=0.0, help="Widen each numeric range by this share of its width.")
    ] = 0.1,
) -> None:
    """Write a suite that the given (training) data meets; review it before committing it."""
    target = load_params()["data"]["target"]
    try:
        frame = read_dataset(input_path)
        document = suite_document(frame, target, margin, output_path.stem, input_path.name)
    except ValidationInputError as error:
        raise stop("build-suite", str(error)) from None
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    typer.echo(
        f"build-suite: {len(document['expectations'])} expectations from "
        f"{display_path(input_path)} -> {display_path(output_path)}"
    )


if __name__ == "__main__":
    app()
