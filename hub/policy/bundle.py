"""OPA bundles of the hub's policies: build one, sign it, verify one.

A bundle is the gzipped tarball OPA loads with ``opa run --bundle`` or from a bundle server::

    /.manifest                {"revision": "<policy revision>", "roots": ["hub"]}
    /hub/config/data.json     each data.json at its folder, so OPA builds the same data tree
    /hub/decision.rego        every policy module; the *_test.rego files stay out
    /.signatures.json         only when signed

Signing follows OPA's bundle signature format, "Signing" in
https://www.openpolicyagent.org/docs/latest/management-bundles/#signing (OPA v1.x). The file
``.signatures.json`` is ``{"signatures": ["<compact JWS>"]}`` with exactly one JWS, whose
protected header is ``{"alg", "kid", "typ": "JWT"}`` and whose payload is
``{"files": [{"name", "hash", "algorithm": "SHA-256"}, ...], "keyid": "<kid>"}`` (``keyid`` is
the deprecated claim ``opa sign`` still writes). ``files`` names every other file of the bundle,
without the leading ``/``. The hash is hex SHA-256 of the file's bytes, except for the
structured files (``data.json`` and ``.manifest``): OPA parses those as JSON and hashes a
normal form, see :func:`file_digest`.

Keys are PEM: RSA (RS256, at least 2048 bits) or EC P-256 (ES256). Every key handed to
python-jose is built on its ``cryptography`` backend; its pure-Python ``ecdsa`` backend is never
used.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jws
from jose.backends.cryptography_backend import CryptographyECKey, CryptographyRSAKey
from jose.exceptions import JOSEError

from hub.policy.sources import PolicySet

MANIFEST = ".manifest"
SIGNATURES = ".signatures.json"
ROOT = "hub"
"""The one root the bundle owns: OPA replaces only ``data.hub`` when it activates it."""

_DATA_FILE = "data.json"
_STRUCTURED = frozenset({_DATA_FILE, MANIFEST})
_HASH_ALGORITHM = "SHA-256"
_MAX_FILE_BYTES = 8 << 20
_MAX_TOTAL_BYTES = 32 << 20
_MAX_ENTRIES = 1000
_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)\s*$", re.MULTILINE)


class BundleError(Exception):
    """A bundle cannot be built, or fails verification; the message names the failed check."""


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle holds: its revision, roots, file names (without ``/``) and signed or not."""

    revision: str
    roots: tuple[str, ...]
    files: tuple[str, ...]
    """Every file but ``.signatures.json``, sorted."""
    signed: bool


def build_bundle(
    out: Path,
    *,
    signing_key_pem: bytes | None = None,
    key_id: str = "hub-bundle",
    revision: str | None = None,
    policy_set: PolicySet | None = None,
) -> BundleInfo:
    """Write an OPA bundle of ``policy_set`` (default: the shipped policies) to ``out``.

    The revision defaults to the policy set's revision. The tarball is reproducible: the same
    files give the same bytes (and, with an RSA key, the same signature). ``out`` is replaced
    atomically.

    Raises:
        BundleError: the policies cannot be read, lie outside the root ``hub``, or the key is
            not a usable unencrypted PEM private key (RSA of 2048 bits or more, or EC P-256).
        OSError: ``out`` cannot be written.
    """
    if policy_set is None:
        try:
            policy_set = PolicySet.shipped()
        except ValueError as exc:
            raise BundleError(f"the shipped policies cannot be read: {exc}") from exc
    _check_roots(policy_set)
    manifest = {"revision": policy_set.revision if revision is None else revision, "roots": [ROOT]}
    files = {MANIFEST: json.dumps(manifest, sort_keys=True).encode("utf-8")}
    files.update(policy_set.data_files)
    files.update(policy_set.module_files)
    info = _info(files, signed=signing_key_pem is not None)
    if signing_key_pem is not None:
        if not key_id:
            raise BundleError("a signed bundle needs a key id")
        files[SIGNATURES] = _signatures(files, signing_key_pem, key_id)
    _write_tarball(out, files)
    return info


def verify_bundle(
    path: Path, *, public_key_pem: bytes | None, key_id: str | None = None
) -> BundleInfo:
    """Check a bundle as OPA does before activating it, and describe it.

    With a public key the bundle must be signed: the JWS must verify with that key and the
    algorithm that fits it, name ``key_id`` if one is given (as ``kid`` or ``keyid``), have no
    ``scope``, list exactly the bundle's files, and every file must match its hash. With
    ``public_key_pem=None`` the bundle must not be signed (as in OPA, a signature nobody checks
    is refused). Either way every file must be a policy, data or manifest file, and the manifest
    must give a revision and its roots.

    Raises:
        BundleError: naming the first check that failed.
        OSError: ``path`` cannot be read.
    """
    files = _read_tarball(path)
    signatures = files.pop(SIGNATURES, None)
    _check_kinds(files)
    if public_key_pem is None:
        if signatures is not None:
            raise BundleError("the bundle is signed, but no public key was given to verify it")
    else:
        if signatures is None:
            raise BundleError(f"the bundle has no {SIGNATURES}")
        _check_files(files, _signed_files(signatures, public_key_pem, key_id))
    return _info(files, signed=signatures is not None)


