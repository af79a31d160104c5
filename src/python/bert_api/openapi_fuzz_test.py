"""Schemathesis against the service's own OpenAPI schema: generated requests, no 5xx, no schema
violations.

Checks run: no server error, documented status code, content type, headers and response schema. Not
run: "positive data acceptance", because the request limits (items, characters, tokens) are
settings, not part of the static schema, and answering 422 to a request over them is the designed
behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bert_api.testing import RunningServer, run_server
from bert_runtime.testutil.models import TINY_BERT_MLM

EXAMPLES_PER_OPERATION = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server({"MODEL_NAME": str(TINY_BERT_MLM)}, tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def test_generated_requests_get_no_5xx_and_conform_to_the_schema(server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/docs/openapi.json")
    executed = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"the schema has an invalid operation: {result.err()}")
            continue
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            nonlocal executed
            executed += 1
            case.call_and_validate(base_url=server.url, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as error:  # - collect every operation's failure, then report
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
    assert executed >= 1000, f"only {executed} cases ran"
    assert server.process.poll() is None, "the server died"
