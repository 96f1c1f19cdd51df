"""The prediction service (M4), `make serve`: a FastAPI app serving the ONNX bundle.

`main` assembles the app and lists its optional parts (`PARTS`), `settings` reads the `API_*`
variables, `schemas` holds the requests and answers, `routes` the endpoints and the 422 answer,{% if cookiecutter.use_redis_cache %}
`cache` the Redis prediction cache,{% endif %}
`predictor` the path of a prediction. It imports FastAPI, pydantic, ONNX Runtime and numpy,
never the pipeline's stack, so it installs with `uv sync --no-default-groups --group serve`.
"""
