"""The bundle contract: what export writes is what promote, fetch-model and the service read."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.module_name }}.bundle import (
    FORMAT_VERSION,
    METADATA_FILE,
    MODEL_FILE,
    BundleError,
    BundleMetadata,
    CategoryFeature,
    ModelIdentity,
    NumericFeature,
    OnnxSignature,
    Parity,
    TextFeature,
    file_digest,
    install,
    read_identity,
    read_verified,
    recover_interrupted_install,
    write,
)

MODEL = b"pretend this is ONNX"


def metadata(model: bytes = MODEL, version: int = 1) -> BundleMetadata:
    return BundleMetadata(
        created_at="2026-01-01T00:00:00+00:00",
        identity=ModelIdentity(
            registered_model="demo",
            version=version,
            run_id="r" * 32,
            sha256=hashlib.sha256(model).hexdigest(),
        ),
        data_sha256="d" * 64,
        target="label",
        positive_label="yes",
        classes=["no", "yes"],
        features=[
            NumericFeature(name="x", min=0.0, max=1.0),
            NumericFeature(name="y", min=-1.0, max=1.0),
            CategoryFeature(name="site", categories=["a", "b"]),
            TextFeature(name="note", max_length=80),
        ],
        onnx=OnnxSignature(label_output="label", probabilities_output="p", opset={"": 17}),
        metrics={"f1": 0.9},
        parity=Parity(rows=10, max_probability_difference=0.0, tolerance=1e-5),
        libraries={},
    )


def bundle(folder: Path, model: bytes = MODEL, version: int = 1) -> Path:
    write(folder, model, metadata(model, version))
    return folder


def test_write_then_read_round_trips(tmp_path):
    written = metadata()
    write(tmp_path / "b", MODEL, written)
    assert read_verified(tmp_path / "b") == written
    assert file_digest(tmp_path / "b" / MODEL_FILE) == written.identity.sha256
    document = json.loads((tmp_path / "b" / METADATA_FILE).read_text())
    assert document["format_version"] == FORMAT_VERSION


def test_metadata_must_describe_the_model(tmp_path):
    with pytest.raises(BundleError, match="nothing written"):
        write(tmp_path / "b", b"another model", metadata())
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / MODEL_FILE).write_bytes(b"changed"), "damaged or half-copied"),
        (lambda f: (f / MODEL_FILE).unlink(), "cannot read"),
        (lambda f: (f / METADATA_FILE).unlink(), "there is no bundle"),
        (lambda f: (f / METADATA_FILE).write_text("{not json"), "cannot read"),
        (
            lambda f: (f / METADATA_FILE).write_text('{"format_version": 1}'),
            "format_version 1, this code reads 3",
        ),
        (
            lambda f: (f / METADATA_FILE).write_text(
                (f / METADATA_FILE)
                .read_text()
                .replace('"positive_label": "yes"', '"positive_label": "maybe"')
            ),
            "positive_label 'maybe' is not in",
        ),
    ],
)
def test_a_damaged_bundle_is_named(tmp_path, damage, message):
    folder = bundle(tmp_path / "b")
    damage(folder)
    with pytest.raises(BundleError, match=message):
        read_verified(folder)


def test_features_come_in_kind_order_and_give_the_onnx_inputs():
    described = metadata()
    assert [(i.name, i.dtype, i.features) for i in described.onnx_inputs] == [
        ("numeric", "float32", ("x", "y")),
        ("category_site", "string", ("site",)),
        ("text_note", "string", ("note",)),
    ]
    document = json.loads(described.model_dump_json())
    document["features"].reverse()
    with pytest.raises(ValueError, match="not in kind order"):
        BundleMetadata.model_validate(document)


def test_the_identity_of_an_older_format_is_still_read(tmp_path):
    """`promote` must know which model an earlier version of the project served."""
    folder = bundle(tmp_path / "b")
    document = json.loads((folder / METADATA_FILE).read_text())
    document["format_version"] = 2
    (folder / METADATA_FILE).write_text(json.dumps(document))
    with pytest.raises(BundleError, match="format_version 2"):
        read_verified(folder)
    assert read_identity(folder) == metadata().identity
    (folder / MODEL_FILE).write_bytes(b"changed")
    with pytest.raises(BundleError, match="damaged"):
        read_identity(folder)


def test_install_replaces_the_whole_bundle(tmp_path):
    target = bundle(tmp_path / "served", b"old model", version=1)
    installed = install(bundle(tmp_path / "new", b"new model", version=2), target)
    assert installed.identity.version == 2
    assert read_verified(target).identity.version == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new", "served"]


def test_install_refuses_a_damaged_source_and_keeps_the_target(tmp_path):
    target = bundle(tmp_path / "served", b"old model")
    source = bundle(tmp_path / "new", b"new model", version=2)
    (source / MODEL_FILE).write_bytes(b"truncated")
    with pytest.raises(BundleError):
        install(source, target)
    assert read_verified(target).identity.version == 1


def test_a_failed_swap_keeps_the_old_bundle(tmp_path, monkeypatch):
    target = bundle(tmp_path / "served", b"old model")
    source = bundle(tmp_path / "new", b"new model", version=2)
    rename = Path.rename

    def rename_failing_into_place(self, destination):
        if Path(destination) == target and ".new-" in self.name:
            raise OSError("disk full")
        return rename(self, destination)

    monkeypatch.setattr(Path, "rename", rename_failing_into_place)
    with pytest.raises(OSError, match="disk full"):
        install(source, target)
    assert read_verified(target).identity.version == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new", "served"]


def test_an_install_interrupted_between_renames_is_undone(tmp_path):
    bundle(tmp_path / ".served.previous", b"old model")  # the state after the first rename
    (tmp_path / ".served.new-abc").mkdir()
    recover_interrupted_install(tmp_path / "served")
    assert read_verified(tmp_path / "served").identity.version == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["served"]


def test_the_contract_needs_neither_pandas_nor_scikit_learn_nor_mlflow():
    code = (
        "import sys, {{ cookiecutter.module_name }}.bundle; "
        "print([m for m in ('pandas', 'sklearn', 'mlflow', 'typer') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
