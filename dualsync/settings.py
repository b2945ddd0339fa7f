"""One `Settings` object: the only place dualsync reads the environment.

`DATABASE_URL` and `REDIS_URL` keep their conventional names; everything else is
`DUALSYNC_*`. Unset URLs mean "use the embedded default" (see `dualsync.ops.embedded`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LogFormat = Literal["auto", "json", "console"]


class Settings(BaseSettings):
    """Process-wide configuration, validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="DUALSYNC_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "DUALSYNC_DATABASE_URL"),
        description="PostgreSQL URL; unset starts an embedded PostgreSQL with pgvector.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "DUALSYNC_REDIS_URL"),
        description="Redis URL; unset starts an embedded redis-server.",
    )
    redis_cluster: bool = Field(
        default=False,
        description="Treat REDIS_URL as a Redis Cluster (same as writing it redis+cluster://"
        "host:port[,host:port]); every client then is a redis.asyncio.RedisCluster.",
    )
    mongo_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MONGO_URL", "DUALSYNC_MONGO_URL"),
        description="MongoDB URL for the Mongo legacy-store adapter.",
    )
    home: Path = Field(default=Path(".dualsync"), description="Local state directory.")
    embedded_db: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_]+$",
        description="With the embedded PostgreSQL: use this database of it instead of the "
        "default one (e.g. the demo's `dualsync_demo_donna`, to look at what the demo left).",
    )
    prefix: str = Field(default="dualsync", pattern=r"^[A-Za-z0-9_.-]+$")
    shards: int = Field(default=4, ge=1, le=1024)
    source: str = Field(default="dualsync", description="Producer name written into events.")
    max_payload_bytes: int = Field(default=1024 * 1024, ge=1024)
    signing_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="HMAC keys per source, JSON object in the env."
    )
    require_signature: bool = False
    fingerprint_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of the verifier's value fingerprints; unset: a random key per "
        "run (fingerprints then compare within a run, not across runs).",
    )
    mapping: Path | None = Field(
        default=None, description="Entity mapping YAML the worker applies."
    )
    log_format: LogFormat = "auto"
    log_level: str = "INFO"
    metrics_port: int = Field(
        default=0, ge=0, le=65535,
        description="Port of the worker's /metrics and /healthz endpoint; 0 turns it off.",
    )  # fmt: skip
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the worker's metrics endpoint binds to."
    )

    @property
    def spool_dir(self) -> Path:
        """Where producers spool events while Redis is unreachable."""
        return self.home / "spool"

    @property
    def pg_data_dir(self) -> Path:
        """Data directory of the embedded PostgreSQL."""
        return self.home / "pg"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
