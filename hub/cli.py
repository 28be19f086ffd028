"""The `hub` command: set up, serve and check a hub."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from hub.bootstrap import initialise, open_existing
from hub.cli_audit import audit_app
from hub.cli_keys import keys_app
from hub.cli_policy import policy_app
from hub.config import Settings
from hub.errors import HubError
from hub.services import admin, audit
from keys import KeysError

app = typer.Typer(no_args_is_help=True, help="The inter-agency information-sharing hub.")
panel_app = typer.Typer(no_args_is_help=True, help="Panels (referral mechanisms).")
agency_app = typer.Typer(no_args_is_help=True, help="Member agencies and their connectors.")
client_app = typer.Typer(no_args_is_help=True, help="Agency systems' API clients.")
user_app = typer.Typer(no_args_is_help=True, help="Coordinators, DPOs and admins.")
retention_app = typer.Typer(no_args_is_help=True, help="Time-based rules: expiry and purging.")
for sub, name in (
    (panel_app, "panel"),
    (agency_app, "agency"),
    (client_app, "client"),
    (user_app, "user"),
    (keys_app, "keys"),
    (retention_app, "retention"),
):
    app.add_typer(sub, name=name)
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")


def _now() -> datetime:
    return datetime.now(UTC)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise _fail(f"settings: {exc}") from exc


def _open() -> tuple[Settings, Any, Any]:
    settings = _settings()
    try:
        opened = open_existing(settings)
    except KeysError as exc:
        raise _fail(f"{exc} (has `hub init` been run for {settings.data_dir}?)") from exc
    return settings, opened.keyring, opened.engine


@app.command()
def init() -> None:
    """Create the data directory, master key, keyring and database; safe to run twice."""
    settings = _settings()
    try:
        opened = initialise(settings)
    except KeysError as exc:
        raise _fail(str(exc)) from exc
    opened.engine.dispose()
    typer.echo(f"hub initialised in {settings.data_dir} ({opened.engine.url.get_backend_name()})")


@app.command()
def demo() -> None:
    """`init` plus the Northtown demo panel, agencies, users and synthetic source systems."""
    from hub.demo.builder import build_demo

    settings = _settings()
    try:
        opened = initialise(settings)
    except KeysError as exc:
        raise _fail(str(exc)) from exc
    with Session(opened.engine, expire_on_commit=False) as session:
        files = build_demo(settings=settings, session=session, keyring=opened.keyring, now=_now())
    opened.engine.dispose()
    typer.echo(f"demo panel ready; agency clients in {files.clients}, people in {files.users}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    demo_sources: Annotated[
        bool, typer.Option(help="Also serve the demo's synthetic REST source systems.")
    ] = False,
) -> None:
    """Serve the API and its documentation at /docs."""
    from hub.api import serving
    from hub.services.notifications import DeliveryDeps, start_delivery_worker

    settings = _settings()
    # Opening first fails now, with a clear message, if the keyring does not open.
    _, keyring, engine = _open()
    if demo_sources:
        from hub.demo.sources import SourceServer, rest_source_app

        sources = SourceServer(
            rest_source_app(settings.demo_dir / "sources"),
            host="127.0.0.1",
            port=settings.demo_sources_port,
        )
        sources.start()
        typer.echo(f"demo source systems at {sources.url}")
    typer.echo(f"hub at http://{host}:{port} (API docs at /docs)")
    # One webhook sender for the whole server, however many workers serve the API.
    worker = start_delivery_worker(DeliveryDeps(engine=engine, keyring=keyring))
    try:
        serving.serve("hub.api.app:app_from_env", host=host, port=port, workers=workers)
    finally:
        worker.stop()
        engine.dispose()


@app.command("client-assertion")
def client_assertion(
    agency: Annotated[str, typer.Option(help="Demo agency id, e.g. northtown-academy.")],
    clients_file: Annotated[
        Path | None, typer.Option(help="Defaults to clients.json in the demo directory.")
    ] = None,
) -> None:
    """Print a fresh signed client assertion for a demo agency (what its own system would make)."""
    from hub.demo.assertion import make_client_assertion

    settings = _settings()
    path = clients_file or settings.demo_dir / "clients.json"
    try:
        clients = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read {path}; run `hub demo` first") from exc
    match = [c for c in clients if c.get("agency") == agency]
    if not match:
        raise _fail(f"no demo client for agency {agency}")
    client = match[0]
    typer.echo(
        make_client_assertion(
            client_id=client["client_id"],
            kid=client["kid"],
            private_key_pem=client["private_key_pem"],
            alg=client["alg"],
            audience=settings.token_endpoint,
        )
    )


def _admin(action: Any) -> None:
    """Run one set-up action in a transaction, with a clear message on refusal."""
    _, _, engine = _open()
    try:
        with Session(engine, expire_on_commit=False) as session:
            action(session)
            audit.commit(session=session)
    except HubError as exc:
        raise _fail(exc.message) from exc
    finally:
        engine.dispose()


@panel_app.command("add")
def panel_add(
    panel_id: Annotated[str, typer.Option("--id", help="Short id, e.g. northtown.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    profile: Annotated[
        str, typer.Option(help="situation_table, channel_panel or safety_house.")
    ] = "situation_table",
) -> None:
    """Add a panel (or change its name or profile)."""
    _admin(
        lambda s: admin.ensure_panel(
            session=s, panel_id=panel_id, name=name, profile=profile, now=_now()
        )
    )
    typer.echo(f"panel {panel_id} ready")


@agency_app.command("add")
def agency_add(
    agency_id: Annotated[str, typer.Option("--id", help="Short id, e.g. northtown-police.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    kind: Annotated[str, typer.Option(help="police, social_services, school, health, cso, ...")],
    panel: Annotated[str, typer.Option(help="The panel it is a member of.")],
    connector: Annotated[
        Path | None, typer.Option(help="TOML file describing its record system (see docs).")
    ] = None,
) -> None:
    """Add an agency to a panel, with the connector to its own records."""
    from connectors import ConnectorError, load_connector_config

    config = None
    if connector is not None:
        try:
            config = load_connector_config(connector).to_mapping()
        except ConnectorError as exc:
            raise _fail(f"connector: {exc}") from exc
    _admin(
        lambda s: admin.ensure_agency(
            session=s,
            agency_id=agency_id,
            name=name,
            kind=kind,
            panel_id=panel,
            connector_config=config,
            now=_now(),
        )
    )
    typer.echo(f"agency {agency_id} ready in panel {panel}")


@agency_app.command("webhook")
def agency_webhook(
    agency_id: Annotated[str, typer.Option("--id", help="The agency, e.g. northtown-police.")],
    url: Annotated[str, typer.Option(help="Its endpoint for consent notifications (https).")],
    generate: Annotated[
        bool, typer.Option(help="Make a new secret and print it once, instead of reading one.")
    ] = False,
) -> None:
    """Set where an agency is told that a consent was withdrawn or expired.

    The signing secret (Standard Webhooks form, `whsec_` + base64) is read from standard input,
    never from the command line; with --generate the hub makes one and prints it once.
    """
    from hub.services.webhooks import generate_secret

    if generate:
        secret = generate_secret()
    elif sys.stdin.isatty():
        secret = typer.prompt("webhook secret", hide_input=True)
    else:
        secret = sys.stdin.readline().strip()
    _, keyring, engine = _open()
    try:
        with Session(engine, expire_on_commit=False) as session:
            admin.set_agency_webhook(
                session=session,
                keyring=keyring,
                agency_id=agency_id,
                url=url,
                secret=secret,
                now=_now(),
            )
            audit.commit(session=session)
    except HubError as exc:
        raise _fail(exc.message) from exc
    finally:
        engine.dispose()
    if generate:
        typer.echo(secret)
        typer.echo("give this secret to the agency over a secure channel", err=True)
    typer.echo(f"webhook set for {agency_id}", err=generate)


@client_app.command("add")
def client_add(
    client_id: Annotated[str, typer.Option("--id", help="The client id (iss/sub of assertions).")],
    agency: Annotated[str, typer.Option(help="The agency it acts for.")],
    jwks: Annotated[Path, typer.Option(help="JSON file with the client's public JWKS.")],
) -> None:
    """Register an agency system by its public keys."""
    try:
        document = json.loads(jwks.read_text())
    except (OSError, ValueError) as exc:
        raise _fail("cannot read the JWKS file") from exc
    _admin(
        lambda s: admin.ensure_client(
            session=s, client_id=client_id, agency_id=agency, jwks=document, now=_now()
        )
    )
    typer.echo(f"client {client_id} registered for {agency}")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Option(help="Login name.")],
    role: Annotated[str, typer.Option(help="coordinator, dpo or admin.")],
    panel: Annotated[str | None, typer.Option(help="The panel the role applies to.")] = None,
) -> None:
    """Add a person; the password is read from standard input, never from the command line."""
    password = (
        sys.stdin.readline().rstrip("\n")
        if not sys.stdin.isatty()
        else typer.prompt("password", hide_input=True, confirmation_prompt=True)
    )
    _admin(
        lambda s: admin.ensure_user(
            session=s, username=username, password=password, role=role, panel_id=panel, now=_now()
        )
    )
    typer.echo(f"user {username} ready as {role}")


@retention_app.command("run")
def retention_run() -> None:
    """Apply time-based rules now: consents past their validity are marked expired, and cases
    past their retention date are purged (case data removed, the person's key destroyed,
    audit entries kept and logged). Safe to re-run; run it from a daily timer."""
    from hub.services import retention
    from hub.services.consents import expire_due

    _, keyring, engine = _open()

    def report(number: int, total: int, purged: retention.Purged) -> None:
        identity = "key shredded" if purged.shredded else "identity rows deleted"
        if not purged.subject_removed:
            identity = "person kept (another case remains)"
        typer.echo(
            f"retention: purged case {number}/{total} {purged.case_id}"
            f" ({purged.rows} rows, {identity})"
        )

    try:
        with Session(engine, expire_on_commit=False) as session:
            expired = expire_due(session=session, keyring=keyring, now=_now())
            audit.commit(session=session)
            due = retention.due(session=session, now=_now())
            typer.echo(f"retention: {len(due)} cases past their retention date")
            purged = retention.purge_due(
                session=session, keyring=keyring, now=_now(), progress=report
            )
    finally:
        engine.dispose()
    typer.echo(f"retention: {len(expired)} consents expired")
    typer.echo(f"retention: {len(purged)} cases purged")
