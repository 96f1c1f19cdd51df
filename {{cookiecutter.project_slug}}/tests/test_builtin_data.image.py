"""A team's own pictures (`data.source: folder`, `make data-new FOLDER=...`): the manifest of a
folder laid out as <label>/<picture>.png|jpg, and one line for every folder that is not."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from {{ cookiecutter.module_name }} import (
    builtin_data,
    data_new,
)
from {{ cookiecutter.module_name }}.builtin_data import (
    FolderError,
    manifest,
    picture_files,
    readable_pictures,
)
from {{ cookiecutter.module_name }}.dataset import (
    load_source,
)
from {{ cookiecutter.module_name }}.params import (
    DataParams,
)

runner = CliRunner()


def picture(path, value: int = 0, mode: str = "L", kind: str = "PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (12, 10), value).save(path, kind)
    return path


@pytest.fixture
def pets(tmp_path, monkeypatch):
    """A project root in tmp_path holding data/external/images/{cat,dog}/: 4 + 3 pictures, one
    a JPEG, one an RGB picture."""
    monkeypatch.setattr(builtin_data, "PROJ_ROOT", tmp_path)
    folder = tmp_path / "data" / "external" / "images"
    for i in range(4):
        picture(folder / "cat" / f"{i}.png", value=10 * i)
    picture(folder / "dog" / "a.jpg", value=100, kind="JPEG")
    picture(folder / "dog" / "b.PNG", mode="RGB")
    picture(folder / "dog" / "c.jpeg", value=200, kind="JPEG")
    (folder / ".DS_Store").write_bytes(b"\0")  # hidden files are left alone
    return folder


def test_a_folder_of_pictures_becomes_its_manifest(pets):
    frame = manifest(pets, "animal")
    assert list(frame.columns) == [
        "image", "animal", "bytes", "sha256", "readable", "width", "height", "mode",
    ]  # fmt: skip
    assert frame["image"].iloc[0] == "data/external/images/cat/0.png"
    assert frame["animal"].value_counts().to_dict() == {"cat": 4, "dog": 3}
    assert frame["readable"].all()
    assert (frame["width"] == 12).all() and (frame["height"] == 10).all()
    assert set(frame["mode"]) == {"L", "RGB"}
    assert frame["sha256"].is_unique
    assert set(frame.columns) - {"animal"} == set(builtin_data.COLUMNS)


def test_the_data_stage_reads_the_configured_folder(pets, monkeypatch):
    from {{ cookiecutter.module_name }} import dataset

    monkeypatch.setattr(dataset, "PROJ_ROOT", pets.parents[2])
    settings = DataParams(source="folder", folder="data/external/images", target="Animal Kind")
    frame = load_source(settings)
    assert "animal_kind" in frame.columns and len(frame) == 7


def test_an_unreadable_picture_is_recorded_then_refused_in_one_line(pets):
    (pets / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    frame = manifest(pets, "animal")
    broken = frame[frame["image"].str.endswith("broken.png")].iloc[0]
    assert not broken["readable"] and broken["width"] == 0
    with pytest.raises(FolderError, match=r"broken.png is not a PNG or JPEG picture that decodes$"):
        readable_pictures(pets)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, r"has no pictures: it needs <label>/<picture>.png or .jpg files$"),
        ({"a.png": True}, r"a.png lies directly in .*: put each picture in a folder named for"),
        ({"cat/2024/a.png": True}, r"a.png lies too deep in .*/<label>/a.png$"),
        ({"cat/a.png": True, "cat/notes.txt": False}, r"notes.txt is not a picture \(.png, "),
        ({"cat/a.gif": False}, r"a.gif is not a picture"),
    ],
)
def test_a_folder_laid_out_otherwise_is_one_line(tmp_path, layout, message):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name, is_picture in layout.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        picture(path) if is_picture else path.write_text("not a picture\n")
    with pytest.raises(FolderError, match=message) as raised:
        picture_files(folder)
    assert "\n" not in str(raised.value)


def test_a_missing_folder_or_one_outside_the_project_is_one_line(tmp_path, pets):
    with pytest.raises(FolderError, match=r"nowhere is not a folder$"):
        picture_files(tmp_path / "nowhere")
    with pytest.raises(FolderError, match=r"is outside the project: `make data-new FOLDER="):
        manifest(tmp_path.parent, "animal")


def test_data_new_refuses_a_bad_folder_in_one_line_and_changes_nothing(tmp_path, pets):
    params = data_new.PARAMS_FILE
    before = params.read_text(encoding="utf-8")
    (pets / "dog" / "notes.txt").write_text("not a picture\n")
    result = runner.invoke(data_new.app, [str(pets), "--target", "animal"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("data-new: ") and "notes.txt is not a picture" in result.output
    assert params.read_text(encoding="utf-8") == before


def test_data_new_refuses_a_class_of_one_picture(pets):
    for path in list((pets / "dog").iterdir())[1:]:
        path.unlink()
    with pytest.raises(data_new.PipelineError, match=r"has a single row"):
        data_new.plug_in_folder(pets, "animal")


def test_pixels_of_a_manifest_row_are_what_the_model_reads(pets):
    from {{ cookiecutter.module_name }}.bundle import ImageFeature
    from {{ cookiecutter.module_name }}.images import load_pixels

    feature = ImageFeature(kind="image", name="image", width=6, height=5, mode="L")
    values = load_pixels(pets / "cat" / "3.png", feature)
    assert values.shape == (30,) and np.allclose(values, 30 / 255)
