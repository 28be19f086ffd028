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
    policy_timeout_seconds: float = Field(default=2.0, gt=0)
    # When set, decisions come from this OPA server (Data API) instead of the embedded engine.
    opa_url: str | None = None
    opa_token: SecretStr | None = None
    opa_timeout_seconds: float = Field(default=0.5, gt=0, le=5)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # The audit log's name in its signed checkpoints (C2SP origin line); derived from
    # public_url when unset. Pin it in production: changing it stops old checkpoints verifying.
    audit_origin: str | None = Field(default=None, pattern=r"^[^\s+]+$", max_length=200)
    demo_sources_port: int = 8101
    # How long after a pseudonym-root rotation an agency can still turn an old pseudonym into
    # its current form (GET /v1/pseudonyms/{pseudonym}/current).
    pseudonym_grace_days: int = Field(default=180, ge=0)

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
