from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

from connectors import (
    CategoryRule,
    ConnectorConfigError,
    ConnectorError,
    ConnectorTimeout,
    ConnectorUnavailable,
    Record,
    RestConnector,
    SourceQuery,
    Timeout,
    build_connector,
    load_connector_config,
)
from hub.demo.people import ALEX, CHILDRENS_SERVICES, YOUTH_WORK
from hub.demo.sources import SourceServer, rest_source_app

from .conftest import DemoSources, closed_port

ALEX_CS = ALEX.local_ids[CHILDRENS_SERVICES]


def demo_connector(sources: DemoSources, slug: str) -> RestConnector:
    connector = build_connector(load_connector_config(sources.configs[slug]))
    assert isinstance(connector, RestConnector)
    return connector


def test_fetch_from_demo_source_maps_and_redacts(demo_sources: DemoSources) -> None:
    with demo_connector(demo_sources, CHILDRENS_SERVICES) as connector:
        result = connector.fetch(SourceQuery(ALEX_CS, ("identity", "social_care", "education")))

    assert result.records == (
        Record(
            "identity",
            {"given_name": "Alex", "family_name": "Example", "date_of_birth": "2011-03-14"},
        ),
        Record(
            "social_care",
            {
                "opened_on": "2024-11-04",
                "plan_type": "child_in_need",
                "status": "open",
                "allocated_worker": "[redacted]",
            },
        ),
    )
    shared = json.dumps([r.fields for r in result.records])
    assert ALEX_CS not in shared
    assert "Pat Fictitious" not in shared
    assert "staying out overnight" not in shared


def test_unknown_person_is_404_and_no_records(demo_sources: DemoSources) -> None:
    with demo_connector(demo_sources, YOUTH_WORK) as connector:
        categories = tuple(connector.categories)
        assert connector.fetch(SourceQuery("BP-999", categories)).records == ()


def test_local_id_is_escaped_into_one_path_segment(demo_sources: DemoSources) -> None:
    sneaky = f"{ALEX_CS}/../../{ALEX_CS}"
    with demo_connector(demo_sources, CHILDRENS_SERVICES) as connector:
        assert connector.fetch(SourceQuery(sneaky, ("identity",))).records == ()


@pytest.mark.parametrize("local_id", [".", ".."])
def test_dot_segment_local_id_is_refused(demo_sources: DemoSources, local_id: str) -> None:
    connector = demo_connector(demo_sources, CHILDRENS_SERVICES)
    with connector, pytest.raises(ConnectorError, match="cannot be used as a path") as caught:
        connector.fetch(SourceQuery(local_id, ("identity",)))
    assert caught.value.code == "bad_query"


def _connector_with_token(sources: DemoSources, token_file: Path | None) -> RestConnector:
    config = load_connector_config(sources.configs[CHILDRENS_SERVICES])
    return RestConnector(config.settings["base_url"], config.categories, token_file=token_file)


