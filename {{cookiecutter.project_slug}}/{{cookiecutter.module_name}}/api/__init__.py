"""The prediction service (M4): a FastAPI app serving the ONNX bundle in models/bundle/.

Run it with `make serve`; interactive docs at http://127.0.0.1:8000/docs. One job per module:

- `main`: `create_app()` assembles the app and lists its optional parts (`PARTS`); its lifespan
  loads the model at startup;
- `settings`: the `API_*` variables, read once (pydantic-settings), in one class;
- `schemas`: request and response models; `Record` is built from the bundle's features;
- `routes`: the endpoints, thin, with what they receive through `Depends`;
- `errors`: the 422 answer, naming each field and the accepted range of a feature;
- `docs`: /docs and /redoc from local files, so they work offline;
{%- if cookiecutter.use_redis_cache %}
- `cache`: the Redis prediction cache, an optional part;
{%- endif %}
- `predictor`: the path of a prediction, from validated records through the model (the
  package's `inference`) to the answer.

The service imports FastAPI, pydantic, ONNX Runtime and numpy, never the pipeline's stack
(scikit-learn, pandas, MLflow), so it installs with `uv sync --no-default-groups --group serve`.
"""
