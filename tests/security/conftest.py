"""The security suites run against the same whole demo hub as the API tests."""

from __future__ import annotations

from tests.api.conftest import (  # noqa: F401  (fixtures, found by pytest by name)
    hub,
    hub_settings,
    make_hub,
    opa_oracle,
    sources,
)
