"""The prediction service (M4): a FastAPI app serving the ONNX bundle in models/bundle/.

`make serve` runs it. `main` assembles the app and lists its optional parts (`PARTS`),
`settings` reads the `API_*` variables, `schemas` holds the requests and answers, `routes` the
endpoints, `errors` the 422 answer, `docs` offline /docs and /redoc,{% if cookiecutter.use_redis_cache %}
`cache` the Redis prediction cache,{% endif %}
`predictor` the path of a prediction. It imports FastAPI, pydantic, ONNX Runtime and numpy,
never the pipeline's stack, so it installs with `uv sync --no-default-groups --group serve`.
"""
