"""Settings that change how the hub names and checks things."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.pool import QueuePool

from hub.bootstrap import POOL_SPARE, initialise, open_existing
from hub.config import Settings
from hub.services.audit_checkpoints import log_origin


def test_audit_origin_is_pinned_when_set_and_derived_otherwise() -> None:
    assert log_origin(Settings(audit_origin="hub.northtown.example/audit")) == (
        "hub.northtown.example/audit"
    )
    assert log_origin(Settings(public_url="https://hub.example.org")) == "hub.example.org/audit"


def test_audit_origin_may_not_hold_spaces_or_plus_signs() -> None:
    with pytest.raises(ValidationError, match="audit_origin"):
        Settings(audit_origin="two words")


def test_production_refuses_generated_secrets() -> None:
    with pytest.raises(ValidationError, match="HUB_MASTER_KEY"):
        Settings(environment="production", database_url="postgresql+psycopg://x@y/z")


def test_access_tokens_live_at_most_ten_minutes() -> None:
    with pytest.raises(ValidationError, match="access_token_ttl_seconds"):
        Settings(access_token_ttl_seconds=601)


def test_the_database_pool_keeps_a_connection_for_every_handler_thread(tmp_path: Path) -> None:
    # Connections beyond the pool are opened and closed per use: a new server process each
    # time on PostgreSQL. Every handler thread, and the audit writer, must find one kept open.
    settings = Settings(data_dir=tmp_path / "var", request_threads=12)
    initialise(settings)
    opened = open_existing(settings)
    try:
        pool = opened.engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 12 + POOL_SPARE and POOL_SPARE >= 2
    finally:
        opened.engine.dispose()
