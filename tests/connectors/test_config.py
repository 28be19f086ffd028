from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors import (
    CategoryRule,
    ConnectorConfig,
    ConnectorConfigError,
    RestConnector,
    SqlConnector,
    Timeout,
    load_connector_config,
)

BASE = Path("/srv/agency")


def sql_mapping(**category: Any) -> dict[str, Any]:
    rule = {
        "query": "SELECT person_id, kind, officer_name FROM contacts WHERE person_id = :local_id",
        "fields": ["kind"],
        "third_party": ["officer_name"],
    }
    rule.update(category)
    return {
        "source": {"kind": "sql", "url": "sqlite:////srv/agency/police.db"},
        "categories": {"police_contact": rule},
    }


def rest_mapping(**source: Any) -> dict[str, Any]:
    return {
        "source": {"kind": "rest", "base_url": "https://records.example.org/care", **source},
        "categories": {
            "social_care": {
                "path": "/people/{local_id}/plans",
                "fields": ["status"],
                "third_party": ["allocated_worker"],
            }
        },
    }


def test_apply_keeps_mapped_fields_redacts_third_parties_and_drops_the_rest() -> None:
    rule = CategoryRule(
        "SELECT ...", fields=("kind", "outcome", "absent"), third_party=("officer",)
    )
    row = {"person_id": "NTP-1", "kind": "stop", "outcome": None, "officer": "PC X", "note": "n"}

    assert rule.apply(row) == {"kind": "stop", "outcome": None, "officer": "[redacted]"}


def test_apply_leaves_an_empty_third_party_empty_and_a_missing_one_absent() -> None:
    rule = CategoryRule("q", fields=("kind",), third_party=("officer", "witness"))

    assert rule.apply({"kind": "stop", "officer": None}) == {"kind": "stop", "officer": None}


def test_sql_mapping_parses_with_defaults() -> None:
    config = ConnectorConfig.from_mapping(sql_mapping(), base_dir=BASE)

    assert config.kind == "sql"
    assert config.settings == {"url": "sqlite:////srv/agency/police.db"}
    assert config.timeout == Timeout(2.0, 5.0)
    assert config.categories["police_contact"].fields == ("kind",)
    assert config.categories["police_contact"].third_party == ("officer_name",)


def test_relative_paths_are_resolved_against_base_dir() -> None:
    data = rest_mapping(
        token_file="secrets/care.token", client_cert="../tls/c.pem", ca_file="ca.pem"
    )
    data["source"]["client_key"] = "/etc/tls/c.key"

    settings = ConnectorConfig.from_mapping(data, base_dir=BASE).settings

    assert settings["token_file"] == "/srv/agency/secrets/care.token"
    assert settings["client_cert"] == "/srv/tls/c.pem"
    assert settings["ca_file"] == "/srv/agency/ca.pem"
    assert settings["client_key"] == "/etc/tls/c.key"


def test_a_relative_sqlite_path_is_resolved_against_base_dir() -> None:
    data = sql_mapping()
    data["source"]["url"] = "sqlite:///data/police.db"

    config = ConnectorConfig.from_mapping(data, base_dir=BASE)

    assert config.settings["url"] == "sqlite:////srv/agency/data/police.db"


@pytest.mark.parametrize("data", [sql_mapping(), rest_mapping(token_file="t", ca_file="ca.pem")])
def test_to_mapping_round_trips_through_json(data: dict[str, Any]) -> None:
    data["source"]["read_timeout"] = 1.5
    config = ConnectorConfig.from_mapping(data, base_dir=BASE)

    stored = json.loads(json.dumps(config.to_mapping()))

    assert ConnectorConfig.from_mapping(stored, base_dir=Path("/elsewhere")) == config
    assert config.timeout == Timeout(connect=2.0, read=1.5)


def test_load_connector_config_reads_toml_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "police.toml"
    path.write_text(
        """
[source]
kind = "sql"
url = "sqlite:///police.db"
connect_timeout = 1
read_timeout = 3.5

[categories.police_contact]
query = '''SELECT person_id, kind FROM contacts
           WHERE person_id = :local_id'''
fields = ["kind"]
""",
        encoding="utf-8",
    )

    config = load_connector_config(path)

    assert config.settings["url"] == f"sqlite:///{tmp_path / 'police.db'}"
    assert config.timeout == Timeout(connect=1, read=3.5)
    assert config.categories["police_contact"].third_party == ()


def test_load_connector_config_rejects_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[source\nkind = 'sql'\n", encoding="utf-8")

    with pytest.raises(ConnectorConfigError, match="is not valid TOML"):
        load_connector_config(path)


def test_load_connector_config_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConnectorConfigError, match="cannot read connector config"):
        load_connector_config(tmp_path / "absent.toml")


def _sql(**changes: Any) -> dict[str, Any]:
    return sql_mapping(**changes)


