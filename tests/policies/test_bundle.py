"""OPA bundles: built from the policy folder, signed as OPA signs them, verified as OPA does.

Real OPA (the `opa_bindings` evaluator) checks what it can: the bundle's files load and decide
like the embedded engine, the JWS verifies with OPA's own `io.jwt.verify_*`, and OPA's
`json.marshal` agrees with the normal form our hash of a data file is taken over.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jws
from opa_bindings import OpaEngine

import policies
from hub.policy import (
    BundleError,
    EmbeddedPolicyEngine,
    PolicySet,
    PolicySourceError,
    build_bundle,
    verify_bundle,
)
from hub.policy.bundle import file_digest
from tests.policies.inputs import base_document

KeyPair = tuple[bytes, bytes]


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> KeyPair:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(scope="module")
def rsa_keys() -> KeyPair:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ec_keys() -> KeyPair:
    return _pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def keys(rsa_keys: KeyPair, ec_keys: KeyPair) -> dict[str, KeyPair]:
    return {"RS256": rsa_keys, "ES256": ec_keys}


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedPolicyEngine]:
    with EmbeddedPolicyEngine.from_policies() as engine:
        yield engine


@pytest.fixture
def signed(tmp_path: Path, rsa_keys: KeyPair) -> Path:
    out = tmp_path / "signed.tar.gz"
    build_bundle(out, signing_key_pem=rsa_keys[0])
    return out


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, mode="r:gz") as tar:
        return {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar
            if member.isfile()
        }


def _rewrite(path: Path, members: dict[str, bytes] | list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, mode="w:gz") as tar:
        for name, content in members.items() if isinstance(members, dict) else members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def _token(path: Path) -> str:
    token = json.loads(_members(path)["/.signatures.json"])["signatures"][0]
    assert isinstance(token, str)
    return token


def _shipped_files() -> set[str]:
    shipped = PolicySet.shipped()
    return {".manifest"} | {p for p, _ in shipped.module_files} | {p for p, _ in shipped.data_files}


# --- The policy folder ----------------------------------------------------------------------


def test_policy_set_reads_the_shipped_folder_as_policies_does() -> None:
    shipped = PolicySet.shipped()
    assert list(shipped.modules) == policies.policy_modules()
    assert list(shipped.tests) == policies.test_modules()
    assert shipped.data == policies.policy_data()
    assert shipped.revision == policies.revision()


def test_policy_set_refuses_clashing_data(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "data.json").write_text('{"hub": {"x": 1}}')
    (tmp_path / "hub" / "data.json").write_text('{"x": 2}')
    with pytest.raises(PolicySourceError, match="sets 'x', which another data file already sets"):
        PolicySet.from_directory(tmp_path)


def test_policy_set_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicySourceError, match="is not a directory"):
        PolicySet.from_directory(tmp_path / "nowhere")


# --- Building -------------------------------------------------------------------------------


def test_unsigned_bundle_layout(tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.gz"
    info = build_bundle(out)
    members = _members(out)
    assert set(members) == {f"/{name}" for name in _shipped_files()}
    assert not any(name.endswith("_test.rego") for name in members)
    assert json.loads(members["/.manifest"]) == {"revision": policies.revision(), "roots": ["hub"]}
    assert info == verify_bundle(out, public_key_pem=None)
    assert (info.revision, info.roots, info.signed) == (policies.revision(), ("hub",), False)
    assert set(info.files) == _shipped_files()


def test_bundle_is_reproducible(tmp_path: Path) -> None:
    build_bundle(tmp_path / "a.tar.gz", revision="r1")
    build_bundle(tmp_path / "b.tar.gz", revision="r1")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_signed_bundle_verifies(tmp_path: Path, keys: dict[str, KeyPair], algorithm: str) -> None:
    private, public = keys[algorithm]
    out = tmp_path / "bundle.tar.gz"
    built = build_bundle(out, signing_key_pem=private, key_id="k1", revision="r2")
    info = verify_bundle(out, public_key_pem=public, key_id="k1")
    assert info == built
    assert (info.revision, info.signed) == ("r2", True)
    assert verify_bundle(out, public_key_pem=public) == info


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_signature_has_opas_format(
    tmp_path: Path, keys: dict[str, KeyPair], algorithm: str
) -> None:
    private, _public = keys[algorithm]
    out = tmp_path / "bundle.tar.gz"
    build_bundle(out, signing_key_pem=private, key_id="k1")
    members = _members(out)
    signatures = json.loads(members["/.signatures.json"])
    assert set(signatures) == {"signatures"}
    assert len(signatures["signatures"]) == 1
    token = signatures["signatures"][0]
    assert jws.get_unverified_header(token) == {"alg": algorithm, "kid": "k1", "typ": "JWT"}
    payload = json.loads(jws.get_unverified_claims(token))
    assert payload["keyid"] == "k1"
    listed = {entry["name"]: entry for entry in payload["files"]}
    assert set(listed) == _shipped_files()
    assert {entry["algorithm"] for entry in listed.values()} == {"SHA-256"}
    for name, content in members.items():
        if name.endswith(".rego"):
            assert listed[name[1:]]["hash"] == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_real_opa_verifies_the_jws(
    tmp_path: Path, keys: dict[str, KeyPair], algorithm: str
) -> None:
    private, public = keys[algorithm]
    out = tmp_path / "bundle.tar.gz"
    build_bundle(out, signing_key_pem=private)
    other = _pem(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )[1]
    query = f"x := io.jwt.verify_{algorithm.lower()}(input.token, input.key)"
    with OpaEngine() as opa:
        for key, verified in ((public, True), (other, False)):
            answer = opa.eval_query(query, {"token": _token(out), "key": key.decode()})
            assert answer == [{"x": verified}]


def test_real_opa_agrees_with_the_normal_form_of_structured_files(
    tmp_path: Path, rsa_keys: KeyPair
) -> None:
    # OPA's json.marshal writes objects with sorted keys and no whitespace, as its bundle
    # hasher does (it differs only in escaping <, > and &, which these files do not hold).
    out = tmp_path / "bundle.tar.gz"
    build_bundle(out, signing_key_pem=rsa_keys[0])
    members = _members(out)
    listed = {
        e["name"]: e["hash"] for e in json.loads(jws.get_unverified_claims(_token(out)))["files"]
    }
    structured = [name for name in members if name.endswith(("data.json", ".manifest"))]
    assert len(structured) >= 2
    with OpaEngine() as opa:
        for name in structured:
            assert not any(char in members[name] for char in b"<>&")
            opa_hash = opa.eval_query(
                "x := crypto.sha256(json.marshal(input))", json.loads(members[name])
            )
            assert opa_hash == [{"x": listed[name[1:]]}]


def test_bundle_files_decide_in_real_opa_as_embedded(
    tmp_path: Path, embedded: EmbeddedPolicyEngine
) -> None:
    out = tmp_path / "bundle.tar.gz"
    build_bundle(out)
    with OpaEngine() as opa:
        for name, content in _members(out).items():
            if name.endswith(".rego"):
                opa.add_policy(name, content.decode())
            elif name.endswith("/data.json"):
                folder = name.removeprefix("/").removesuffix("/data.json")
                opa.add_data(json.loads(content), path=folder.replace("/", "."))
        assert opa.eval_document("hub.config") == policies.policy_data()["hub"]["config"]
        for document in (base_document(), {}):
            expected = embedded.decide_document(document).model_dump(exclude={"revision"})
            assert opa.eval_document("hub.decision.result", document) == expected


# --- The normal form of structured files ----------------------------------------------------


def test_structured_file_digest_is_opas_normal_form() -> None:
    content = (
        b'{ "b": 1, "a": [1.0, 1e2, -0, "x<y&z\\u2028\\u00e9\\n"], "c": {"z": null, "y": true} }'
    )
    normal = '{"a":[1.0,1e2,-0,"x<y&z\\u2028\u00e9\\n"],"b":1,"c":{"y":true,"z":null}}'
    expected = hashlib.sha256(normal.encode("utf-8")).hexdigest()
    assert file_digest("hub/x/data.json", content) == expected
    assert file_digest(".manifest", content) == expected
    assert file_digest("hub/x.rego", content) == hashlib.sha256(content).hexdigest()


def test_structured_file_digest_ignores_layout_and_key_order() -> None:
    assert file_digest("data.json", b'{"a": 1, "b": [true]}') == file_digest(
        "data.json", b'{\n  "b": [ true ],\n  "a": 1\n}\n'
    )
    assert file_digest("data.json", b'{"a": 1}') != file_digest("data.json", b'{"a": 1.0}')


@pytest.mark.parametrize("content", [b"{", b'{"a": NaN}', b"\xff", b'"\\ud800"'])
def test_structured_file_digest_refuses_bad_json(content: bytes) -> None:
    with pytest.raises(BundleError, match=r"'data\.json' is not valid JSON"):
        file_digest("data.json", content)


def test_reformatted_data_file_still_verifies(signed: Path, rsa_keys: KeyPair) -> None:
    # OPA hashes the normal form, so the signature survives whitespace changes.
    members = _members(signed)
    name = "/hub/config/data.json"
    members[name] = json.dumps(json.loads(members[name]), indent=7).encode()
    _rewrite(signed, members)
    assert verify_bundle(signed, public_key_pem=rsa_keys[1]).signed


# --- Verification failures ------------------------------------------------------------------


def test_tampered_file(signed: Path, rsa_keys: KeyPair) -> None:
    members = _members(signed)
    members["/hub/decision.rego"] += b"\n# changed\n"
    _rewrite(signed, members)
    with pytest.raises(BundleError, match=r"'hub/decision.rego' does not match its hash"):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


def test_tampered_data(signed: Path, rsa_keys: KeyPair) -> None:
    members = _members(signed)
    data = json.loads(members["/hub/config/data.json"])
    data["injected"] = True
    members["/hub/config/data.json"] = json.dumps(data).encode()
    _rewrite(signed, members)
    with pytest.raises(BundleError, match=r"'hub/config/data.json' does not match its hash"):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


def test_added_file(signed: Path, rsa_keys: KeyPair) -> None:
    members = _members(signed)
    members["/hub/extra.rego"] = b"package hub.extra\n\nallow := true\n"
    _rewrite(signed, members)
    with pytest.raises(BundleError, match=r"'hub/extra.rego' is not included in the bundle signa"):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


def test_removed_file(signed: Path, rsa_keys: KeyPair) -> None:
    members = _members(signed)
    del members["/hub/decision.rego"]
    _rewrite(signed, members)
    with pytest.raises(
        BundleError, match=r"'hub/decision.rego' is in the bundle signature but not"
    ):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


def test_wrong_key(signed: Path) -> None:
    other = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))[1]
    with pytest.raises(BundleError, match="does not verify with the public key"):
        verify_bundle(signed, public_key_pem=other)


def test_key_of_another_type(signed: Path, ec_keys: KeyPair) -> None:
    with pytest.raises(BundleError, match="does not use ES256, the public key's"):
        verify_bundle(signed, public_key_pem=ec_keys[1])


def test_signature_over_another_bundle(tmp_path: Path, signed: Path, rsa_keys: KeyPair) -> None:
    other = tmp_path / "other.tar.gz"
    build_bundle(other, revision="another-revision")
    members = _members(other)
    members["/.signatures.json"] = _members(signed)["/.signatures.json"]
    _rewrite(other, members)
    with pytest.raises(BundleError, match=r"'.manifest' does not match its hash"):
        verify_bundle(other, public_key_pem=rsa_keys[1])


def test_other_key_id(signed: Path, rsa_keys: KeyPair) -> None:
    with pytest.raises(BundleError, match="names another key id"):
        verify_bundle(signed, public_key_pem=rsa_keys[1], key_id="someone-else")


def test_unsigned_bundle_with_a_key(tmp_path: Path, rsa_keys: KeyPair) -> None:
    out = tmp_path / "bundle.tar.gz"
    build_bundle(out)
    with pytest.raises(BundleError, match=r"the bundle has no \.signatures\.json"):
        verify_bundle(out, public_key_pem=rsa_keys[1])


def test_signed_bundle_without_a_key(signed: Path) -> None:
    with pytest.raises(BundleError, match="is signed, but no public key was given"):
        verify_bundle(signed, public_key_pem=None)


def _resign(path: Path, private: bytes, payload: dict[str, Any]) -> None:
    members = _members(path)
    token = jws.sign(json.dumps(payload).encode(), private.decode(), algorithm="RS256")
    members["/.signatures.json"] = json.dumps({"signatures": [token]}).encode()
    _rewrite(path, members)


def test_scoped_signature(signed: Path, rsa_keys: KeyPair) -> None:
    payload = json.loads(jws.get_unverified_claims(_token(signed)))
    _resign(signed, rsa_keys[0], {**payload, "scope": "write"})
    with pytest.raises(BundleError, match="has a scope, and none is configured"):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


def test_weak_hash_algorithm(signed: Path, rsa_keys: KeyPair) -> None:
    payload = json.loads(jws.get_unverified_claims(_token(signed)))
    for entry in payload["files"]:
        entry["algorithm"] = "MD5"
    _resign(signed, rsa_keys[0], payload)
    with pytest.raises(BundleError, match="is hashed with 'MD5', not SHA-256"):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


@pytest.mark.parametrize(
    ("signatures", "match"),
    [
        (b"[", "is not JSON"),
        (b'{"signatures": []}', "exactly one JWS"),
        (b'{"signatures": ["a", "b"]}', "exactly one JWS"),
        (b'{"signatures": ["x"], "plugin": "kms"}', "names a signing plugin"),
        (b'{"signatures": ["not-a-jws"]}', "not a compact JWS"),
    ],
)
def test_malformed_signatures_file(
    signed: Path, rsa_keys: KeyPair, signatures: bytes, match: str
) -> None:
    members = _members(signed)
    members["/.signatures.json"] = signatures
    _rewrite(signed, members)
    with pytest.raises(BundleError, match=match):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("/../escape.rego", "unsafe path"),
        ("/hub/notes.txt", "'hub/notes.txt' is not a policy, data or manifest file"),
    ],
)
def test_bad_member(signed: Path, rsa_keys: KeyPair, name: str, match: str) -> None:
    members = _members(signed)
    members[name] = b"x"
    _rewrite(signed, members)
    with pytest.raises(BundleError, match=match):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


def test_duplicate_member(signed: Path, rsa_keys: KeyPair) -> None:
    members = [*_members(signed).items(), ("/hub/decision.rego", b"package hub.decision\n")]
    _rewrite(signed, members)
    with pytest.raises(BundleError, match=r"holds 'hub/decision\.rego' twice"):
        verify_bundle(signed, public_key_pem=rsa_keys[1])


def test_not_a_tarball(tmp_path: Path, rsa_keys: KeyPair) -> None:
    path = tmp_path / "bundle.tar.gz"
    path.write_bytes(b"not a bundle")
    with pytest.raises(BundleError, match="not a readable gzipped tarball"):
        verify_bundle(path, public_key_pem=rsa_keys[1])


def test_manifest_without_revision(tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.gz"
    build_bundle(out)
    members = _members(out)
    members["/.manifest"] = b'{"roots": ["hub"]}'
    _rewrite(out, members)
    with pytest.raises(BundleError, match=r"\.manifest has no revision"):
        verify_bundle(out, public_key_pem=None)


# --- Building failures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "match"),
    [
        (b"not a key", "not an unencrypted PEM private key"),
        ("small-rsa", "RSA of 2048 bits or more, or EC P-256"),
        ("p384", "RSA of 2048 bits or more, or EC P-256"),
    ],
)
def test_unusable_signing_key(tmp_path: Path, key: bytes | str, match: str) -> None:
    if key == "small-rsa":
        key = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))[0]  # noqa: S505
    elif key == "p384":
        key = _pem(ec.generate_private_key(ec.SECP384R1()))[0]
    assert isinstance(key, bytes)
    with pytest.raises(BundleError, match=match):
        build_bundle(tmp_path / "bundle.tar.gz", signing_key_pem=key)
    assert not (tmp_path / "bundle.tar.gz").exists()


def test_empty_key_id(tmp_path: Path, rsa_keys: KeyPair) -> None:
    with pytest.raises(BundleError, match="needs a key id"):
        build_bundle(tmp_path / "bundle.tar.gz", signing_key_pem=rsa_keys[0], key_id="")


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"other/data.json": "{}"}, "data file other/data.json lies outside the bundle root hub"),
        ({"data.json": '{"hub": {}}'}, "data file data.json lies outside the bundle root hub"),
        ({"x.rego": "package other\n"}, "module x.rego declares a package outside the bundle root"),
    ],
)
def test_policies_outside_the_root(tmp_path: Path, files: dict[str, str], match: str) -> None:
    folder = tmp_path / "policies"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    with pytest.raises(BundleError, match=match):
        build_bundle(tmp_path / "bundle.tar.gz", policy_set=PolicySet.from_directory(folder))
