"""`hub policy`: run the Rego tests, build an OPA bundle, verify one.

Bundles are signed by default with the keyring's bundle-signing key (ES256, its kid in the
signature) and verified with every bundle-signing key the keyring holds and has not retired,
so bundles signed before a rotation still verify. An external PEM key can be used instead.

Mounted by ``hub/cli.py`` as ``app.add_typer(policy_app, name="policy")``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from hub.policy.bundle import BundleError, build_bundle, verify_bundle
from hub.policy.rego_tests import run_rego_tests
from hub.policy.sources import PolicySet, PolicySourceError
from keys import KeyRing, KeysError

policy_app = typer.Typer(
    no_args_is_help=True, help="The Rego policies: test them, bundle them for OPA, verify bundles."
)

PoliciesOption = Annotated[
    Path | None,
    typer.Option(
        "--policies",
        file_okay=False,
        dir_okay=True,
        help="A folder of .rego and data.json files laid out as OPA loads them "
        "(default: the shipped policies).",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _policy_set(folder: Path | None) -> PolicySet:
    try:
        return PolicySet.shipped() if folder is None else PolicySet.from_directory(folder)
    except PolicySourceError as exc:
        raise _fail(str(exc)) from exc


def _keyring() -> KeyRing:
    from hub.bootstrap import master_key
    from hub.config import Settings

    try:
        settings = Settings()
    except ValueError as exc:
        raise _fail(f"settings: {exc}") from exc
    try:
        return KeyRing.open(settings.keystore_path, master_key=master_key(settings))
    except KeysError as exc:
        raise _fail(f"{exc} (has `hub init` been run for {settings.data_dir}?)") from exc


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read the {what} {path}: {exc.strerror}") from exc


@policy_app.command("test")
def run_tests(policies: PoliciesOption = None) -> None:
    """Run the Rego unit tests (*_test.rego) in the embedded engine.

    Prints PASS or FAIL and the rule of each test, then "N passed, N failed"; exits 1 if any
    test failed, none was found, or the policies do not load.
    """
    policy_set = _policy_set(policies)
    try:
        results = run_rego_tests(
            modules=policy_set.modules, tests=policy_set.tests, data=policy_set.data
        )
    except (ValueError, RuntimeError) as exc:
        # regorus raises RuntimeError for a module that does not parse; keep its first line.
        raise _fail(f"the policies do not load: {str(exc).strip().splitlines()[0]}") from exc
    for result in results:
        typer.echo(f"{'PASS' if result.passed else 'FAIL'} {result.rule}")
        for line in [] if result.passed else result.detail.splitlines():
            typer.echo(f"    {line}")
    failed = sum(not result.passed for result in results)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if not results:
        raise _fail("no Rego tests found")
    if failed:
        raise typer.Exit(code=1)


@policy_app.command("bundle")
def bundle_command(
    out: Annotated[Path, typer.Argument(help="Where to write the bundle, e.g. bundle.tar.gz.")],
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            dir_okay=False,
            help="Sign with this PEM private key (RSA for RS256, EC P-256 for ES256) instead "
            "of the keyring's bundle-signing key.",
        ),
    ] = None,
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="Key id written into the signature of --signing-key."),
    ] = None,
    unsigned: Annotated[
        bool, typer.Option("--unsigned", help="Write an unsigned bundle (OPA must not verify).")
    ] = False,
    public_key_out: Annotated[
        Path | None,
        typer.Option(
            "--public-key-out",
            dir_okay=False,
            help="Also write the keyring signer's PEM public key here, for OPA's configuration.",
        ),
    ] = None,
    policies: PoliciesOption = None,
) -> None:
    """Write an OPA bundle of the policies, signed with the keyring's bundle-signing key
    (or --signing-key, or --unsigned)."""
    if unsigned and signing_key is not None:
        raise _fail("--unsigned and --signing-key exclude each other")
    if public_key_out is not None and (unsigned or signing_key is not None):
        raise _fail("--public-key-out writes the keyring's key; it needs a keyring-signed bundle")
    policy_set = _policy_set(policies)
    key: bytes | None = None
    kid = key_id or "hub-bundle"
    public: bytes | None = None
    if signing_key is not None:
        key = _read(signing_key, "signing key")
    elif not unsigned:
        if key_id is not None:
            raise _fail("--key-id names the key of --signing-key; the keyring names its own")
        keyring = _keyring()
        try:
            key, kid = keyring.bundle_signing_private_pem(), keyring.bundle_signing_kid
        except KeysError as exc:
            raise _fail(str(exc)) from exc
        public = keyring.bundle_verifying_keys()[0][1]
    try:
        info = build_bundle(out, signing_key_pem=key, key_id=kid, policy_set=policy_set)
    except BundleError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror}") from exc
    if public_key_out is not None and public is not None:
        try:
            public_key_out.write_bytes(public)
        except OSError as exc:
            raise _fail(f"cannot write {public_key_out}: {exc.strerror}") from exc
    signed = f"signed with key id {kid}" if info.signed else "unsigned"
    typer.echo(f"bundle {out}: revision {info.revision}, {len(info.files)} files, {signed}")


@policy_app.command("verify-bundle")
def verify_bundle_command(
    bundle: Annotated[Path, typer.Argument(help="The bundle (.tar.gz) to verify.")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            dir_okay=False,
            help="PEM public key of the signer (default: the keyring's bundle-signing keys).",
        ),
    ] = None,
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="Key id the signature must name, if it names one."),
    ] = None,
) -> None:
    """Verify a signed bundle as OPA does; exits 1 naming the first failed check.

    Without --public-key, the bundle must verify with one of the keyring's bundle-signing
    keys, current or previous (a retired key verifies nothing), and name that key's id.
    """
    if public_key is not None:
        candidates = [(key_id, _read(public_key, "public key"))]
    else:
        if key_id is not None:
            raise _fail("--key-id goes with --public-key; the keyring's keys carry their own ids")
        held = _keyring().bundle_verifying_keys()
        if not held:
            raise _fail("the keyring has no bundle-signing key; run `hub init` to add one")
        candidates = [(kid, pem) for kid, pem in held]
    failure: BundleError | None = None
    for kid, pem in candidates:
        try:
            info = verify_bundle(bundle, public_key_pem=pem, key_id=kid)
        except BundleError as exc:
            # The first candidate's reason is the one to report: it is the current key.
            failure = failure or exc
            continue
        except OSError as exc:
            raise _fail(f"cannot read {bundle}: {exc.strerror}") from exc
        by = f" by {kid}" if public_key is None else ""
        typer.echo(f"OK revision {info.revision}, {len(info.files)} files, signed{by}")
        return
    raise _fail(f"bundle verification failed: {failure}")


@policy_app.command("replay")
def replay(
    policies: Annotated[
        Path,
        typer.Option(
            "--policies",
            file_okay=False,
            dir_okay=True,
            help="The candidate policy folder to test against past decisions.",
        ),
    ],
    since: Annotated[
        datetime | None,
        typer.Option(help="Only decisions made at or after this time (UTC if no zone)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for tools.")] = False,
) -> None:
    """Re-decide every stored decision with a candidate policy and list those that would change
    (allow to deny, deny to allow, categories widened or narrowed) before it goes live."""
    from sqlmodel import Session

    from hub.bootstrap import open_existing
    from hub.config import Settings
    from hub.policy import EmbeddedPolicyEngine, PolicyEngineError
    from hub.services.decisions import replay as replay_decisions
    from hub.services.replay_reports import save_latest
    from keys import KeysError

    candidate_set = _policy_set(policies)
    settings = Settings()
    try:
        opened = open_existing(settings)
    except KeysError as exc:
        raise _fail(str(exc)) from exc
    try:
        candidate = EmbeddedPolicyEngine(
            modules=candidate_set.modules, data=candidate_set.data, revision=candidate_set.revision
        )
    except PolicyEngineError as exc:
        raise _fail(f"the candidate policy does not load: {exc}") from exc
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        with Session(opened.engine) as session:
            results = list(replay_decisions(session=session, candidate=candidate, since=since))
    finally:
        candidate.close()
        opened.engine.dispose()
    changed = [r for r in results if r.change != "unchanged"]
    counts = {kind: sum(1 for r in results if r.change == kind) for kind in REPLAY_CHANGES}
    report = {
        "candidate_revision": candidate_set.revision,
        "decisions": len(results),
        "counts": counts,
        "changed": [r.as_json() for r in changed],
    }
    # Kept for the DPO's policy page (hub.services.replay_reports); the report is still
    # printed if the data directory cannot be written.
    try:
        save_latest(settings=settings, report=report, made_at=datetime.now(UTC))
    except OSError as exc:
        typer.echo(f"warning: the report was not kept for the web UI: {exc.strerror}", err=True)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"candidate revision {candidate_set.revision}: {len(results)} decisions replayed")
    if changed:
        typer.echo(f"{'when':<20} {'decision':<36} {'agency':<30} {'purpose':<22} change")
        for r in changed:
            detail: str = r.change
            if r.change in ("widened", "narrowed"):
                detail += f" {sorted(r.before_categories)} -> {sorted(r.after_categories)}"
            elif r.change == "allow_to_deny":
                detail += f" ({', '.join(r.after_reasons)})"
            typer.echo(
                f"{r.at:%Y-%m-%d %H:%M:%S} {r.decision_id:<36} {r.agency_id:<30} "
                f"{r.purpose:<22} {detail}"
            )
    typer.echo(", ".join(f"{counts[k]} {k}" for k in REPLAY_CHANGES))


REPLAY_CHANGES = ("allow_to_deny", "deny_to_allow", "widened", "narrowed", "unchanged", "error")
