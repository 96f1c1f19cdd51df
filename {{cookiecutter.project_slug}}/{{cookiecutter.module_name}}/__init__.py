"""{{ cookiecutter.project_name }}.

{{ cookiecutter.description | wordwrap(96) }}
"""

import os

# Tool telemetry stays off unless the team sets these variables otherwise. This runs before any
# module of the package, so before MLflow and CodeCarbon read them at their own import.
for _variable, _value in {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "CODECARBON_LOG_LEVEL": "error",
}.items():
    os.environ.setdefault(_variable, _value)

__version__ = "0.1.0"
