"""A team's own ONNX network as the model (`train.model: onnx`, modeling/team_onnx.py).

The networks are made here with onnx.helper, shaped as torch.onnx.export shapes a small CNN (a
dynamic batch axis, then channels, height, width), so no test needs PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from small_bundle import export_bundle
from tables import features_of, image
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.bundle import (
    ImageFeature,
)
from {{ cookiecutter.module_name }}.inference import (
    load,
)
from {{ cookiecutter.module_name }}.modeling import (
    train as train_stage,
)
from {{ cookiecutter.module_name }}.modeling.team_onnx import (
    TeamModelError,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
)

COLOUR = ImageFeature(name="photo", width=5, height=4, mode="RGB")


def network(
    path: Path,
    shape: list[int],
    classes: int,
    convolution: bool = False,
    softmax: bool = False,
    batch: str | int = "batch",
    external: bool = False,
) -> Path:
    """An ONNX network reading pictures of `shape` (without the batch axis) into `classes`
    logits (or probabilities, with `softmax`), written to `path`: a convolution, ReLU, Flatten
    and a dense layer, as a small CNN exports, or the dense layer alone; with `external`, its
    weights in a file beside it, as torch.onnx.export writes them by default."""
    rng = np.random.default_rng(0)
    nodes, weights, flat = [], [], int(np.prod(shape))
    first = "input"
    if convolution:  # 4 filters of 3 x 3 over the channels, same size out
        kernel = rng.normal(0, 0.5, (4, shape[0], 3, 3)).astype(np.float32)
        weights.append(numpy_helper.from_array(kernel, "kernel"))
        nodes += [
            helper.make_node("Conv", ["input", "kernel"], ["features"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["features"], ["active"]),
        ]
        first, flat = "active", 4 * shape[1] * shape[2]
    dense = rng.normal(0, 0.3, (flat, classes)).astype(np.float32)
    bias = rng.normal(0, 0.3, classes).astype(np.float32)
    weights += [numpy_helper.from_array(dense, "dense"), numpy_helper.from_array(bias, "bias")]
    last = "probabilities" if softmax else "logits"
    nodes += [
        helper.make_node("Flatten", [first], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "dense"], ["product"]),
        helper.make_node("Add", ["product", "bias"], ["logits" if not softmax else "scores"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["scores"], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        "team_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *shape])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [batch, classes])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, path, save_as_external_data=external, size_threshold=0)
    return path


def run_directly(path: Path, pixels: np.ndarray, feature: ImageFeature, order: str) -> np.ndarray:
    """The network's probabilities for rows of pixel values, computed without the package: the
    rows as pictures in `order` (NCHW, NHWC or flat), then softmax unless the network has one."""
    channels = 1 if feature.mode == "L" else 3
    pictures = pixels.astype(np.float32).reshape(-1, feature.height, feature.width, channels)
    if order == "NCHW":
        pictures = pictures.transpose(0, 3, 1, 2)
    elif order == "flat":
        pictures = pictures.reshape(len(pixels), -1)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (values,) = session.run(None, {"input": np.ascontiguousarray(pictures)})
    if session.get_outputs()[0].name == "probabilities":
        return values
    exponentials = np.exp(values - values.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def shape_of(feature: ImageFeature, order: str) -> list[int]:
    channels = 1 if feature.mode == "L" else 3
    return {
        "NCHW": [channels, feature.height, feature.width],
        "NHWC": [feature.height, feature.width, channels],
        "flat": [feature.size],
    }[order]


def team_model(params, with_train, path: Path, feature: ImageFeature):
    """The pipeline's model for the team's network at `path`, unfitted."""
    settings = with_train(params, model="onnx", onnx_file=str(path)).train
    return build_model(settings, {feature.name: "image"}, feature)


def write_bundle(folder: Path, model, feature: ImageFeature, pixels: pd.DataFrame, params) -> Path:
    """Export the fitted model as the `export` stage does (conversion, parity, metadata)."""
    export_bundle(folder, model, [feature], pixels, params, "team", 1, {})
    return folder


@pytest.fixture(scope="module")
def test_pixels(data_splits) -> tuple[pd.DataFrame, pd.Series]:
    """200 pictures of the configured test split, as the model reads them."""
    features, labels = features_of(data_splits[1])
    return features.head(200), labels.head(200)


@pytest.mark.parametrize("softmax", [False, True], ids=["logits", "probabilities"])
def test_a_team_cnn_on_the_project_pictures_serves_as_it_runs(
    params, with_train, test_pixels, tmp_path, softmax
):
    feature = image()
    features, labels = test_pixels
    classes = sorted(labels.unique())
    path = network(tmp_path / "cnn.onnx", shape_of(feature, "NCHW"), len(classes), True, softmax)
    model = team_model(params, with_train, path, feature).fit(features, labels)

    metadata, served = load(write_bundle(tmp_path / "bundle", model, feature, features, params))
    served_labels, probabilities = served.predict([(row,) for row in features.to_numpy()])

    expected = run_directly(path, features.to_numpy(), feature, "NCHW")
    assert metadata.classes == classes
    assert metadata.onnx.opset[""] == 18  # the network's own opset, as model.onnx says
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert served_labels == [classes[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(model.predict_proba(features), expected, atol=1e-5)
    assert list(model.predict(features)) == served_labels


@pytest.mark.parametrize("order", ["NCHW", "NHWC", "flat"])
def test_colour_pictures_reach_the_network_in_its_own_layout(params, with_train, tmp_path, order):
    rng = np.random.default_rng(3)
    pixels = pd.DataFrame(rng.random((60, COLOUR.size)))
    labels = pd.Series(rng.choice(["cat", "dog", "fox"], 60))
    path = network(tmp_path / "net.onnx", shape_of(COLOUR, order), 3, order == "NCHW")
    model = team_model(params, with_train, path, COLOUR).fit(pixels, labels)

    _, served = load(write_bundle(tmp_path / "bundle", model, COLOUR, pixels, params))
    _, probabilities = served.predict([(row,) for row in pixels.to_numpy()])

    np.testing.assert_allclose(
        probabilities, run_directly(path, pixels.to_numpy(), COLOUR, order), atol=1e-5
    )


def test_weights_in_a_file_beside_the_network_are_read(params, with_train, tmp_path):
    rng = np.random.default_rng(6)
    pixels, labels = pd.DataFrame(rng.random((20, COLOUR.size))), pd.Series(["a", "b"] * 10)
    path = network(tmp_path / "net.onnx", shape_of(COLOUR, "NCHW"), 2, True, external=True)
    assert len(list(tmp_path.iterdir())) == 2  # the graph, and its weights beside it
    model = team_model(params, with_train, path, COLOUR).fit(pixels, labels)

    np.testing.assert_allclose(
        model.predict_proba(pixels),
        run_directly(path, pixels.to_numpy(), COLOUR, "NCHW"),
        atol=1e-6,
    )


def test_the_fitted_model_keeps_the_network_not_the_file(params, with_train, tmp_path):
    """The candidate folder and MLflow keep the model: the file may change or go afterwards."""
    import joblib

    rng = np.random.default_rng(4)
    pixels, labels = pd.DataFrame(rng.random((20, COLOUR.size))), pd.Series(["a", "b"] * 10)
    path = network(tmp_path / "net.onnx", shape_of(COLOUR, "NCHW"), 2, True)
    model = team_model(params, with_train, path, COLOUR).fit(pixels, labels)
    expected = model.predict_proba(pixels)
    joblib.dump(model, tmp_path / "model.joblib")
    path.unlink()

    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(pixels), expected)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path, "model.onnx does not exist: export your network there"),
        (lambda path: path.write_bytes(b"not a network") and path, "is not an ONNX model"),
        (
            lambda path: network(path, [3, COLOUR.height, COLOUR.width + 1], 2, True),
            "reads pictures of shape [batch, 3, 4, 6]",
        ),
        (
            lambda path: network(path, shape_of(COLOUR, "NCHW"), 5, True),
            "gives (5,) values per picture, the data has 2 classes",
        ),
        (
            lambda path: network(path, shape_of(COLOUR, "NCHW"), 2, True, batch=1),
            "reads batches of exactly 1 pictures: export it with a dynamic batch axis",
        ),
    ],
    ids=["missing", "not-onnx", "wrong-size", "wrong-classes", "fixed-batch"],
)
def test_a_network_that_does_not_fit_is_refused_in_one_line(
    params, with_train, tmp_path, make, message
):
    make(tmp_path / "model.onnx")
    rng = np.random.default_rng(5)
    pixels, labels = pd.DataFrame(rng.random((10, COLOUR.size))), pd.Series(["a", "b"] * 5)
    model = team_model(params, with_train, tmp_path / "model.onnx", COLOUR)
    with pytest.raises(TeamModelError) as raised:
        model.fit(pixels, labels)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_train_stage_reports_a_missing_network_in_one_line(workspace, with_train, tmp_path):
    settings = with_train(workspace.params, model="onnx", onnx_file="models/team/none.onnx")
    few = tmp_path / "train.csv"  # 40 pictures: the stage stops before it fits anything
    pd.read_csv(workspace.train_file, dtype=str).head(40).to_csv(few, index=False)
    result = CliRunner().invoke(
        train_stage.app,
        [
            "--train-path", str(few),
            "--metadata-path", str(workspace.raw_metadata),
            "--candidate-dir", str(tmp_path / "candidate"),
            "--emissions-file", str(workspace.emissions_file),
            "--params-file", str(workspace.write_params(settings)),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "train: train.onnx_file models/team/none.onnx does not exist" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "candidate").exists()
