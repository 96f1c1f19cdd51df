"""A team's own network as the pipeline's model: `train.model: onnx` in params.yaml.

The network is trained elsewhere (a CNN in PyTorch, say) and exported to the ONNX file that
`train.onnx_file` names (docs/the-task.md). `train` wraps it in TeamOnnxClassifier, a
scikit-learn classifier whose `fit` trains nothing: it checks that the network reads the pictures
of the `images` section and gives one value per class, and keeps the file's bytes, so `evaluate`,
MLflow and the candidate folder treat it like any other model. `export` then fits the network to
the bundle's contract (`bundle_onnx`): the flat pixels of `image_<name>` reshaped to the
network's input, a Softmax when the network ends in logits, the `label` and `probabilities`
outputs; its parity check compares that graph with this class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, compose, helper, numpy_helper
from sklearn.base import BaseEstimator, ClassifierMixin

from ..bundle import Feature, ImageFeature, OnnxSignature
from ..config import PROJ_ROOT
from ..errors import PipelineError

CHANNELS = {"L": 1, "RGB": 3}
# Steps that pass a value on unchanged, skipped when looking for the network's last operator.
PASS_THROUGH = ("Identity", "Cast")

Layout = tuple[list[int], list[int] | None]  # the shape to reshape pixels to, the axes to swap


class TeamModelError(PipelineError):
    """The team's ONNX file is missing, is not ONNX, or does not fit the pictures or classes."""


def team_classifier(onnx_file: str, image: Feature | None) -> TeamOnnxClassifier:
    """The classifier of `train.onnx_file` for the pictures `image` describes."""
    if not isinstance(image, ImageFeature):
        raise TeamModelError("train.model onnx reads pictures: the data has no image column")
    return TeamOnnxClassifier(onnx_file, image.width, image.height, image.mode)


class TeamOnnxClassifier(ClassifierMixin, BaseEstimator):
    """A trained ONNX network with scikit-learn's interface; rows are images.pixels' values.

    Output i of the network is the i-th class in sorted order (as text: "0" ... "9" for digits).
    """

    def __init__(self, onnx_file: str = "", width: int = 28, height: int = 28, mode: str = "L"):
        self.onnx_file = onnx_file
        self.width = width
        self.height = height
        self.mode = mode

    def fit(self, features: Any, labels: Any) -> TeamOnnxClassifier:
        """Check the network against the pictures and the classes; keep its bytes."""
        network = read_network(self.onnx_file)
        self.layout_ = layout(network, self.width, self.height, self.mode, self.onnx_file)
        self.input_name_ = network_input(network).name
        self.softmax_ = not ends_in_softmax(network.graph)
        self.onnx_model_ = network.SerializeToString()
        self.classes_ = np.unique(np.asarray(labels).astype(str))
        values = self.network_outputs(np.zeros((1, np.shape(features)[1]), dtype=np.float32))
        if values.ndim != 2 or values.shape[1] != len(self.classes_):
            raise TeamModelError(
                f"{self.onnx_file} gives {values.shape[1:]} values per picture, the data has "
                f"{len(self.classes_)} classes {list(self.classes_)[:10]}: output one value per "
                "class, in the classes' sorted order"
            )
        return self

    def network_outputs(self, features: Any) -> np.ndarray:
        """The network's first output for rows of pixel values."""
        if getattr(self, "session_", None) is None:
            try:
                self.session_ = ort.InferenceSession(
                    self.onnx_model_, providers=["CPUExecutionProvider"]
                )
            except Exception as error:  # ONNX Runtime raises its own exception types
                raise TeamModelError(
                    f"ONNX Runtime cannot load {self.onnx_file}: {error}"
                ) from None
        shape, axes = self.layout_
        pictures = np.asarray(features, dtype=np.float32).reshape(shape)
        if axes is not None:
            pictures = pictures.transpose(axes)
        try:
            (values,) = self.session_.run(
                [self.session_.get_outputs()[0].name],
                {self.input_name_: np.ascontiguousarray(pictures)},
            )
        except Exception as error:  # whatever a broken graph raises at run time
            raise TeamModelError(f"{self.onnx_file} fails on the pictures: {error}") from None
        return values

    def predict_proba(self, features: Any) -> np.ndarray:
        values = self.network_outputs(features).astype(np.float64)
        if self.softmax_:  # logits (or log-probabilities): softmax gives the probabilities
            values = np.exp(values - values.max(axis=1, keepdims=True))
            values /= values.sum(axis=1, keepdims=True)
        return values

    def predict(self, features: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("session_", None)  # an ONNX Runtime session cannot be saved: made again on use
        return state

    def bundle_onnx(self, input_name: str, signature: OnnxSignature) -> bytes:
        """The network with the bundle's input and outputs: `input_name` float32 [rows, size]
        reshaped to the network's input, then `label` (text) and `probabilities` [rows, classes]."""
        network = compose.add_prefix(onnx.load_model_from_string(self.onnx_model_), "network/")
        versions = {opset.domain or "ai.onnx": opset.version for opset in network.opset_import}
        # The network's opsets, and the bundle's for the LabelEncoder if the network has none.
        ml = versions.get("ai.onnx.ml", signature.opset["ai.onnx.ml"])
        opsets = [
            helper.make_opsetid("", versions["ai.onnx"]),
            helper.make_opsetid("ai.onnx.ml", ml),
        ]
        size = self.width * self.height * CHANNELS[self.mode]
        values = network.graph.output[0].name
        pixels = pixels_graph(input_name, size, self.layout_)
        outputs = outputs_graph(list(self.classes_), self.softmax_, signature)
        parts = [
            helper.make_model(g, opset_imports=opsets, ir_version=network.ir_version)
            for g in (pixels, outputs)
        ]
        try:
            adapted = compose.merge_models(
                parts[0], network, io_map=[("pixels/picture", network_input(network).name)]
            )
            adapted = compose.merge_models(
                adapted,
                parts[1],
                io_map=[(values, "outputs/values")],
                outputs=[signature.label_output, signature.probabilities_output],
            )
            adapted.graph.name = "model"
            onnx.checker.check_model(adapted)
        except Exception as error:  # onnx's ValueError, ValidationError...
            raise TeamModelError(f"cannot fit {self.onnx_file} to the bundle: {error}") from None
        return adapted.SerializeToString()


def pixels_graph(input_name: str, size: int, found: Layout) -> onnx.GraphProto:
    """`input_name`, float32 [rows, size], as the network's input `pixels/picture`."""
    shape, axes = found
    reshaped = "pixels/reshaped" if axes else "pixels/picture"
    nodes = [helper.make_node("Reshape", [input_name, "pixels/shape"], [reshaped])]
    if axes is not None:
        nodes.append(helper.make_node("Transpose", [reshaped], ["pixels/picture"], perm=axes))
    return helper.make_graph(
        nodes,
        "pixels",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, size])],
        [helper.make_tensor_value_info("pixels/picture", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array(shape, np.int64), "pixels/shape")],
    )


