"""The prediction service (M4): a FastAPI app serving the ONNX bundle in models/bundle/.

Run it with `make serve`; interactive docs at http://127.0.0.1:8000/docs. One job per module
(an optional part of the service, chosen at generation, is a module of its own too: see
`main.OPTIONAL_PARTS`):

- `main`: `create_app()` assembles the app; its lifespan loads the model at startup;
- `settings`: the `API_*` variables, read once (pydantic-settings);
- `deps`: what routes receive through `Depends`: the settings and the loaded predictor;
- `schemas`: request and response models; `Record` is built from the bundle's features;
- `routes`: the endpoints, thin;
- `errors`: the 422 answer, naming each field and the accepted range of a feature;
- `docs`: /docs and /redoc from local files, so they work offline;
- `predictor`: runs validated records through the model (the package's `inference`).

The service imports FastAPI, pydantic, ONNX Runtime and numpy, never the pipeline's stack
(scikit-learn, pandas, MLflow), so it installs with `uv sync --no-default-groups --group serve`.
"""
