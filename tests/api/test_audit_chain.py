"""`hub audit verify` finds an edited, deleted or reordered audit row and names it; the
database itself refuses such edits until an operator drops its triggers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from hub.cli_audit import audit_app
from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent
from tests.audit.tampering import tamper


def run_verify(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    settings = hub.settings
    monkeypatch.setenv("HUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUB_DATABASE_URL", str(settings.database_url))
    assert settings.master_key is not None
    monkeypatch.setenv("HUB_MASTER_KEY", settings.master_key.get_secret_value())
    result = CliRunner().invoke(audit_app, ["verify"])
    return result.exit_code, result.output


@pytest.fixture
def busy_hub(hub: Hub) -> Hub:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    disclose(hub, case_id)
    disclose(hub, case_id, categories=["police_contact"])
    return hub


def test_untouched_log_verifies(busy_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run_verify(busy_hub, monkeypatch)
    assert code == 0, output
    assert "audit log verifies" in output
    assert "signatures verified" in output


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
    tamper(busy_hub.state.engine, statement(target))

    code, output = run_verify(busy_hub, monkeypatch)

    assert code == 1
    assert f"audit log does not verify: {expected.format(n=target)}" in output


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET body = replace(body, 'allow', 'deny') WHERE seq = 2",
        "DELETE FROM audit_entry WHERE seq = 2",
    ],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_the_log(
    busy_hub: Hub, monkeypatch: pytest.MonkeyPatch, statement: str
) -> None:
    refused = pytest.raises(DBAPIError, match="audit_entry is append-only")
    with refused, busy_hub.state.engine.begin() as conn:
        conn.execute(text(statement))

    code, output = run_verify(busy_hub, monkeypatch)
    assert code == 0, output