def _with_source(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data["source"].update(changes)
    return data


def _without_source_key(data: dict[str, Any], key: str) -> dict[str, Any]:
    del data["source"][key]
    return data


def _without_fields() -> dict[str, Any]:
    data = sql_mapping()
    del data["categories"]["police_contact"]["fields"]
    return data


def _renamed_category(name: str) -> dict[str, Any]:
    data = sql_mapping()
    data["categories"] = {name: data["categories"]["police_contact"]}
    return data


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown kind", _with_source(_sql(), kind="ftp"), r"source\.kind 'ftp' is unknown"),
    ("kind missing", _without_source_key(_sql(), "kind"), r"source\.kind is required"),
    ("url missing", _without_source_key(_sql(), "url"), r"missing required key\(s\) \['url'\]"),
    ("url empty", _with_source(_sql(), url=""), r"source\.url must be a non-empty string"),
    ("url invalid", _with_source(_sql(), url="not a url"), "not a valid SQLAlchemy URL"),
    ("base_url missing", _without_source_key(rest_mapping(), "base_url"), r"\['base_url'\]"),
    ("base_url not http", rest_mapping(base_url="ftp://x/y"), "absolute http"),
    ("base_url with query", rest_mapping(base_url="https://x/y?a=1"), "query or fragment"),
    ("rest key on sql", _with_source(_sql(), token_file="t"), r"unknown key\(s\) \['token_file'\]"),
    ("unknown source key", _with_source(_sql(), user="x"), r"source: unknown key\(s\) \['user'\]"),
    ("unknown top key", {**_sql(), "extra": {}}, r"config: unknown key\(s\) \['extra'\]"),
    ("no categories", {**_sql(), "categories": {}}, "at least one category is required"),
    ("source not a table", {"source": "sql", "categories": {}}, "source must be a table"),
    ("key without cert", rest_mapping(client_key="k.pem"), "client_key needs source.client_cert"),
    ("negative timeout", _with_source(_sql(), read_timeout=-1), "positive numbers"),
    ("boolean timeout", _with_source(_sql(), connect_timeout=True), "positive numbers"),
    ("no :local_id", _sql(query="SELECT kind FROM contacts"), "must use the bound parameter"),
    ("other parameter", _sql(query="SELECT a FROM t WHERE a = :local_id AND b = :b"), r"\['b'\]"),
    ("not a SELECT", _sql(query="DELETE FROM t WHERE a = :local_id"), "must be a SELECT"),
    ("two statements", _sql(query="SELECT a FROM t WHERE a = :local_id; DROP TABLE t"), "single"),
    ("comment", _sql(query="SELECT a FROM t WHERE a = :local_id -- x"), "comments"),
    ("block comment", _sql(query="SELECT /* x */ a FROM t WHERE a = :local_id"), "comments"),
    ("SELECT INTO", _sql(query="SELECT a INTO copy FROM t WHERE a = :local_id"), "INTO"),
    ("path key on sql", _sql(path="/x/{local_id}"), r"unknown key\(s\) \['path'\]"),
    ("fields missing", _without_fields(), r"missing required key\(s\) \['fields'\]"),
    ("fields empty", _sql(fields=[]), "must name at least one column"),
    ("fields not a list", _sql(fields="kind"), "must be a list of non-empty strings"),
    ("field twice", _sql(fields=["kind", "kind"]), "lists a column twice"),
    ("field and third party", _sql(fields=["kind", "officer_name"]), "in both fields and third"),
    ("bad category name", _renamed_category("Police Contact"), "lower-case letters"),
]


@pytest.mark.parametrize(
    ("data", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_configs_are_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorConfigError, match=message):
        ConnectorConfig.from_mapping(data, base_dir=BASE)


def rest_rule(path: str) -> dict[str, Any]:
    data = rest_mapping()
    data["categories"]["social_care"]["path"] = path
    return data


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("people/{local_id}", "starting with a single '/'"),
        ("//evil.example/{local_id}", "starting with a single '/'"),
        ("/people/plans", r"contain \{local_id\} exactly once"),
        ("/people/{local_id}/{local_id}", r"contain \{local_id\} exactly once"),
        ("/people/{local_id}/{other}", "no other placeholder"),
        ("/people/{local_id!r}", "no other placeholder"),
        ("/people/{local_id", "unbalanced braces"),
    ],
)
def test_invalid_rest_paths_are_rejected(path: str, message: str) -> None:
    with pytest.raises(ConnectorConfigError, match=message):
        ConnectorConfig.from_mapping(rest_rule(path), base_dir=BASE)


def test_a_config_built_in_code_is_validated_too() -> None:
    rule = CategoryRule("/people/{local_id}", fields=("status",))

    with pytest.raises(ConnectorConfigError, match=r"source\.token_file must be an absolute path"):
        ConnectorConfig(
            kind="rest",
            settings={"base_url": "http://127.0.0.1", "token_file": "relative.token"},
            categories={"social_care": rule},
        )


def test_connectors_validate_their_own_arguments() -> None:
    rule = CategoryRule("SELECT a FROM t", fields=("a",))

    with pytest.raises(ConnectorConfigError, match="must use the bound parameter :local_id"):
        SqlConnector("sqlite:////tmp/x.db", {"identity": rule})
    with pytest.raises(ConnectorConfigError, match="must be a path starting"):
        RestConnector("http://127.0.0.1", {"identity": rule})


def test_from_config_refuses_the_other_kind() -> None:
    config = ConnectorConfig.from_mapping(sql_mapping(), base_dir=BASE)

    with pytest.raises(ConnectorConfigError, match="is not 'rest'"):
        RestConnector.from_config(config)


def test_timeout_rejects_non_positive_values() -> None:
    with pytest.raises(ValueError, match="timeout read must be a positive number"):
        Timeout(read=0)
