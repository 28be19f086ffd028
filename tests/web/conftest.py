"""A whole demo hub per test (the API tests' fixtures) for the web UI's non-browser tests."""

from __future__ import annotations

from tests.api.conftest import hub, hub_settings, make_hub, opa_oracle, sources

__all__ = ["hub", "hub_settings", "make_hub", "opa_oracle", "sources"]
