"""Pseudonyms of different subjects never collide, and rotation keeps every version apart."""

from __future__ import annotations

from pathlib import Path

from keys import KeyRing


def test_a_million_subjects_get_a_million_pseudonyms(ring: KeyRing) -> None:
    seen = {ring.pseudonym(domain="agency:police", value=f"subject-{i}") for i in range(1_000_000)}
    assert len(seen) == 1_000_000


def test_rotated_pseudonyms_share_nothing_with_the_old_ones(
    ring: KeyRing, keystore_path: Path, master_key: bytes
) -> None:
    rotated = KeyRing.rotate(keystore_path, master_key=master_key, purpose="pseudonym-root")
    assert rotated.pseudonym_version == "v2"
    old = {ring.pseudonym(domain="d", value=str(i))[3:] for i in range(1000)}
    new = {rotated.pseudonym(domain="d", value=str(i))[3:] for i in range(1000)}
    assert old.isdisjoint(new)
    assert rotated.pseudonyms(domain="d", value="7")["v1"] == ring.pseudonym(domain="d", value="7")