def outputs_graph(classes: list[str], softmax: bool, signature: OnnxSignature) -> onnx.GraphProto:
    """The network's values `outputs/values` [rows, classes] as the bundle's outputs: the
    probabilities (after a Softmax if they are logits) and the label of the likeliest class."""
    probabilities, label = signature.probabilities_output, signature.label_output
    if softmax:
        normalise = helper.make_node("Softmax", ["outputs/values"], [probabilities], axis=1)
    else:
        normalise = helper.make_node("Identity", ["outputs/values"], [probabilities])
    nodes = [
        normalise,
        helper.make_node("ArgMax", [probabilities], ["outputs/index"], axis=1, keepdims=0),
        helper.make_node(
            "LabelEncoder",
            ["outputs/index"],
            [label],
            domain="ai.onnx.ml",
            keys_int64s=list(range(len(classes))),
            values_strings=[str(name) for name in classes],
            default_string="",
        ),
    ]
    return helper.make_graph(
        nodes,
        "outputs",
        [helper.make_tensor_value_info("outputs/values", TensorProto.FLOAT, None)],
        [
            helper.make_tensor_value_info(label, TensorProto.STRING, [None]),
            helper.make_tensor_value_info(probabilities, TensorProto.FLOAT, [None, len(classes)]),
        ],
    )


def read_network(onnx_file: str) -> onnx.ModelProto:
    """The ONNX model in `onnx_file` (relative to the project), with its weights if they lie
    in a file beside it (torch.onnx.export's external data), checked."""
    path = PROJ_ROOT / onnx_file
    if not path.is_file():
        raise TeamModelError(
            f"train.onnx_file {onnx_file} does not exist: export your network there "
            "(docs/the-task.md)"
        )
    try:
        network = onnx.load(path)
        onnx.checker.check_model(network)
    except Exception as error:  # protobuf's DecodeError, onnx's ValidationError, OSError...
        raise TeamModelError(f"{onnx_file} is not an ONNX model: {error}") from None
    return network


def network_input(network: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The network's one input (older exporters also list the weights as inputs)."""
    weights = {tensor.name for tensor in network.graph.initializer}
    inputs = [item for item in network.graph.input if item.name not in weights]
    if len(inputs) != 1:
        raise TeamModelError(f"the network has {len(inputs)} inputs: it must take one picture")
    return inputs[0]


def layout(network: onnx.ModelProto, width: int, height: int, mode: str, onnx_file: str) -> Layout:
    """How rows of pixel values (height x width x channels, images.pixels' order) become the
    network's input: [batch, channels, height, width] (PyTorch), [batch, height, width, channels]
    (Keras), [batch, height, width] (grey) or the flat row itself."""
    tensor = network_input(network).type.tensor_type
    if tensor.elem_type != TensorProto.FLOAT:
        name = TensorProto.DataType.Name(tensor.elem_type)
        raise TeamModelError(f"{onnx_file} reads {name} values: export it to read float32")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    channels = CHANNELS[mode]
    if dims and dims[0] > 0:
        raise TeamModelError(
            f"{onnx_file} reads batches of exactly {dims[0]} pictures: export it with a dynamic "
            "batch axis (docs/the-task.md)"
        )
    row, size = [-1, height, width, channels], height * width * channels
    layouts: list[tuple[list[int], Layout]] = [
        ([channels, height, width], (row, [0, 3, 1, 2])),  # PyTorch's order
        ([height, width, channels], (row, None)),  # Keras's, and images.pixels'
        ([size], ([-1, size], None)),  # the flat row
    ]
    if channels == 1:
        layouts.append(([height, width], ([-1, height, width], None)))
    for shape, found in layouts:
        if dims[1:] == shape:
            return found
    shown = ", ".join("batch" if i == 0 else str(d) if d > 0 else "?" for i, d in enumerate(dims))
    raise TeamModelError(
        f"{onnx_file} reads pictures of shape [{shown}]; the `images` section gives {width} x "
        f"{height} {mode} ([batch, {channels}, {height}, {width}], {height * width * channels} "
        "values): change one to match the other"
    )


def ends_in_softmax(graph: onnx.GraphProto) -> bool:
    """Whether the graph's first output comes out of a Softmax (probabilities, not logits)."""
    producers = {output: node for node in graph.node for output in node.output}
    node = producers.get(graph.output[0].name)
    while node is not None and node.op_type in PASS_THROUGH:
        node = producers.get(node.input[0])
    return node is not None and node.op_type == "Softmax"
