"""{{ cookiecutter.project_name | docstring_text }}.

{{ cookiecutter.description | docstring_text(width=96) }}
"""

# First: config loads .env and the tool defaults before any module imports MLflow or the others.
from . import config as config

__version__ = "0.1.0"
