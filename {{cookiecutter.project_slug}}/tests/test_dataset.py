"""Stage `data`: the default dataset, a team's CSV (path or URL), and the errors in between."""

import functools
import http.server
import json
import stat
import threading

import pandas as pd
import pytest
import yaml
from tables import raw_frame
from typer.testing import CliRunner

from {{ cookiecutter.module_name }} import (
    dataset as data_stage,
)
from {{ cookiecutter.module_name }}.bundle import (
    file_digest,
)
from {{ cookiecutter.module_name }}.dataset import (
    DataError,
    clean_columns,
    clean_name,
    load_source,
    write_raw,
)
from {{ cookiecutter.module_name }}.params import (
    DataParams,
    load_params,
)

# Files that are not a comma-separated table, as teams have handed them in, and what is said.
BAD_CSV = {
    "empty": (b"", "is empty"),
    "header only": (b"x,label\n", "has a header but no rows"),
    "ragged": (b"x,label\n1,a\n2,b,extra\n", "is not a regular CSV file: Expected 2 fields"),
    "not utf-8": ("x,label\n1,caf\u00e9\n".encode("latin-1"), "is not UTF-8 text"),
    "semicolons": (
        b"x;label\n1;a\n2;b\n",
        "separates its values with semicolons, not commas (its header reads as the columns 'x', "
        "'label')",
    ),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", "is not UTF-8 text"),
}


def csv_params(location: str, target: str = "label") -> DataParams:
    return DataParams(source="csv", csv=location, target=target)


@pytest.fixture(scope="module")
def frame():
    return raw_frame()


def test_configured_data_has_clean_columns_and_its_target(frame):
    assert all(name.isidentifier() and name == name.lower() for name in frame.columns)
    assert load_params().data.target in frame.columns


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("mean radius", "mean_radius"),
        ("  Worst-Area (mm2) ", "worst_area_mm2"),
        ("3d shape", "col_3d_shape"),
    ],
)
def test_clean_name(raw, clean):
    assert clean_name(raw) == clean


def test_clean_name_refuses_a_name_without_letters():
    with pytest.raises(DataError, match="no letters or digits"):
        clean_name("???")


def test_two_names_that_clean_alike_are_refused():
    frame = pd.DataFrame({"Mean Radius": [1], "mean-radius": [2], "other": [3]})
    with pytest.raises(
        DataError, match=r"\['Mean Radius', 'mean-radius'\] all become 'mean_radius'"
    ):
        clean_columns(frame, "data.csv")


def test_raw_file_is_read_only_and_hashed(tmp_path, frame):
    output, metadata_path = tmp_path / "raw.csv", tmp_path / "raw.json"
    metadata = write_raw(frame, output, metadata_path, "builtin")
    assert metadata == json.loads(metadata_path.read_text())
    assert metadata["sha256"] == file_digest(output)
    assert metadata["rows"] == len(frame)
    assert not output.stat().st_mode & stat.S_IWUSR
    again = write_raw(frame, output, metadata_path, "builtin")  # a re-run replaces it
    assert again["sha256"] == metadata["sha256"]  # same data, same hash


def test_hash_changes_when_one_value_changes(tmp_path, frame):
    first = write_raw(frame, tmp_path / "a.csv", tmp_path / "a.json", "builtin")
    changed = frame.copy()
    column, value = frame.columns[0], frame.iloc[0, 0]
    changed.loc[0, column] = value + 1 if pd.api.types.is_number(value) else f"{value}x"
    second = write_raw(changed, tmp_path / "b.csv", tmp_path / "b.json", "builtin")
    assert first["sha256"] != second["sha256"]


def test_team_csv_from_a_path(tmp_path):
    pd.DataFrame({"Age (years)": [30, 40], "Outcome": ["yes", "no"]}).to_csv(
        tmp_path / "own.csv", index=False
    )
    frame = load_source(csv_params(str(tmp_path / "own.csv"), target="Outcome"))
    assert list(frame.columns) == ["age_years", "outcome"]


def test_team_csv_from_a_url(tmp_path):
    pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]}).to_csv(
        tmp_path / "served.csv", index=False
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/served.csv"
        frame = load_source(csv_params(url))
        assert frame["x"].tolist() == [1.0, 2.0]
        with pytest.raises(DataError, match="could not download"):
            load_source(csv_params(url.replace("served", "missing")))
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("location", "message"),
    [("", "data.csv is empty"), ("no/such/file.csv", "which is not a file")],
)
def test_bad_data_settings_are_named(location, message):
    with pytest.raises(DataError, match=message):
        load_source(csv_params(location))


def test_csv_without_the_target_column_is_refused(tmp_path):
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "own.csv", index=False)
    with pytest.raises(DataError, match="target column 'label' "):
        load_source(csv_params(str(tmp_path / "own.csv")))


@pytest.mark.parametrize("kind", sorted(BAD_CSV))
def test_a_file_that_is_not_a_csv_is_one_line_and_writes_nothing(tmp_path, kind):
    content, message = BAD_CSV[kind]
    (tmp_path / "own.csv").write_bytes(content)
    params = load_params().model_dump()
    params["data"].update(source="csv", csv=str(tmp_path / "own.csv"), target="label")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    output = tmp_path / "raw" / "dataset.csv"

    result = CliRunner().invoke(
        data_stage.app,
        [
            "--output-path", str(output),
            "--metadata-path", str(tmp_path / "raw" / "dataset.json"),
            "--params-file", str(tmp_path / "params.yaml"),
        ],
    )  # fmt: skip

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"data: {tmp_path / 'own.csv'} ")
    assert message in lines[0]
    assert not output.parent.exists()
