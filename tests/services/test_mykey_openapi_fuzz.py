"""The MyKey API fuzzed against its own OpenAPI schema (schemathesis, bounded examples): no 5xx
answer and every answer as the schema documents it (status, content type, body)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.services.store import sqlite_url
from support.mykey import RunningPlatform, new_card, running_platform

pytestmark = pytest.mark.services

# Bounded: enough to reach every branch of request validation, small enough for CI.
EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def fuzzed_platform(
    tmp_path_factory: pytest.TempPathFactory, sandbox_issuer: SandboxIssuer
) -> Iterator[RunningPlatform]:
    folder = tmp_path_factory.mktemp("mykey-fuzz")
    cards = folder / "cards"
    new_card(cards, sandbox_issuer, "fuzz")
    with running_platform(
        sqlite_url(folder / "services.sqlite3"), sandbox_issuer, Path(cards)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def mykey_schema(fuzzed_platform: RunningPlatform) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_platform.app)


@pytest.fixture(scope="module")
def service_credential(fuzzed_platform: RunningPlatform) -> str:
    return str(fuzzed_platform.admin.add_service("Fuzzed library")["credential"])


def test_api_matches_its_schema(
    mykey_schema: schemathesis.BaseSchema, service_credential: str
) -> None:
    # Each operation in turn through Hypothesis directly (schemathesis' own pytest plugin
    # does not run on this pytest version).
    operations = []
    for result in mykey_schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {service_credential}"},
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )

        fuzz()
