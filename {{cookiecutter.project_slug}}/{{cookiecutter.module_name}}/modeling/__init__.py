"""The modelling stages of the pipeline: `train` -> `evaluate` -> `export`.

`train` fits a candidate model and records it in MLflow; `evaluate` scores it on the test split,
registers it and lets the quality gate decide whether it becomes the `champion`; `export` turns
the champion into the ONNX bundle that the prediction service loads. Each is a typer command,
run by DVC as `python -m <package>.modeling.<stage>`.
"""
