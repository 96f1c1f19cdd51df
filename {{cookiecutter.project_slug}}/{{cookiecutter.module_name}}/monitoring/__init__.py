"""Monitoring of the served model (M6). In the service: `metrics` (Prometheus, /metrics) and
`prediction_log` (each prediction queued for `store`, an SQLite file); `summary` is drift.json,
which the drift job writes and the service publishes. Jobs: `drift` (`make drift`, Evidently) and
`traffic` (`make simulate-traffic`). The service never imports `drift` or `traffic`, so Evidently
and pandas stay out of the serving path.
"""
