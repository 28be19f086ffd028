"""The canonical entry bytes are exactly sorted, compact, UTF-8 JSON — the fast encoder in the
verifier and the times `verify` reads raw agree with the straightforward definitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from hub.audit.verifier import entry_bytes
from hub.services import audit
from hub.services.audit_verify import _rfc3339


@given(
    seq=st.integers(1, 2**40),
    kind=st.text(),
    at=st.text(),
    body=st.text(),
)
def test_entry_bytes_are_sorted_compact_utf8_json(seq: int, kind: str, at: str, body: str) -> None:
    expected = json.dumps(
        {"seq": seq, "kind": kind, "at": at, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert entry_bytes(seq=seq, kind=kind, at=at, body=body) == expected


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1)))
def test_raw_column_times_format_as_appended(naive: datetime) -> None:
    aware = naive.replace(tzinfo=UTC)
    expected = audit.rfc3339(aware)
    assert _rfc3339(aware) == expected
    assert _rfc3339(naive.isoformat(sep=" ", timespec="microseconds")) == expected
    assert _rfc3339(naive.isoformat(sep=" ")) == expected
    assert _rfc3339(aware.astimezone(timezone(timedelta(hours=2)))) == expected
