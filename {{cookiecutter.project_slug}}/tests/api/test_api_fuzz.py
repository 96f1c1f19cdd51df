"""Property-based fuzzing of the service from its own OpenAPI schema (schemathesis).

For every operation, schemathesis generates valid requests (positive mode) and invalid ones
(negative mode) and checks each answer: no server error, a documented status code, a body that
matches the documented schema, invalid input rejected, valid input accepted. Once with a loaded
model, once without one (every prediction answers the documented 503).

The hypothesis strategies are used directly rather than `schema.parametrize()`: its fixture-based
loader, which an app built from a test bundle needs, does not run under pytest 9.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from {{ cookiecutter.module_name }}.api.main import (
    create_app,
)

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 50
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def fuzz(schema, excluded_checks=()) -> list[str]:
    """Run every operation of `schema` through its strategy; return the operations tried."""
    # A body over API_MAX_BODY_BYTES (a long text, say) is refused before it is read, with the
    # documented 413: a rejection of invalid data too.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    # An uploaded picture is `binary` in the schema, which cannot say "a PNG or JPEG": the random
    # bytes schemathesis sends as one get the documented 415.
    acceptance = schema.config.checks.positive_data_acceptance
    acceptance.expected_statuses = [*acceptance.expected_statuses, "415"]
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()
        # Without a body or parameters there is no invalid request to make.
        for mode in MODES if len(operation.body) else [GenerationMode.POSITIVE]:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                # No shrinking: the first failing request is reported as it is, in seconds.
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case) -> None:
                response = case.call_and_validate(excluded_checks=list(excluded_checks))
                assert response.status_code in (200, 400, 413, 415, 422, 503)

            check()
        tried.append(operation.label)
    return tried


def test_service_with_a_model_honours_its_schema(api_settings):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(api_settings))
    assert set(fuzz(schema)) == {
        "GET /health",
        "GET /ready",
        "GET /model",
        "POST /predict",
        "POST /predict/batch",
{%- if cookiecutter.use_explain_api %}
        "POST /explain",
{%- endif %}
    }


def test_service_without_a_model_honours_its_schema(api_settings, tmp_path):
    settings_without_model = api_settings.model_copy(update={"bundle_dir": tmp_path / "none"})
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_without_model))
    # 503 is this app's documented answer, which the generic "no 5xx" check would refuse.
    operations = {{ 6 if cookiecutter.use_explain_api else 5 }}  # every route of the schema
    assert len(fuzz(schema, excluded_checks=[schemathesis.checks.not_a_server_error])) == operations
