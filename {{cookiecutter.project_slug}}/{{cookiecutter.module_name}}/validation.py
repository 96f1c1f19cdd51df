"""Stage `validate`: check the raw data against the expectation suite before anything learns.

Great Expectations (GE) runs expectations/raw_data.json on data/raw/dataset.csv and writes
reports/validation/: summary.json (GE's description of the result) and data_docs/. A failed
expectation prints one line naming it, its column and the offending values, and exits 1; so does
a column that predicts the target alone (leakage.py) unless `data.allow_leaky_features` lists it.
`python -m <package>.suite` writes a starting suite. GE is imported inside functions only (5-10 s),
so the other stages do not pay for it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd
import typer

from . import leakage
from .config import EXPECTATION_SUITE, PARAMS_FILE, RAW_DATASET, VALIDATION_DIR, display_path
from .errors import PipelineError, reported
from .params import load_params

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

app = typer.Typer(add_completion=False, help=__doc__)

SUITE_KEYS = {"name", "id", "expectations", "suite_parameters", "meta", "notes"}
# How many distinct offending values a failure line shows (summary.json keeps GE's 20).
SHOWN_VALUES = 5
# Data Docs load icons and styles from CDNs: offline, these rules show each status as a word and
# keep tracebacks folded (online, the CDN's rules come later and win).
OFFLINE_STYLES = """\
.fa-check-circle::before { content: "pass"; color: #1a7f37; }
.fa-times::before { content: "FAIL"; color: #cf222e; }
.fa-exclamation-triangle::before { content: "ERROR"; color: #9a6700; }
.collapse:not(.show) { display: none; }
"""


class InvalidDataError(PipelineError):
    """The data or the suite cannot be read, or the data breaks the suite."""


def import_gx() -> Any:
    import great_expectations as gx

    # Every problem is reported here, in one line; GE's log lines would only repeat them.
    logging.getLogger("great_expectations").setLevel(logging.CRITICAL)
    return gx


def read_data(path: Path) -> pd.DataFrame:
    """Read a CSV as it is, without type coercion."""
    shown = display_path(path)
    try:
        frame = pd.read_csv(path, encoding="utf-8")
    except FileNotFoundError:
        raise InvalidDataError(f"{shown} does not exist: run the data stage first") from None
    except pd.errors.EmptyDataError:
        raise InvalidDataError(f"{shown} is empty") from None
    except (OSError, ValueError) as error:  # parser and encoding errors are ValueErrors
        raise InvalidDataError(f"cannot read {shown} as CSV: {error}") from None
    if frame.empty:
        raise InvalidDataError(f"{shown} has a header but no rows")
    return frame


def read_suite(path: Path) -> ExpectationSuite:
    shown = display_path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidDataError(
            f"{shown} does not exist: write one with `python -m {__package__}.suite`"
        ) from None
    except (OSError, ValueError) as error:
        raise InvalidDataError(f"{shown} is not valid JSON: {error}") from None
    return gx_suite(document, shown)


def gx_suite(document: Any, source: str) -> ExpectationSuite:
    """Build a GE suite from its native JSON document, refusing any expectation GE cannot build
    (GE itself logs and skips it, so a typo would silently weaken the validation)."""
    gx = import_gx()
    from great_expectations.exceptions import GreatExpectationsError
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    if not isinstance(document, dict) or not isinstance(document.get("expectations"), list):
        raise InvalidDataError(f"{source} must be a JSON object with an `expectations` list")
    unknown = sorted(set(document) - SUITE_KEYS)
    if unknown:
        raise InvalidDataError(f"{source} has unknown keys: {', '.join(unknown)}")
    expectations = []
    for number, item in enumerate(document["expectations"], start=1):
        if not isinstance(item, dict):
            raise InvalidDataError(
                f"{source}: expectation #{number} ({item!r}) must be an object with `type`"
            )
        try:
            expectations.append(ExpectationConfiguration(**item).to_domain_obj())
        except (GreatExpectationsError, TypeError, ValueError) as error:
            raise InvalidDataError(
                f"{source}: expectation #{number} ({item.get('type', 'without a type')}) is "
                f"invalid: {problem(error)}"
            ) from None
    try:
        return gx.ExpectationSuite(
            name=document.get("name") or "raw_data",
            expectations=expectations,
            suite_parameters=document.get("suite_parameters"),
            meta=document.get("meta"),
            notes=document.get("notes"),
        )
    except (GreatExpectationsError, TypeError, ValueError) as error:
        raise InvalidDataError(f"{source} is invalid: {problem(error)}") from None


def problem(error: Exception) -> str:
    """One line for an error GE raised: pydantic's field errors (GE's expectations are pydantic
    v1 models), or the text."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    problems = [f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in errors()]
    return "; ".join(problems).replace("__root__: ", "")


def run_suite(
    frame: pd.DataFrame, suite: ExpectationSuite
) -> tuple[AbstractDataContext, ExpectationSuiteValidationResult]:
    """Validate a dataframe; return the in-memory GE context (it holds the result for Data Docs)
    and the result, its expectations in suite order."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # Ephemeral: GE keeps its stores in memory, so no GE project folder lands in the repository.
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(suite)
    batch_definition = (
        context.data_sources.add_pandas(name="raw_data")
        .add_dataframe_asset(name="dataframe")
        .add_batch_definition_whole_dataframe("whole_dataframe")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": frame}, result_format={"result_format": "SUMMARY"}
    )
    # GE groups results by the metrics they share; the suite's order is the one people wrote.
    order = {expectation.id: index for index, expectation in enumerate(suite.expectations)}
    result.results.sort(key=lambda item: order.get(item.expectation_config.id, len(order)))
    return context, result


def describe(result: ExpectationSuiteValidationResult) -> dict[str, Any]:
    """GE's `describe_dict()`, keeping the error message of each expectation: GE keeps only those
    at the top level of its exception info, not those per metric (a missing column, a range check
    on text). No traceback: it holds this machine's paths."""
    description = result.describe_dict()
    for entry, item in zip(description["expectations"], result.results, strict=True):
        info = item.exception_info if isinstance(item.exception_info, dict) else {}
        infos = [info] if "raised_exception" in info else info.values()
        raised = [one for one in infos if isinstance(one, dict) and one.get("raised_exception")]
        entry.pop("exception_info", None)
        if raised:
            text = raised[0].get("exception_message") or "the check raised an error"
            message = " ".join(str(text).split())
            entry["exception_info"] = {
                "raised_exception": True,
                "exception_message": message.removeprefix("Error: "),
            }
    return description


def failure_line(entry: dict[str, Any]) -> str:
    """The expectation, its column and what was wrong: the offending values of a column
    expectation, or what GE observed for the others."""
    result, kwargs = entry.get("result") or {}, entry["kwargs"]
    if "column" in kwargs:
        where = f"column {kwargs['column']}"
    elif "column_A" in kwargs:  # column-pair expectations
        where = f"columns {kwargs['column_A']}, {kwargs['column_B']}"
    else:
        where = "the table"
    return f"{entry['expectation_type']} on {where}: {what_failed(entry, result, kwargs)}"


def what_failed(entry: dict[str, Any], result: dict[str, Any], kwargs: dict[str, Any]) -> str:
    if "exception_info" in entry:
        return f"could not be checked: {entry['exception_info']['exception_message']}"
    rows = [str(row) for row in result.get("partial_unexpected_index_list") or []]
    at = f" (row{'s' if len(rows) > 1 else ''} {shortened(rows)})" if rows else ""
    total = result.get("element_count")
    if "unexpected_count" in result and "column_list" in kwargs:  # a check of whole rows
        count = result["unexpected_count"]
        share = f"{100 * count / (total or 1):.0f}%"
        if "mostly" in kwargs:
            share += f", at most {100 * (1 - kwargs['mostly']):.0f}% allowed"
        return f"{count} of {total} rows unexpected ({share}){at}"
    if "unexpected_count" in result:
        counted = result.get("partial_unexpected_counts") or []
        values = [item["value"] for item in counted] or result.get("partial_unexpected_list", [])
        shown = shortened(list(dict.fromkeys(json.dumps(value) for value in values)))  # one null
        return f"{result['unexpected_count']} of {total} values unexpected: {shown}{at}"
    observed, expected = result.get("observed_value"), kwargs.get("column_list")
    if isinstance(observed, list) and isinstance(expected, list):
        missing = [str(name) for name in expected if name not in observed]
        extra = [str(name) for name in observed if name not in expected]
        differences = [f"missing {', '.join(missing)}"] if missing else []
        differences += [f"unexpected {', '.join(extra)}"] if extra else []
        return "; ".join(differences) or "the columns are in another order"
    return f"observed {json.dumps(observed)}"


def shortened(items: list[str]) -> str:
    return ", ".join(items[:SHOWN_VALUES]) + (", ..." if len(items) > SHOWN_VALUES else "")


def build_data_docs(context: AbstractDataContext, folder: Path) -> Path:
    """Render GE's Data Docs of the context's one result into `folder`; return that result's
    page (index.html lists it, but only with network access: see expectations/README.md)."""
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
    # GE inlines <plugins>/custom_data_docs/styles/data_docs_custom_styles.css into each page.
    with tempfile.TemporaryDirectory() as plugins:
        styles = Path(plugins, "custom_data_docs", "styles")
        styles.mkdir(parents=True)
        (styles / "data_docs_custom_styles.css").write_text(OFFLINE_STYLES, encoding="utf-8")
        context.variables.plugins_directory = plugins
        context.build_data_docs()
    (key,) = context.validation_results_store.list_keys()
    (site,) = context.get_docs_sites_urls(resource_identifier=key)
    return Path(url2pathname(urlparse(site["site_url"]).path))


@app.command()
def main(
    input_path: Path = RAW_DATASET,
    suite_path: Path = EXPECTATION_SUITE,
    report_dir: Path = VALIDATION_DIR,
    params_file: Path = PARAMS_FILE,
) -> None:
    """Validate the data against the suite and write the reports, then check it for leakage."""
    typer.echo(
        "validate: Great Expectations checks the raw data, then each column alone against the "
        "target (about 10 s, mostly the import of Great Expectations)"
    )
    with reported("validate"):
        data = load_params(params_file).data
        frame = read_data(input_path)
        context, result = run_suite(frame, read_suite(suite_path))
        description = describe(result)
        report_dir.mkdir(parents=True, exist_ok=True)
        summary = report_dir / "summary.json"
        summary.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
        page = display_path(build_data_docs(context, report_dir / "data_docs"))
        statistics = description["statistics"]
        evaluated, shown = statistics["evaluated_expectations"], display_path(input_path)
        if not description["success"]:
            for entry in description["expectations"]:
                if not entry["success"]:
                    typer.echo(f"validate: {failure_line(entry)}", err=True)
            raise InvalidDataError(
                f"{statistics['unsuccessful_expectations']} of {evaluated} expectations failed "
                f"on {shown}; details in {display_path(summary)} and {page}"
            )
        typer.echo(
            f"validate: {evaluated} of {evaluated} expectations met on {shown} ({len(frame)} "
            f"rows); Data Docs page: {page}"
        )
        typer.echo(f"validate: {leakage.check(frame, data)}")


if __name__ == "__main__":
    app()
