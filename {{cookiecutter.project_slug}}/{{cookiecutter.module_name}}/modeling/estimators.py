"""The untrained model of the `train` section of params.yaml: one builder for every model fitted.

`train` fits it on the training split; `make tune` (modeling/tune.py) fits one per trial, in this
process or on Dask workers, which import this module and scikit-learn only.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..bundle import KINDS, Feature, Kind
from ..params import TrainParams


def build_model(
    params: TrainParams, kinds: dict[str, Kind], image: Feature | None = None
) -> Pipeline:
    """The untrained pipeline of the `train` section of params.yaml, for features of `kinds`
    (`image`: how the model reads the pictures, for a team's own network)."""
    # ---- TEAM: your model. Add a choice to TrainParams.model in params.py, build it here. ----
    if params.model == "mlp":
        # A small neural network, the image task's default: it reads pixel values (0..1) as they
        # come, and early stopping keeps a tenth of the training rows aside to know when to stop.
        classifier = MLPClassifier(
            hidden_layer_sizes=tuple(params.hidden_layers),
            early_stopping=True,
            max_iter=200,
            random_state=params.random_state,
        )
        numeric, characters = StandardScaler(), True
    elif params.model == "onnx":  # a team's network, trained elsewhere (docs/the-task.md)
        from .team_onnx import team_classifier  # image projects only

        classifier, numeric, characters = team_classifier(params.onnx_file, image), None, False
    elif params.model == "random_forest":
        # No scaler: ONNX scales in float32, scikit-learn in float64, and a value moved across a
        # split threshold changes a tree's vote (the export would disagree).
        classifier = RandomForestClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            random_state=params.random_state,
        )
        numeric, characters = "passthrough", False
    else:
        classifier = LogisticRegression(C=params.C, max_iter=1000, random_state=params.random_state)
        numeric, characters = StandardScaler(), True
    # ---- end TEAM ----
    if "image" in kinds.values():  # pixel values, 0..1: read as they are
        return Pipeline([("classifier", classifier)])
    columns = column_transformer(kinds, numeric, characters)
    return Pipeline([("columns", columns), ("classifier", classifier)])


def column_transformer(kinds: dict[str, Kind], numeric: Any, characters: bool) -> ColumnTransformer:
    """Numbers as they are (or scaled), categories one-hot (an unseen value ignored), a text by
    its words and, with `characters`, its character runs. Columns go by position, as the ONNX
    converter finds them (bundle.onnx_inputs). Character runs only for a linear model: among
    20,000 more sparse columns a forest rarely meets the numbers (accuracy 0.94 -> 0.89)."""
    positions = {kind: [i for i, k in enumerate(kinds.values()) if k == kind] for kind in KINDS}
    parts: list[tuple[str, Any, Any]] = []
    if positions["numeric"]:
        parts.append(("numeric", numeric, positions["numeric"]))
    if positions["category"]:
        parts.append(("category", OneHotEncoder(handle_unknown="ignore"), positions["category"]))
    for position in positions["text"]:
        # A scalar position: the vectorizer gets the column itself, one text per row.
        parts.append((f"text_{position}_words", TfidfVectorizer(max_features=20_000), position))
        if characters:
            parts.append((f"text_{position}_chars", char_vectorizer(), position))
    return ColumnTransformer(parts)


def char_vectorizer() -> TfidfVectorizer:
    """TF-IDF of runs of 2 to 4 characters: what words miss (spelling, endings, code). Word pairs
    and `sublinear_tf` would score better but ONNX Runtime then differed by up to 0.16."""
    return TfidfVectorizer(analyzer="char", ngram_range=(2, 4), max_features=20_000)
