"""`hub keys ...`: list the keyring's keys and rotate them without loss.

A typer sub-app; `hub.cli` mounts it as `hub keys`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from hub.bootstrap import master_key, open_existing
from hub.config import Settings
from hub.services import key_rotation
from keys import KeyRing, KeysError

keys_app = typer.Typer(no_args_is_help=True, help="The keyring: list, rotate.")

# What `hub keys rotate` accepts; "kek" is the data-encryption key in its envelope role.
_KINDS = {
    "data-encryption": "data-encryption",
    "kek": "data-encryption",
    "token-signing": "token-signing",
    "pseudonym-root": "pseudonym-root",
    "checkpoint-signing": "checkpoint-signing",
}


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _opened() -> Iterator[tuple[Settings, KeyRing, Engine]]:
    try:
        settings = Settings()
    except ValueError as exc:
        raise _fail(f"settings: {exc}") from exc
    try:
        opened = open_existing(settings)
    except KeysError as exc:
        raise _fail(f"{exc} (has `hub init` been run for {settings.data_dir}?)") from exc
    try:
        yield settings, opened.keyring, opened.engine
    finally:
        opened.engine.dispose()


@keys_app.command("list")
def keys_list() -> None:
    """List the keyring's keys with versions and states (never key material)."""
    with _opened() as (_, keyring, _engine):
        for key in keyring.key_ids():
            typer.echo(
                f"{key['purpose']:<18} {key['kid']:<24} {key['version']:<4} "
                f"{key['state']:<8} {key['created_at']}"
            )


@keys_app.command("rotate")
def keys_rotate(
    kind: Annotated[
        str,
        typer.Argument(
            help="data-encryption (or kek), token-signing, pseudonym-root, checkpoint-signing."
        ),
    ],
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 200,
) -> None:
    """Add a new key of KIND as the one that writes, keeping every old key for reading.

    For data-encryption, then re-wrap every subject key and re-encrypt every value still
    under an older key, in batches; an interrupted run is resumed by running the command
    again (no second key is added while a run is unfinished).
    """
    purpose = _KINDS.get(kind)
    if purpose is None:
        raise _fail(f"unknown key kind {kind!r}; expected one of {', '.join(sorted(_KINDS))}")
    with _opened() as (settings, keyring, engine):
        unfinished = None
        if purpose == key_rotation.DATA_ENCRYPTION:
            with Session(engine) as session:
                unfinished = key_rotation.running(session=session)
        if unfinished is not None and unfinished.target_kid == keyring.data_key_kid:
            typer.echo(f"resuming the unfinished rotation to {unfinished.target_kid}")
        else:
            try:
                keyring = KeyRing.rotate(
                    settings.keystore_path,
                    master_key=master_key(settings),
                    purpose=purpose,
                    now=_now(),
                )
            except KeysError as exc:
                raise _fail(str(exc)) from exc
            current = next(
                k for k in keyring.key_ids() if k["purpose"] == purpose and k["state"] == "current"
            )
            typer.echo(f"{purpose}: new key {current['kid']} ({current['version']}) now writes")
        if purpose != key_rotation.DATA_ENCRYPTION:
            typer.echo("older keys are kept: what they signed or made still verifies and resolves")
            return
        with Session(engine) as session:
            total = key_rotation.remaining(session=session, keyring=keyring)
        with typer.progressbar(length=total, label="re-wrapping and re-encrypting") as bar:
            result = key_rotation.run_data_key_rotation(
                engine=engine,
                keyring=keyring,
                now=_now,
                batch_size=batch_size,
                progress=bar.update,
            )
        typer.echo(
            f"data-encryption: {result.processed} items now under {result.target_kid} "
            f"in {result.batches} batches"
        )
