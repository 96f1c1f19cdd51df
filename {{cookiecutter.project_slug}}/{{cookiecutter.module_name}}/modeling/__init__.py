"""The modelling stages of the pipeline, in dvc.yaml's order: `train` -> `evaluate` -> `export`
-> `promote`.

`train` fits the candidate and logs it to MLflow; `evaluate` scores it on the test split and
writes the metrics, plots and figures; `export` converts it to an ONNX bundle, checks parity
and registers it; `promote` lets the gate decide whether it replaces the `champion`
(models/bundle and the alias). Each is a typer command: `python -m <package>.modeling.<stage>`.
"""
