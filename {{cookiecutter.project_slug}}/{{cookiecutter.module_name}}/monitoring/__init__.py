"""Monitoring of the served model (M6): what it was asked, and whether that still looks like the
training data.

In the service (optional parts of api/main.py):
- `metrics`: Prometheus metrics of the requests and predictions, at /metrics;
- `prediction_log`: each answered prediction, queued for the prediction log;
- `store`: the prediction log itself, an SQLite file the service appends to and the drift job
  reads; standard library only;
- `summary`: drift.json, the contract between the drift job and the service, which publishes
  it as metrics; pydantic only.

Jobs, run by hand or on a schedule:
- `drift`: `make drift`, an Evidently report of recent logged inputs against the training data;
- `traffic`: `make simulate-traffic`, normal then shifted requests to a running service, with
  their true labels, so drift and a fall in accuracy can be seen end to end.

The service never imports `drift` or `traffic`: Evidently and pandas load in the drift job,
never in the serving path.
"""