def test_wrong_token_is_unavailable(demo_sources: DemoSources, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token\n", encoding="utf-8")

    with (
        _connector_with_token(demo_sources, wrong) as connector,
        pytest.raises(ConnectorUnavailable, match="source answered HTTP 401"),
    ):
        connector.fetch(SourceQuery(ALEX_CS, ("identity",)))


def test_missing_token_is_unavailable(demo_sources: DemoSources) -> None:
    with (
        _connector_with_token(demo_sources, None) as connector,
        pytest.raises(ConnectorUnavailable, match="source answered HTTP 401"),
    ):
        connector.fetch(SourceQuery(ALEX_CS, ("identity",)))


def test_each_rest_source_checks_its_own_token(demo_sources: DemoSources) -> None:
    youth_token = demo_sources.directory / f"{YOUTH_WORK}.token"

    with (
        _connector_with_token(demo_sources, youth_token) as connector,
        pytest.raises(ConnectorUnavailable, match="source answered HTTP 401"),
    ):
        connector.fetch(SourceQuery(ALEX_CS, ("identity",)))


def test_unreadable_token_file_is_a_config_error(demo_sources: DemoSources, tmp_path: Path) -> None:
    with (
        _connector_with_token(demo_sources, tmp_path / "absent.token") as connector,
        pytest.raises(ConnectorConfigError, match=r"cannot read source\.token_file"),
    ):
        connector.fetch(SourceQuery(ALEX_CS, ("identity",)))


def test_connection_refused_is_unavailable() -> None:
    rules = {"identity": CategoryRule("/people/{local_id}", fields=("given_name",))}
    with (
        RestConnector(f"http://127.0.0.1:{closed_port()}", rules) as connector,
        pytest.raises(ConnectorUnavailable, match=r"cannot reach source \(ConnectError\)"),
    ):
        connector.fetch(SourceQuery("X-1", ("identity",)))


def test_unmapped_category_never_touches_the_network() -> None:
    rules = {"identity": CategoryRule("/people/{local_id}", fields=("given_name",))}
    with RestConnector(f"http://127.0.0.1:{closed_port()}", rules) as connector:
        assert connector.fetch(SourceQuery("X-1", ("health",))).records == ()


def odd_source_app() -> FastAPI:
    """A record system that misbehaves in every way the connector must survive."""
    app = FastAPI()

    @app.get("/people/{local_id}/ok")
    def ok(local_id: str) -> JSONResponse:
        return JSONResponse(
            [{"id": local_id, "status": "open"}, {"id": local_id, "status": "closed"}]
        )

    @app.get("/people/{local_id}/slow")
    async def slow(local_id: str) -> JSONResponse:
        await asyncio.sleep(0.5)
        return JSONResponse({"status": "late"})

    @app.get("/people/{local_id}/text")
    def text(local_id: str) -> PlainTextResponse:
        return PlainTextResponse("status: open")

    @app.get("/people/{local_id}/scalar")
    def scalar(local_id: str) -> JSONResponse:
        return JSONResponse("open")

    @app.get("/people/{local_id}/mixed")
    def mixed(local_id: str) -> JSONResponse:
        return JSONResponse([{"status": "open"}, "closed"])

    @app.get("/people/{local_id}/error")
    def error(local_id: str) -> JSONResponse:
        return JSONResponse({"detail": "boom"}, status_code=500)

    @app.get("/people/{local_id}/big")
    def big(local_id: str) -> JSONResponse:
        return JSONResponse([{"status": "x" * 100}] * 20)

    @app.get("/people/{local_id}/moved")
    def moved(local_id: str) -> RedirectResponse:
        return RedirectResponse(f"/people/{local_id}/ok")

    return app


@pytest.fixture(scope="module")
def odd_source() -> Iterator[str]:
    with SourceServer(odd_source_app()) as server:
        yield server.url


def odd_connector(url: str, endpoint: str, *, read: float = 5.0) -> RestConnector:
    rule = CategoryRule(f"/people/{{local_id}}/{endpoint}", fields=("status",))
    return RestConnector(url, {"social_care": rule}, timeout=Timeout(connect=1.0, read=read))


def test_list_answer_gives_one_record_per_object_without_the_id(odd_source: str) -> None:
    with odd_connector(odd_source, "ok") as connector:
        result = connector.fetch(SourceQuery("CS-1", ("social_care",)))

    assert result.records == (
        Record("social_care", {"status": "open"}),
        Record("social_care", {"status": "closed"}),
    )


def test_slow_source_times_out(odd_source: str) -> None:
    with (
        odd_connector(odd_source, "slow", read=0.1) as connector,
        pytest.raises(ConnectorTimeout, match=r"did not answer in time \(ReadTimeout\)") as caught,
    ):
        connector.fetch(SourceQuery("CS-1", ("social_care",)))
    assert caught.value.code == "timeout"


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [("text", "is not JSON"), ("scalar", "not a JSON object or a list"), ("mixed", "not a JSON")],
)
def test_wrong_shaped_answer_is_a_bad_response(
    odd_source: str, endpoint: str, message: str
) -> None:
    with (
        odd_connector(odd_source, endpoint) as connector,
        pytest.raises(ConnectorError, match=message) as caught,
    ):
        connector.fetch(SourceQuery("CS-1", ("social_care",)))
    assert caught.value.code == "bad_response"


@pytest.mark.parametrize(("endpoint", "status"), [("error", 500), ("moved", 307)])
def test_non_2xx_is_unavailable_and_redirects_are_not_followed(
    odd_source: str, endpoint: str, status: int
) -> None:
    with (
        odd_connector(odd_source, endpoint) as connector,
        pytest.raises(ConnectorUnavailable, match=f"source answered HTTP {status}"),
    ):
        connector.fetch(SourceQuery("CS-1", ("social_care",)))


