"""`hub audit verify` finds an edited, deleted or reordered audit row and names it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from hub.cli import app
from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent


def run_verify(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    settings = hub.settings
    monkeypatch.setenv("HUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUB_DATABASE_URL", str(settings.database_url))
    assert settings.master_key is not None
    monkeypatch.setenv("HUB_MASTER_KEY", settings.master_key.get_secret_value())
    result = CliRunner().invoke(app, ["audit", "verify"])
    return result.exit_code, result.output


@pytest.fixture
def busy_hub(hub: Hub) -> Hub:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    disclose(hub, case_id)
    disclose(hub, case_id, categories=["police_contact"])
    return hub


def tamper(hub: Hub, statements: str) -> None:
    with hub.state.engine.begin() as conn:
        for statement in statements.split(";"):
            conn.execute(text(statement))


def test_untouched_log_verifies(busy_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run_verify(busy_hub, monkeypatch)
    assert code == 0, output
    assert "audit log verifies" in output


TAMPERING: dict[str, tuple[Callable[[int], str], str]] = {
    "edited": (
        lambda n: f"UPDATE audit_entry SET body = replace(body, 'allow', 'deny') WHERE seq = {n}",
        "entry {n} has been altered",
    ),
    "deleted": (lambda n: f"DELETE FROM audit_entry WHERE seq = {n}", "entry {n} is missing"),
    "reordered": (
        # Swap two rows' places: each keeps its own content under the other's number.
        lambda n: (
            f"UPDATE audit_entry SET seq = -1 WHERE seq = {n};"
            f"UPDATE audit_entry SET seq = {n} WHERE seq = {n + 1};"
            f"UPDATE audit_entry SET seq = {n + 1} WHERE seq = -1"
        ),
        "entry {n}",
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_tampering_is_found_and_named(
    busy_hub: Hub, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    with busy_hub.state.engine.connect() as conn:
        target = conn.execute(
            text("SELECT max(seq) FROM audit_entry WHERE kind = 'disclosure'")
        ).scalar_one()
    statement, expected = TAMPERING[how]
    if how == "reordered":
        target -= 1
    tamper(busy_hub, statement(target))

    code, output = run_verify(busy_hub, monkeypatch)

    assert code == 1
    assert expected.format(n=target) in output
