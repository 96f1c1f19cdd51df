"""Monitoring of the served model (M6): what it was asked, and whether that still looks like the
training data.

- `store`: the prediction log, an SQLite file the service appends to (see
  `api/prediction_log.py`) and the jobs below read; standard library only;
- `summary`: drift.json, the contract between the drift job and the service, which
  publishes it as metrics; pydantic only;
- `drift`: `make drift`, an Evidently report of recent logged inputs against the training data;
- `traffic`: `make simulate-traffic`, normal then shifted requests to a running service, with
  their true labels, so drift and a fall in accuracy can be seen end to end.

The service imports `store` and `summary` only: Evidently and pandas load in the
drift job, never in the serving path.
"""
