"""The hub's one settings object, read from `HUB_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Access tokens may live at most this long (issue: "≤ 10 minutes").
MAX_ACCESS_TOKEN_TTL_SECONDS = 600


class Settings(BaseSettings):
    """Everything the hub needs to start; each field is `HUB_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None
    master_key: SecretStr | None = None
    # Alternative to master_key: a passphrase stretched with scrypt (salt beside the keystore).
    master_passphrase: SecretStr | None = None
    # The hub's own address as agencies see it; the token endpoint's URL (the audience of a
    # client assertion) is derived from it.
    public_url: str = "http://127.0.0.1:8000"
    access_token_ttl_seconds: int = Field(default=300, gt=0, le=MAX_ACCESS_TOKEN_TTL_SECONDS)
    # A client assertion must be short-lived: exp - iat and exp - now are capped by this.
    assertion_max_lifetime_seconds: int = Field(default=300, gt=0, le=MAX_ACCESS_TOKEN_TTL_SECONDS)
    connector_timeout_seconds: float = Field(default=5.0, gt=0)
    # Per worker process (see connectors.fanout.FetchPool): fetches one source may have
    # outstanding at once across all requests (a request finding none free waits for one until
    # its deadline, then reports the source timed_out, error "busy"), and threads asking sources
    # for all requests together. A fetch to a stalled source lingers until the connector's own
    # read timeout, so these stop a stalled source piling up threads and connections.
    connector_max_in_flight: int = Field(default=8, ge=1, le=1024)
    connector_max_threads: int = Field(default=32, ge=1, le=4096)
    policy_timeout_seconds: float = Field(default=2.0, gt=0)
    # When set, decisions come from this OPA server (Data API) instead of the embedded engine.
    opa_url: str | None = None
    opa_token: SecretStr | None = None
    opa_timeout_seconds: float = Field(default=0.5, gt=0, le=5)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # Per agency client, per process (see hub/api/ratelimit.py): a token bucket holding
    # `rate_limit_burst` requests, refilled at `rate_limit_per_minute`.
    rate_limit_per_minute: int = Field(default=600, gt=0)
    rate_limit_burst: int = Field(default=120, gt=0)
    # POST /v1/token, per process, counted before the assertion's signature is checked: per
    # client id named by a registered client, and (looser) per remote address for assertions
    # that name no registered client or cannot be read.
    token_rate_limit_per_minute: int = Field(default=60, gt=0)
    token_rate_limit_burst: int = Field(default=30, gt=0)
    token_address_rate_limit_per_minute: int = Field(default=120, gt=0)
    token_address_rate_limit_burst: int = Field(default=60, gt=0)
    # The audit log's name in its signed checkpoints (C2SP origin line); derived from
    # public_url when unset. Pin it in production: changing it stops old checkpoints verifying.
    audit_origin: str | None = Field(default=None, pattern=r"^[^\s+]+$", max_length=200)
    # Signed checkpoints of the audit log: one at every multiple of this many entries, and one
    # whenever an entry has waited this many seconds without a checkpoint covering it.
    audit_checkpoint_every: int = Field(default=1000, ge=1, le=1_000_000)
    audit_checkpoint_seconds: float = Field(default=60.0, ge=0.1, le=86_400)
    demo_sources_port: int = 8101
    # How long one database statement may run or wait for a lock before it fails (0: no
    # limit). Serving and the CLI's batched work use it; schema migrations run without it.
    database_statement_timeout_seconds: float = Field(default=10.0, ge=0, le=86_400)
    # How long after a pseudonym-root rotation an agency can still turn an old pseudonym into
    # its current form (GET /v1/pseudonyms/{pseudonym}/current).
    pseudonym_grace_days: int = Field(default=180, ge=0)
    # Threads per worker that run request handlers. Each keeps its own embedded policy VM
    # (about 4 MB, see hub.policy._worker), so more threads than the CPUs can keep busy cost
    # memory without adding throughput; requests beyond this wait their turn. The database
    # pool holds one connection per thread plus a few (hub.bootstrap.POOL_SPARE).
    request_threads: int = Field(default=8, ge=1, le=256)
    # The web UI's session cookie carries `Secure` unless this is false; unset means true in
    # production and false in development (plain HTTP on a laptop).
    cookie_secure: bool | None = None
    # A web session ends after this long without a request, and after web_session_max_seconds
    # whatever happens.
    web_idle_timeout_seconds: int = Field(default=900, gt=0)
    web_session_max_seconds: int = Field(default=12 * 3600, gt=0)
    # Lockout: this many failed sign-ins to one account within the window refuse the next ones.
    sign_in_max_failures: int = Field(default=5, gt=0)
    sign_in_lockout_seconds: int = Field(default=900, gt=0)

    @model_validator(mode="after")
    def _production_needs_explicit_secrets(self) -> Settings:
        # A generated key file is fine on a laptop; production must name its store and key.
        if self.environment == "production":
            if self.master_key is None and self.master_passphrase is None:
                raise ValueError(
                    "HUB_MASTER_KEY (or HUB_MASTER_PASSPHRASE) must be set in production"
                )
            if self.database_url is None:
                raise ValueError("HUB_DATABASE_URL must be set in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"

    @property
    def session_cookie_secure(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production"

    @property
    def token_endpoint(self) -> str:
        return self.public_url.rstrip("/") + "/v1/token"

    @property
    def keystore_path(self) -> Path:
        return self.data_dir / "keystore.json"

    @property
    def master_salt_file(self) -> Path:
        return self.data_dir / "master.salt"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / "demo"
