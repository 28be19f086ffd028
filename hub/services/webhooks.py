"""Signed webhooks in the Standard Webhooks 1.0 form (standard-webhooks/standard-webhooks,
`spec/standard-webhooks.md`), so an agency can check them with any Standard Webhooks library.

Each request is a POST of a JSON body with three headers:

    webhook-id          the message id; the same on every retry (an idempotency key)
    webhook-timestamp   the attempt's time, integer Unix seconds
    webhook-signature   "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

The key is the agency's secret, serialised as `whsec_` + base64 of 24 to 64 random bytes, unique
per endpoint. A receiver should compare in constant time, refuse timestamps more than a few
minutes from its clock, and drop a `webhook-id` it has already processed.

Only `2xx` counts as delivered; redirects are not followed (the spec counts `3xx` as failure).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from hub.errors import BadRequest

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64
SIGNATURE_VERSION = "v1"
# The spec suggests 15-30 s for a receiver to answer; an agency endpoint only has to store the
# message and acknowledge it, and a short timeout keeps one slow agency from holding up others.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "inter-agency-hub-webhooks/1"


def generate_secret() -> str:
    """A fresh secret in the `whsec_` form: 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret.

    Raises BadRequest if the secret is not `whsec_` + base64 of 24 to 64 bytes (the message
    never repeats the secret).
    """
    if not secret.startswith(SECRET_PREFIX):
        raise BadRequest(f"a webhook secret must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("a webhook secret must be base64 after its prefix") from exc
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise BadRequest(
            f"a webhook secret must hold {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes, "
            f"got {len(key)}"
        )
    return key


def check_url(url: str) -> str:
    """The URL, if the hub may post notifications to it.

    HTTPS is required, since the body names a case and the agency's pseudonym of a person;
    plain HTTP is accepted only on the loopback interface. Raises BadRequest.
    """
    if len(url) > 2000:
        raise BadRequest("a webhook URL may be at most 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadRequest("a webhook URL must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("a webhook URL must not carry credentials; the signature authenticates")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise BadRequest("a webhook URL must use https (http only on loopback)")
    return url


def origin(url: str) -> str:
    """Scheme, host and port: what the audit log records of a webhook URL (no path or query,
    which might carry an endpoint token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sign(*, key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one attempt: `v1,<base64 HMAC-SHA256>`."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac).decode()}"


def headers(*, key: bytes, msg_id: str, now: datetime, body: bytes) -> dict[str, str]:
    """The request headers for one attempt made at `now`."""
    timestamp = int(now.timestamp())
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key=key, msg_id=msg_id, timestamp=timestamp, body=body),
    }


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: `error` is None when delivered, else a code without personal
    data (`http_500`, `timeout`, `connect_error`, `transport_error`, `bad_url`)."""

    error: str | None
    status_code: int | None = None

    @property
    def delivered(self) -> bool:
        return self.error is None

    @property
    def permanent(self) -> bool:
        """410 Gone: the receiver asks not to be sent this again (spec: disable, do not retry)."""
        return self.status_code == 410


def post(
    client: httpx.Client, *, url: str, key: bytes, msg_id: str, now: datetime, body: bytes
) -> Outcome:
    """Send one signed attempt. Never raises for network trouble: it becomes the outcome."""
    request_headers = headers(key=key, msg_id=msg_id, now=now, body=body)
    try:
        # Streamed so a receiver's (possibly large) answer body is never read: only its status
        # matters.
        with client.stream("POST", url, content=body, headers=request_headers) as response:
            status = response.status_code
    except httpx.TimeoutException:
        return Outcome(error="timeout")
    except httpx.ConnectError:
        return Outcome(error="connect_error")
    except httpx.HTTPError:
        return Outcome(error="transport_error")
    except httpx.InvalidURL:
        return Outcome(error="bad_url")
    if 200 <= status < 300:
        return Outcome(error=None, status_code=status)
    return Outcome(error=f"http_{status}", status_code=status)


def new_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The client deliveries use: short timeouts, no redirects, no proxies from the
    environment (a notification goes straight to the agency's endpoint)."""
    return httpx.Client(
        timeout=DEFAULT_TIMEOUT, follow_redirects=False, trust_env=False, transport=transport
    )
