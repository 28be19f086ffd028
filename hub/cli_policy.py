"""`hub policy`: run the Rego tests, build an OPA bundle, verify one.

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
            help="PEM private key (RSA for RS256, EC P-256 for ES256) to sign the bundle with.",
        ),
    ] = None,
    key_id: Annotated[
        str, typer.Option("--key-id", help="Key id written into the signature.")
    ] = "hub-bundle",
    policies: PoliciesOption = None,
) -> None:
    """Write an OPA bundle of the policies (signed if --signing-key is given)."""
    policy_set = _policy_set(policies)
    key = None if signing_key is None else _read(signing_key, "signing key")
    try:
        info = build_bundle(out, signing_key_pem=key, key_id=key_id, policy_set=policy_set)
    except BundleError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror}") from exc
    signed = f"signed with key id {key_id}" if info.signed else "unsigned"
    typer.echo(f"bundle {out}: revision {info.revision}, {len(info.files)} files, {signed}")


@policy_app.command("verify-bundle")
def verify_bundle_command(
    bundle: Annotated[Path, typer.Argument(help="The bundle (.tar.gz) to verify.")],
    public_key: Annotated[
        Path,
        typer.Option("--public-key", dir_okay=False, help="PEM public key of the signer."),
    ],
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="Key id the signature must name, if it names one."),
    ] = None,
) -> None:
    """Verify a signed bundle as OPA does; exits 1 naming the first failed check."""
    key = _read(public_key, "public key")
    try:
        info = verify_bundle(bundle, public_key_pem=key, key_id=key_id)
    except BundleError as exc:
        raise _fail(f"bundle verification failed: {exc}") from exc
    except OSError as exc:
        raise _fail(f"cannot read {bundle}: {exc.strerror}") from exc
    typer.echo(f"OK revision {info.revision}, {len(info.files)} files, signed")


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
    from keys import KeysError

    candidate_set = _policy_set(policies)
    try:
        opened = open_existing(Settings())
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
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "candidate_revision": candidate_set.revision,
                    "decisions": len(results),
                    "counts": counts,
                    "changed": [r.as_json() for r in changed],
                },
                indent=2,
            )
        )
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