def test_oversized_answer_is_a_bad_response(
    odd_source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.rest.MAX_RESPONSE_BYTES", 1000)

    with (
        odd_connector(odd_source, "big") as connector,
        pytest.raises(ConnectorError, match="source answer is larger than 1000 bytes") as caught,
    ):
        connector.fetch(SourceQuery("CS-1", ("social_care",)))
    assert caught.value.code == "bad_response"


def test_demo_app_without_token_files_answers_503(tmp_path: Path) -> None:
    with SourceServer(rest_source_app(tmp_path)) as server:
        response = httpx.get(
            f"{server.url}/youth-work/people/BP-017/interventions",
            headers={"Authorization": "Bearer anything"},
        )

    assert response.status_code == 503


def test_injected_transport_sees_escaped_path_and_bearer_token(tmp_path: Path) -> None:
    token = tmp_path / "care.token"
    token.write_text("s3cret\n", encoding="utf-8")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "open"})

    rules = {"social_care": CategoryRule("/people/{local_id}/plans", fields=("status",))}
    connector = RestConnector(
        "https://records.example.org/care",
        rules,
        token_file=token,
        transport=httpx.MockTransport(handler),
    )
    with connector:
        connector.fetch(SourceQuery("CS 88/301?x#y", ("social_care",)))

    assert seen[0].url.raw_path == b"/care/people/CS%2088%2F301%3Fx%23y/plans"
    assert seen[0].headers["authorization"] == "Bearer s3cret"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Test CA", ca_key, None, ca_key, ca=True)
    paths = Pki(
        *(directory / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"))
    )
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, subject, server in (
        (paths.server_cert, paths.server_key, "source", True),
        (paths.client_cert, paths.client_key, "hub", False),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(subject, key, ca_cert.subject, ca_key, server=server)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
    return paths


@pytest.fixture(scope="module")
def mtls_source(pki: Pki) -> Iterator[str]:
    server = SourceServer(
        odd_source_app(),
        ssl_certfile=pki.server_cert,
        ssl_keyfile=pki.server_key,
        ssl_ca_certs=pki.ca,
        require_client_cert=True,
    )
    with server:
        yield server.url


def mtls_connector(url: str, pki: Pki, *, with_client_cert: bool = True) -> RestConnector:
    rules = {"social_care": CategoryRule("/people/{local_id}/ok", fields=("status",))}
    if with_client_cert:
        return RestConnector(
            url, rules, client_cert=pki.client_cert, client_key=pki.client_key, ca_file=pki.ca
        )
    return RestConnector(url, rules, ca_file=pki.ca)


def test_mutual_tls_with_client_certificate(mtls_source: str, pki: Pki) -> None:
    assert mtls_source.startswith("https://127.0.0.1:")
    with mtls_connector(mtls_source, pki) as connector:
        result = connector.fetch(SourceQuery("CS-1", ("social_care",)))

    assert [r.fields for r in result.records] == [{"status": "open"}, {"status": "closed"}]


def test_mutual_tls_without_client_certificate_is_unavailable(mtls_source: str, pki: Pki) -> None:
    with (
        mtls_connector(mtls_source, pki, with_client_cert=False) as connector,
        pytest.raises(ConnectorUnavailable, match="cannot reach source"),
    ):
        connector.fetch(SourceQuery("CS-1", ("social_care",)))


def test_server_certificate_from_unknown_ca_is_unavailable(mtls_source: str, pki: Pki) -> None:
    rules = {"social_care": CategoryRule("/people/{local_id}/ok", fields=("status",))}
    connector = RestConnector(
        mtls_source, rules, client_cert=pki.client_cert, client_key=pki.client_key
    )
    with (
        connector,
        pytest.raises(ConnectorUnavailable, match=r"cannot reach source \(ConnectError\)"),
    ):
        connector.fetch(SourceQuery("CS-1", ("social_care",)))


def test_unloadable_client_certificate_is_a_config_error(pki: Pki, tmp_path: Path) -> None:
    rules = {"social_care": CategoryRule("/people/{local_id}/ok", fields=("status",))}
    connector = RestConnector(
        "https://127.0.0.1:1", rules, client_cert=pki.client_cert, client_key=pki.server_key
    )
    with connector, pytest.raises(ConnectorConfigError, match=r"cannot load source\.ca_file"):
        connector.fetch(SourceQuery("CS-1", ("social_care",)))
