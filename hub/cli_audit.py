"""`hub audit ...`: verify the log, sign a checkpoint, prove inclusion or consistency, check a
receipt offline, export, and print the log's public key.

A typer sub-app; `hub.cli` mounts it as `hub audit`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from hub.audit.verifier import VerificationFailed, VerifierKey, verify_receipt
from hub.bootstrap import open_existing
from hub.config import Settings
from hub.errors import HubError, VerificationError
from hub.services import audit, audit_checkpoints, audit_export, audit_proofs, audit_tree
from keys import KeyRing, KeysError

audit_app = typer.Typer(
    no_args_is_help=True,
    help="The audit log: verify, checkpoint, prove, verify-receipt, export, key.",
)

# Below this many entries a progress bar is more noise than help.
_PROGRESS_FROM = 50_000


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise _fail(f"settings: {exc}") from exc


@contextmanager
def _opened() -> Iterator[tuple[Settings, KeyRing, Engine]]:
    settings = _settings()
    try:
        opened = open_existing(settings)
    except KeysError as exc:
        raise _fail(f"{exc} (has `hub init` been run for {settings.data_dir}?)") from exc
    try:
        yield settings, opened.keyring, opened.engine
    finally:
        opened.engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


def _echo_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=True))


@audit_app.command("verify")
def verify(
    against: Annotated[
        list[Path] | None,
        typer.Option(
            "--against",
            help="A checkpoint someone kept (e.g. from a receipt); the log must still extend it. "
            "Repeatable.",
        ),
    ] = None,
) -> None:
    """Recompute the chain, the tree and every checkpoint's signature; exit 1 naming the first
    bad entry."""
    held = [path.read_text(encoding="utf-8") for path in against or []]
    with _opened() as (settings, keyring, engine), Session(engine) as session:
        try:
            keys, origin = audit_checkpoints.verifier_keys(keyring=keyring, settings=settings)
            total = audit.count(session=session)
            if total >= _PROGRESS_FROM and sys.stderr.isatty():
                with typer.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
                    report = audit.verify(
                        session=session, keys=keys, origin=origin, held=held, progress=bar.update
                    )
            else:
                report = audit.verify(session=session, keys=keys, origin=origin, held=held)
        except VerificationError as exc:
            raise _fail(f"audit log does not verify: {exc.message}") from exc
        except HubError as exc:
            raise _fail(exc.message) from exc
    typer.echo(f"audit log verifies: {report.entries} entries, head {report.head_hash}")
    signatures = "verified" if report.signatures_checked else "NOT checked (no checkpoint key)"
    typer.echo(
        f"tree root {report.root_hash}; {report.checkpoints} checkpoints, signatures {signatures}"
    )


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the log as it stands (and any periodic one not yet made); print it."""
    with _opened() as (settings, keyring, engine), Session(engine) as session:
        try:
            signer = audit_checkpoints.signer_for(keyring=keyring, settings=settings)
            made = audit_checkpoints.checkpoint_now(
                session=session,
                signer=signer,
                now=_now(),
                checkpoint_every=settings.audit_checkpoint_every,
            )
        except HubError as exc:
            raise _fail(exc.message) from exc
        typer.echo(made.note, nl=False)


@audit_app.command("prove")
def prove(
    index: Annotated[
        int | None, typer.Option(help="0-based leaf index (entry seq - 1) to prove included.")
    ] = None,
    tree_size: Annotated[
        int | None, typer.Option(help="Tree size to prove against (default: latest checkpoint).")
    ] = None,
    first: Annotated[
        int | None, typer.Option(help="Older tree size, for a consistency proof.")
    ] = None,
    second: Annotated[
        int | None, typer.Option(help="Newer tree size (default: latest checkpoint).")
    ] = None,
) -> None:
    """Print an inclusion proof (--index) or a consistency proof (--first) as JSON."""
    if (index is None) == (first is None):
        raise _fail("give either --index (inclusion) or --first (consistency)")
    with _opened() as (_unused_settings, _keyring, engine), Session(engine) as session:
        try:
            latest = audit_checkpoints.latest(session=session)
            default = latest.tree_size if latest is not None else audit_tree.size(session)
            if index is not None:
                proof: Any = audit_proofs.inclusion(
                    session=session, index=index, tree_size=tree_size or default
                )
            else:
                assert first is not None
                proof = audit_proofs.consistency(
                    session=session, first=first, second=second or default
                )
        except HubError as exc:
            raise _fail(exc.message) from exc
    _echo_json(proof.model_dump())


@audit_app.command("verify-receipt")
def verify_receipt_file(
    file: Annotated[Path, typer.Argument(help="A receipt, or a saved disclosure answer.")],
    key: Annotated[
        str | None,
        typer.Option(help="Verifier key (`hub audit key`); default: this hub's own key."),
    ] = None,
) -> None:
    """Check a receipt offline: the signed statement, the checkpoint and the inclusion proof."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read {file} as JSON") from exc
    if isinstance(document, dict) and isinstance(document.get("receipt"), dict):
        document = document["receipt"]
    if not isinstance(document, dict):
        raise _fail("the receipt is not a JSON object")
    if key is not None:
        try:
            keys = [VerifierKey.from_text(key)]
        except VerificationFailed as exc:
            raise _fail(f"--key: {exc}") from exc
    else:
        with _opened() as (settings, keyring, _engine):
            try:
                keys, _origin = audit_checkpoints.verifier_keys(keyring=keyring, settings=settings)
            except HubError as exc:
                raise _fail(exc.message) from exc
    problems = []
    for candidate in keys:
        try:
            receipt = verify_receipt(document, key=candidate)
        except VerificationFailed as exc:
            problems.append(str(exc))
            continue
        typer.echo(
            f"receipt verifies: decision {receipt.decision_id} is entry {receipt.index + 1} "
            f"(leaf {receipt.index}) of the checkpoint of tree size "
            f"{receipt.checkpoint.tree_size}"
        )
        return
    raise _fail(f"receipt does not verify: {'; '.join(problems) or 'no key to check it'}")


@audit_app.command("export")
def export(
    since: Annotated[int, typer.Option(help="First entry (sequence number) to export.")] = 1,
    output: Annotated[
        Path | None, typer.Option(help="File to write (default: standard output).")
    ] = None,
) -> None:
    """Write entries from --since on, with the checkpoints covering them, as JSON Lines.

    A checkpoint of the log as it stands is signed first, so every exported entry is covered.
    """
    with _opened() as (settings, keyring, engine), Session(engine) as session:
        try:
            signer = audit_checkpoints.signer_for(keyring=keyring, settings=settings)
            made = audit_checkpoints.checkpoint_now(
                session=session,
                signer=signer,
                now=_now(),
                checkpoint_every=settings.audit_checkpoint_every,
            )
            lines = audit_export.export_lines(
                session=session, origin=signer.origin, since=since, until=made.tree_size
            )
            if output is None:
                for line in lines:
                    sys.stdout.write(line)
            else:
                with output.open("w", encoding="utf-8") as handle:
                    handle.writelines(lines)
        except HubError as exc:
            raise _fail(exc.message) from exc


@audit_app.command("key")
def key() -> None:
    """Print the log's verifier key: give it to agencies and DPOs to check checkpoints."""
    with _opened() as (settings, keyring, _engine):
        try:
            signer = audit_checkpoints.signer_for(keyring=keyring, settings=settings)
        except HubError as exc:
            raise _fail(exc.message) from exc
    typer.echo(signer.verifier_key.to_text())
