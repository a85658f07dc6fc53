"""A fast subset of scripts/conformance.py: real specs, the real gateway, Prism judging every request."""

from __future__ import annotations

import pytest

from tests.support.conformance import ACCEPTED, run_spec
from tests.support.openapi import SHARED_SPECS

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node, pytest.mark.corpus]

SUBSET = [
    "oas-examples/2.0/petstore-expanded.json",  # Swagger 2.0 conversion
    "oas-examples/3.0/petstore.json",  # bodies, arrays in the query, security headers
    "oas-examples/3.0/parameters-cookies.json",
    "oas-examples/3.0/form-data.json",  # application/x-www-form-urlencoded
    "oas-examples/3.1/train-travel.json",
    "oas-examples/3.0/polymorphism.json",  # oneOf: values matching exactly one alternative, discriminators
    "oas-examples/3.0/security.json",  # Basic-only operations through a second upstream
]


@pytest.mark.parametrize("spec", SUBSET)
async def test_every_generated_call_is_accepted_by_prism(spec: str) -> None:
    result = await run_spec(SHARED_SPECS / spec, calls_per_tool=2)
    assert result.error is None
    assert result.tools == result.operations and result.calls
    rejected = [(c.tool, c.outcome, c.detail) for c in result.calls if c.outcome != ACCEPTED]
    assert rejected == []
