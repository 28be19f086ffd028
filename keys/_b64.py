"""Base64 helpers shared by the keyring modules."""

from __future__ import annotations

import base64
import binascii
import re

# Either alphabet (standard or URL-safe), with or without "=" padding.
_LENIENT_B64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_URLSAFE_B64_NOPAD = re.compile(r"[A-Za-z0-9_-]*")


def b64_encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str) -> bytes:
    """Decode standard base64 with padding.

    Raises ValueError if `text` is not valid standard base64.
    """
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("not valid base64") from exc


def b64_decode_lenient(text: str) -> bytes:
    """Decode base64 in either alphabet, padding optional, surrounding whitespace ignored.

    Raises ValueError if `text` is not base64 in that sense.
    """
    text = text.strip()
    if not text or _LENIENT_B64.fullmatch(text) is None:
        raise ValueError("not valid base64")
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    return b64_decode(body + "=" * (-len(body) % 4))


def b64url_encode_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode_nopad(text: str) -> bytes:
    """Decode unpadded URL-safe base64.

    Raises ValueError if `text` uses another alphabet, carries padding, or has an impossible length.
    """
    if _URLSAFE_B64_NOPAD.fullmatch(text) is None:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not unpadded base64url") from exc
