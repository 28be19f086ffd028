"""`hub keys ...`: list the keyring's keys, rotate them without loss, retire old versions.

A typer sub-app; `hub.cli` mounts it as `hub keys`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from hub.bootstrap import master_key, open_existing
from hub.config import MAX_ACCESS_TOKEN_TTL_SECONDS, Settings
from hub.errors import Conflict
from hub.services import key_retirement, key_rotation, reindex
from hub.services.key_rotation import RotationResult
from keys import KeyRing, KeysError

keys_app = typer.Typer(
    no_args_is_help=True, help="The keyring: list, rotate, retire; re-index subjects."
)

# What `hub keys rotate` accepts; "kek" is the data-encryption key in its envelope role.
_KINDS = {
    "data-encryption": "data-encryption",
    "kek": "data-encryption",
    "token-signing": "token-signing",
    "pseudonym-root": "pseudonym-root",
    "blind-index": "blind-index",
    "checkpoint-signing": "checkpoint-signing",
    "bundle-signing": "bundle-signing",
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
    """List every key: purpose, key id, version, state, created and retired dates.

    States: current (writes), previous (reads and verifies only), retired (used for nothing).
    Then how many subjects an older blind-index key still indexes, if any. Never prints key
    material.
    """
    with _opened() as (_, keyring, engine):
        typer.echo(f"{'purpose':<18} {'kid':<24} {'ver':<4} {'state':<8} {'created':<20} retired")
        keys = keyring.key_ids()
        for key in keys:
            typer.echo(
                f"{key['purpose']:<18} {key['kid']:<24} {key['version']:<4} "
                f"{key['state']:<8} {key['created_at']:<20} {key['retired_at'] or '-'}"
            )
        with Session(engine) as session:
            for key in keys:
                if key["purpose"] != reindex.BLIND_INDEX_PURPOSE or key["state"] != "previous":
                    continue
                indexed = reindex.still_under(session=session, version=str(key["version"]))
                if indexed:
                    typer.echo(
                        f"blind-index {key['version']} still indexes {indexed} subjects: "
                        "run `hub keys rotate blind-index` to finish re-indexing them"
                    )


@keys_app.command("rotate")
def keys_rotate(
    kind: Annotated[
        str,
        typer.Argument(
            help="data-encryption (or kek), token-signing, pseudonym-root, blind-index, "
            "checkpoint-signing, bundle-signing."
        ),
    ],
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 200,
) -> None:
    """Add a new key of KIND as the one that writes, keeping every old key for reading.

    For data-encryption, then re-wrap every subject key and re-encrypt every value still
    under an older key, in batches; for blind-index, then re-index every subject under the
    new key, in batches. An interrupted run is resumed by running the command again (no
    second key is added while a run is unfinished).
    """
    purpose = _KINDS.get(kind)
    if purpose is None:
        raise _fail(f"unknown key kind {kind!r}; expected one of {', '.join(sorted(_KINDS))}")
    if purpose == reindex.BLIND_INDEX_PURPOSE:
        _rotate_blind_index(batch_size)
        return
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


def _rotate_blind_index(batch_size: int) -> None:
    """Add a blind-index key, unless subjects are still indexed under an older one (an
    interrupted run, or subjects a serving hub indexed before it noticed the rotation): then
    finish re-indexing them first, so at most two keys are ever in use. Then re-index."""
    with _opened() as (settings, keyring, engine):
        with Session(engine) as session:
            left = reindex.under_older_key(session=session, keyring=keyring)
        if left:
            typer.echo(
                f"resuming: {left} subjects are still indexed under an older blind-index key; "
                f"re-indexing them under {keyring.blind_index_kid} before any new key is added"
            )
        else:
            try:
                keyring = KeyRing.rotate(
                    settings.keystore_path,
                    master_key=master_key(settings),
                    purpose=reindex.BLIND_INDEX_PURPOSE,
                    now=_now(),
                )
            except KeysError as exc:
                raise _fail(str(exc)) from exc
            typer.echo(
                f"blind-index: new key {keyring.blind_index_kid} "
                f"({keyring.blind_index_version}) now writes"
            )
            with Session(engine) as session:
                left = reindex.under_older_key(session=session, keyring=keyring)
        result = _reindexing(
            left,
            lambda progress: reindex.run_blind_index_rotation(
                engine=engine,
                keyring=keyring,
                now=_now,
                batch_size=batch_size,
                progress=progress,
            ),
        )
        typer.echo(
            f"blind-index: {result.processed} subjects now indexed under {result.target_kid} "
            f"in {result.batches} batches; none is left under an older key"
        )


@keys_app.command("retire")
def keys_retire(
    kind: Annotated[
        str,
        typer.Argument(
            help="data-encryption (or kek), token-signing, pseudonym-root, blind-index, "
            "bundle-signing."
        ),
    ],
    version: Annotated[str, typer.Argument(help="The version to retire, e.g. v1.")],
) -> None:
    """Retire an old key version: from now on it writes, reads, verifies and resolves nothing.

    Refused for the current key, for a data-encryption key that still wraps or encrypts
    anything, for a blind-index key that still indexes a subject, for a token-signing key
    whose tokens may still be valid, and for checkpoint keys (see docs/keys.md).
    """
    purpose = _KINDS.get(kind)
    if purpose is None:
        raise _fail(f"unknown key kind {kind!r}; expected one of {', '.join(sorted(_KINDS))}")
    with _opened() as (settings, keyring, engine), Session(engine) as session:
        try:
            keyring = key_retirement.retire(
                session=session,
                keyring=keyring,
                path=settings.keystore_path,
                master_key=master_key(settings),
                purpose=purpose,
                version=version,
                token_lifetime=timedelta(seconds=MAX_ACCESS_TOKEN_TTL_SECONDS),
                now=_now(),
            )
        except (Conflict, KeysError) as exc:
            raise _fail(str(exc)) from exc
    (entry,) = [k for k in keyring.key_ids() if k["purpose"] == purpose and k["version"] == version]
    typer.echo(f"{purpose}: key {entry['kid']} ({version}) retired at {entry['retired_at']}")


@keys_app.command("reindex")
def keys_reindex(
    batch_size: Annotated[int, typer.Option(min=1, help="Subjects per transaction.")] = 200,
) -> None:
    """Re-index every subject indexed under an older name normaliser, in batches.

    An interrupted run is resumed by running the command again; the hub keeps serving
    throughout, and finds subjects not yet re-indexed under their older index.
    """
    with _opened() as (_settings, keyring, engine):
        with Session(engine) as session:
            total = reindex.remaining(session=session)
        result = _reindexing(
            total,
            lambda progress: reindex.run_reindex(
                engine=engine,
                keyring=keyring,
                now=_now,
                batch_size=batch_size,
                progress=progress,
            ),
        )
        resumed = " (resumed)" if result.resumed else ""
        typer.echo(
            f"reindex{resumed}: {result.processed} subjects indexed with normaliser "
            f"{result.target_kid} in {result.batches} batches"
        )


def _reindexing(
    total: int, run: Callable[[Callable[[int], None]], RotationResult]
) -> RotationResult:
    """Run a re-indexing pass under a progress bar; a value that does not open stops it."""
    with typer.progressbar(length=total, label="re-indexing subjects") as bar:
        try:
            return run(bar.update)
        except KeysError as exc:
            raise _fail(f"re-indexing stopped: {exc}; run again once repaired") from exc