def file_digest(name: str, content: bytes) -> str:
    """The hex SHA-256 OPA records for one bundle file.

    A ``.rego`` file is hashed over its bytes. A structured file (``data.json``,
    ``.manifest``) is parsed and hashed over the form OPA's hasher writes (``walk`` in OPA's
    v1/bundle/hash.go): objects with their keys sorted, ``{"k":v,...}`` and ``[v,...]`` with no
    whitespace, numbers exactly as written in the file (OPA reads them as ``json.Number``), and
    strings as Go's JSON encoder writes them with HTML escaping off (``\\u2028`` and
    ``\\u2029`` escaped, everything else non-ASCII as UTF-8).

    Raises:
        BundleError: a structured file is not valid UTF-8 JSON.
    """
    if Path(name).name not in _STRUCTURED:
        return hashlib.sha256(content).hexdigest()
    try:
        value = json.loads(
            content.decode("utf-8"),
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_refuse_constant,
        )
        normal = _normal_form(value).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        raise BundleError(f"file {name!r} is not valid JSON") from None
    return hashlib.sha256(normal).hexdigest()


class _Number(str):
    """A JSON number kept as written."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _normal_form(value: Any) -> str:
    if isinstance(value, dict):
        members = (f"{_go_string(key)}:{_normal_form(value[key])}" for key in sorted(value))
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_normal_form(item) for item in value) + "]"
    if isinstance(value, _Number):
        return str.__str__(value)
    if isinstance(value, str):
        return _go_string(value)
    return json.dumps(value)  # true, false, null


def _go_string(text: str) -> str:
    # Python and Go escape the same characters below U+0020, '"' and '\' alike (short forms for
    # \b \f \n \r \t, else \u00xx in lower case); Go also escapes U+2028 and U+2029.
    encoded = json.dumps(text, ensure_ascii=False)
    return encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _check_roots(policy_set: PolicySet) -> None:
    # OPA refuses a bundle whose data or packages lie outside its roots.
    for path, _raw in policy_set.data_files:
        if Path(path).parts[0] != ROOT or len(Path(path).parts) < 2:
            raise BundleError(f"data file {path} lies outside the bundle root {ROOT}")
    for path, text in policy_set.modules:
        package = _PACKAGE.search(text)
        name = package.group(1) if package else ""
        if name != ROOT and not name.startswith(f"{ROOT}."):
            raise BundleError(f"module {path} declares a package outside the bundle root {ROOT}")


def _signing_key(pem: bytes) -> tuple[Any, str]:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BundleError("the signing key is not an unencrypted PEM private key") from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return CryptographyRSAKey(key, "RS256"), "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return CryptographyECKey(key, "ES256"), "ES256"
    raise BundleError("the signing key must be RSA of 2048 bits or more, or EC P-256")


def _verification_key(pem: bytes) -> tuple[Any, str]:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BundleError("the public key is not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return CryptographyRSAKey(key, "RS256"), "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return CryptographyECKey(key, "ES256"), "ES256"
    raise BundleError("the public key must be RSA of 2048 bits or more, or EC P-256")


def _signatures(files: Mapping[str, bytes], pem: bytes, key_id: str) -> bytes:
    key, algorithm = _signing_key(pem)
    listed = [
        {"name": name, "hash": file_digest(name, content), "algorithm": _HASH_ALGORITHM}
        for name, content in sorted(files.items())
    ]
    payload = json.dumps({"files": listed, "keyid": key_id}, sort_keys=True).encode("utf-8")
    try:
        token = jws.sign(payload, key, headers={"kid": key_id}, algorithm=algorithm)
    except JOSEError as exc:
        raise BundleError(f"signing the bundle failed ({type(exc).__name__})") from None
    return json.dumps({"signatures": [token]}, indent=1).encode("utf-8")


def _signed_files(signatures: bytes, pem: bytes, key_id: str | None) -> dict[str, tuple[str, str]]:
    token = _one_token(signatures)
    key, algorithm = _verification_key(pem)
    try:
        header = jws.get_unverified_header(token)
    except JOSEError:
        raise BundleError("the bundle signature is not a compact JWS") from None
    if header.get("alg") != algorithm:
        raise BundleError(f"the bundle signature does not use {algorithm}, the public key's")
    try:
        payload = json.loads(jws.verify(token, key, algorithms=[algorithm]))
    except JOSEError:
        raise BundleError("the bundle signature does not verify with the public key") from None
    except ValueError:
        raise BundleError("the bundle signature's payload is not JSON") from None
    if not isinstance(payload, dict):
        raise BundleError("the bundle signature's payload is not an object")
    named = header.get("kid") or payload.get("keyid")
    if key_id is not None and named not in (None, "", key_id):
        raise BundleError("the bundle signature names another key id")
    if payload.get("scope") not in (None, ""):
        raise BundleError("the bundle signature has a scope, and none is configured")
    return _listed_files(payload.get("files"))


def _one_token(signatures: bytes) -> str:
    try:
        document = json.loads(signatures)
    except ValueError:
        raise BundleError(f"{SIGNATURES} is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("signatures"), list):
        raise BundleError(f"{SIGNATURES} has no list of signatures")
    if document.get("plugin") not in (None, ""):
        raise BundleError(f"{SIGNATURES} names a signing plugin, which is not supported")
    tokens = document["signatures"]
    if len(tokens) != 1 or not isinstance(tokens[0], str):
        raise BundleError(f"{SIGNATURES} must hold exactly one JWS")
    return tokens[0]


def _listed_files(entries: Any) -> dict[str, tuple[str, str]]:
    if not isinstance(entries, list):
        raise BundleError("the bundle signature lists no files")
    listed: dict[str, tuple[str, str]] = {}
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and all(isinstance(entry.get(field), str) for field in ("name", "hash", "algorithm"))
        ):
            raise BundleError(
                "the bundle signature has a file entry without name, hash or algorithm"
            )
        if entry["name"] in listed:
            raise BundleError(f"the bundle signature lists {entry['name']!r} twice")
        listed[entry["name"]] = (entry["algorithm"], entry["hash"])
    return listed


def _check_files(files: Mapping[str, bytes], listed: Mapping[str, tuple[str, str]]) -> None:
    for name in sorted(files):
        if name not in listed:
            raise BundleError(f"file {name!r} is not included in the bundle signature")
    for name in sorted(listed):
        if name not in files:
            raise BundleError(f"file {name!r} is in the bundle signature but not in the bundle")
    for name in sorted(files):
        algorithm, expected = listed[name]
        if algorithm != _HASH_ALGORITHM:
            raise BundleError(f"file {name!r} is hashed with {algorithm!r}, not {_HASH_ALGORITHM}")
        if not hmac.compare_digest(file_digest(name, files[name]), expected.lower()):
            raise BundleError(f"file {name!r} does not match its hash in the bundle signature")


def _check_kinds(files: Mapping[str, bytes]) -> None:
    for name in sorted(files):
        if name != MANIFEST and not name.endswith(".rego") and Path(name).name != _DATA_FILE:
            raise BundleError(f"file {name!r} is not a policy, data or manifest file")


def _info(files: Mapping[str, bytes], *, signed: bool) -> BundleInfo:
    if MANIFEST not in files:
        raise BundleError(f"the bundle has no {MANIFEST}")
    try:
        manifest = json.loads(files[MANIFEST])
    except ValueError:
        raise BundleError(f"{MANIFEST} is not JSON") from None
    revision = manifest.get("revision") if isinstance(manifest, dict) else None
    roots = manifest.get("roots") if isinstance(manifest, dict) else None
    if not isinstance(revision, str):
        raise BundleError(f"{MANIFEST} has no revision")
    if not (isinstance(roots, list) and all(isinstance(root, str) for root in roots)):
        raise BundleError(f"{MANIFEST} has no list of roots")
    for name in sorted(files):
        if Path(name).name == _DATA_FILE:
            file_digest(name, files[name])  # raises BundleError unless it is JSON
    return BundleInfo(revision, tuple(roots), tuple(sorted(files)), signed)


def _write_tarball(out: Path, files: Mapping[str, bytes]) -> None:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, content in sorted(files.items()):
            member = tarfile.TarInfo(f"/{name}")
            member.size = len(content)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(content))
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_tarball(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for entries, member in enumerate(tar, start=1):
                if entries > _MAX_ENTRIES:
                    raise BundleError("the bundle has more entries than a policy bundle may have")
                if member.isdir():
                    continue
                name = _member_name(member.name)
                if not member.isfile():
                    raise BundleError(f"bundle entry {name!r} is not a regular file")
                if name in files:
                    raise BundleError(f"the bundle holds {name!r} twice")
                total += member.size
                if member.size > _MAX_FILE_BYTES or total > _MAX_TOTAL_BYTES:
                    raise BundleError("the bundle is larger than a policy bundle may be")
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise BundleError(f"bundle entry {name!r} cannot be read")
                files[name] = extracted.read()
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error):
        raise BundleError("the bundle is not a readable gzipped tarball") from None
    return files


def _member_name(raw: str) -> str:
    name = raw.removeprefix("/")
    if not name or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
        raise BundleError("a bundle entry has an unsafe path")
    return name
