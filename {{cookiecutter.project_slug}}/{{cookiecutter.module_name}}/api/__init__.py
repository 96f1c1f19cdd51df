"""The prediction service (M4): a FastAPI app serving the ONNX bundle of the `export` stage.

Run it with `make serve`. Its modules, each with one job:

- `settings`: what the service reads from the environment and `.env`;
- `bundle`: reads `models/bundle/`, checks it and runs the ONNX model;
- `registry`: with `API_MODEL_URI`, downloads the bundle of a registered model from an MLflow
  tracking server (plain HTTP, no MLflow client);
- `schemas`: request and response models, derived from the bundle's feature list;
- `predictions`: turns validated records into predictions, through the cache when there is one;
- `main`: the app factory, its startup (lifespan) and the routes.

The service imports FastAPI, pydantic, ONNX Runtime and numpy, never the pipeline's stack
(scikit-learn, pandas, MLflow), so it installs with `uv sync --no-default-groups --group serve`.
"""
