"""The demo page: a Streamlit app that calls the prediction service over HTTP (`make demo-ui`).

A client of the API like any other, kept outside the package: it imports nothing of it and
reads everything from the service itself. `GET /model` gives the champion's identity, metrics
and input contract, from which the form is built (numbers within their training range,
categories, text, or a picture upload); `POST /predict` the label and the class probabilities;
`POST /explain`, when the service has it (listed in /openapi.json), the contributions of the
input's parts. An unreachable or refusing service is one line on the page, never a traceback.
The service's address is API_URL (default: where `make serve` listens).
"""

from __future__ import annotations

import os
from typing import Any

import requests
import streamlit as st

API_URL = os.environ.get("API_URL", "http://127.0.0.1:8000").rstrip("/")
# Long enough for a cold model, short enough that a stopped service shows at once.
TIMEOUT_SECONDS = 10
METRICS_PER_ROW = 4


class ApiError(Exception):
    """The service could not answer: the message is one line for the page."""


def call(method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of the service to `method path`; ApiError with one line otherwise."""
    try:
        response = requests.request(method, API_URL + path, timeout=TIMEOUT_SECONDS, **kwargs)
    except requests.RequestException as error:
        reason = type(error).__name__
        raise ApiError(f"the service at {API_URL} does not answer ({reason})") from None
    if not response.ok:
        try:
            detail = response.json().get("detail", response.reason)
        except ValueError:
            detail = response.reason
        raise ApiError(f"{path} answered {response.status_code}: {detail}")
    return response.json()


def explains() -> bool:
    """Whether the service has /explain (a cookiecutter option): it is in its OpenAPI schema."""
    try:
        return "/explain" in call("GET", "/openapi.json").get("paths", {})
    except ApiError:
        return False


def show_model(model: dict[str, Any]) -> None:
    identity = model["identity"]
    st.title(f"{identity['registered_model']}, version {identity['version']}")
    st.caption(
        f"Trained {model['created_at'][:10]}, run {identity['run_id'][:8]}, "
        f"model.onnx {identity['sha256'][:12]}; predicts `{model['target']}`"
    )
    metrics = {name: value for name, value in model["metrics"].items() if value is not None}
    names = list(metrics)
    for row in range(0, len(names), METRICS_PER_ROW):  # rows of a few, each name readable
        shown = names[row : row + METRICS_PER_ROW]
        for column, name in zip(st.columns(METRICS_PER_ROW), shown, strict=False):
            column.metric(name, f"{metrics[name]:.3f}")


def record_form(features: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Inputs of one record for JSON features, in two columns; the record, or None while a
    text is empty. Each change predicts again: one call of the service, a few milliseconds."""
    record: dict[str, Any] = {}
    columns = st.columns(2)
    for index, feature in enumerate(features):
        name, place = feature["name"], columns[index % 2]
        if feature["kind"] == "numeric":
            low, high = feature["min"], feature["max"]
            middle = float(f"{(low + high) / 2:.4g}")  # 4 significant digits read better
            help_text = f"Training range {low:g} to {high:g}"
            record[name] = place.number_input(
                name, value=middle, format="%g", help=help_text, key=name
            )
        elif feature["kind"] == "category":
            record[name] = place.selectbox(name, feature["categories"], key=name)
        else:
            record[name] = place.text_area(name, key=name)
    if any(feature["kind"] == "text" and not record[feature["name"]] for feature in features):
        st.info("Type a text to see the prediction.")
        return None
    return record


def picture_form(feature: dict[str, Any]) -> dict[str, Any] | None:
    """A picture upload; the multipart files once a picture is chosen, else None."""
    size = f"{feature['width']} x {feature['height']}"
    picture = st.file_uploader(f"A PNG or JPEG picture (read at {size})", type=["png", "jpg"])
    if picture is None:
        return None
    st.image(picture, width=160)
    return {"image": (picture.name, picture.getvalue(), picture.type)}


def show_prediction(prediction: dict[str, Any]) -> None:
    st.subheader(f"Prediction: {prediction['label']}")
    probabilities = prediction["probabilities"]
    st.bar_chart(
        {"class": list(probabilities), "probability": list(probabilities.values())},
        x="class",
        y="probability",
    )


def show_explanation(explanation: dict[str, Any]) -> None:
    st.subheader(f"Why {explanation['label']}")
    st.caption(
        f"Method: {explanation['method']}. How much the probability of {explanation['label']} "
        "drops when each part is replaced by its baseline; the largest first."
    )
    parts = explanation["contributions"]
    st.bar_chart(
        {"part": [p["name"] for p in parts], "contribution": [p["value"] for p in parts]},
        x="part",
        y="contribution",
        horizontal=True,
        sort=False,
    )


def main() -> None:
    st.set_page_config(page_title="Prediction demo", layout="centered")
    try:
        model = call("GET", "/model")
    except ApiError as error:
        st.error(f"No model to show: {error}.")
        st.stop()
    show_model(model)
    answer = st.container()  # the prediction above the inputs, in sight while they change
    features = model["features"]
    if features[0]["kind"] == "image":
        body = picture_form(features[0])
        sent = {"files": body}
    else:
        body = record_form(features)
        sent = {"json": body}
    if body is None:
        return
    with answer:
        try:
            show_prediction(call("POST", "/predict", **sent))
            if explains():
                show_explanation(call("POST", "/explain", **sent))
        except ApiError as error:
            st.error(f"No prediction: {error}.")


main()
