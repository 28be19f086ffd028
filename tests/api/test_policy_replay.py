"""`hub policy replay` shows a DPO what a candidate policy would have changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import policies
from hub.cli import app
from tests.api.conftest import Hub
from tests.api.flows import case_in_assessment, disclose, record_consent, use_hub_env


def candidate_without_social_care_at_assessment(tmp_path: Path) -> Path:
    """The shipped policy, except that a situation table no longer releases social-care
    records at assessment."""
    folder = tmp_path / "candidate"
    shutil.copytree(policies.policy_root(), folder)
    profile = folder / "hub/config/profiles/situation_table/data.json"
    data = json.loads(profile.read_text())
    del data["release"]["assessment"]["social_care"]
    profile.write_text(json.dumps(data, indent=2))
    return folder


def test_replay_reports_the_decisions_a_change_would_flip(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    both = disclose(hub, case_id, categories=["education", "social_care"]).json()
    only_education = disclose(hub, case_id, categories=["education"]).json()
    denied = disclose(hub, case_id, categories=["police_contact"])
    assert denied.status_code == 403
    use_hub_env(hub, monkeypatch)
    candidate = candidate_without_social_care_at_assessment(tmp_path)

    as_json = CliRunner().invoke(app, ["policy", "replay", "--policies", str(candidate), "--json"])
    as_table = CliRunner().invoke(app, ["policy", "replay", "--policies", str(candidate)])
    unchanged = CliRunner().invoke(
        app, ["policy", "replay", "--policies", str(policies.policy_root()), "--json"]
    )

    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["decisions"] == 3
    assert report["counts"]["allow_to_deny"] == 1
    assert report["counts"]["unchanged"] == 2
    [flipped] = report["changed"]
    assert flipped["decision_id"] == both["decision_id"]
    assert flipped["after"]["allow"] is False
    assert "category_not_released_at_stage" in flipped["after_reasons"]
    assert only_education["decision_id"] not in as_json.output
    assert as_table.exit_code == 0
    assert both["decision_id"] in as_table.output and "allow_to_deny" in as_table.output
    assert "1 allow_to_deny" in as_table.output
    assert json.loads(unchanged.output)["changed"] == []


def test_replay_since_skips_older_decisions(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = case_in_assessment(hub)
    record_consent(hub, case_id)
    disclose(hub, case_id, categories=["education", "social_care"])
    use_hub_env(hub, monkeypatch)
    later = (hub.now[0].replace(tzinfo=None)).isoformat(timespec="seconds")
    next_year = f"{int(later[:4]) + 1}{later[4:]}"

    result = CliRunner().invoke(
        app,
        [
            "policy",
            "replay",
            "--policies",
            str(candidate_without_social_care_at_assessment(tmp_path)),
            "--since",
            next_year,
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["decisions"] == 0
