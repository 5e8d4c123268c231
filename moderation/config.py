"""Settings shared by the API, the workers and the CLI, read from ``MODERATION_*`` variables."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "MODERATION_"
DEVELOPMENT_SECRET_KEY = "development-only-secret-key"  # noqa: S105  (refused in production)
MIN_SECRET_LENGTH = 32
DETOXIFY_HUB_MODELS = frozenset(
    {"original", "unbiased", "multilingual", "original-small", "unbiased-small"}
)


def default_model_dir() -> str:
    """Where `moderation model build` puts the offline model unless told otherwise."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(cache / "comment-moderation" / "models" / "default")


class ConfigError(RuntimeError):
    """A setting has a bad value; the message names the environment variable."""


class Settings(BaseSettings):
    """Every knob of the service; one instance is shared by API, worker and CLI."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Production unless said otherwise: a real secret, Secure cookies, /metrics behind a token.
    env: Literal["development", "test", "production"] = "production"
    secret_key: str = DEVELOPMENT_SECRET_KEY
    database_url: str = "sqlite:///var/moderation.sqlite3"
    broker_url: str = "redis://127.0.0.1:6379/0"
    task_queue: str = Field("moderation", min_length=1, max_length=100)
    # Seconds before Redis hands an unacknowledged task to another worker.
    visibility_timeout: int = Field(300, ge=10)
    # A directory built by `moderation model build` (the default combined scorer, or a
    # trained build), or a Detoxify hub name (needs internet).
    model: str = Field(default_factory=default_model_dir)
    model_quantize: Literal["none", "int8"] = "none"
    # Where the torch signals run: ``cuda`` scores in fp16 and in larger batches.
    model_device: Literal["cpu", "cuda"] = "cpu"
    # The model for comments detected in a language other than English: a Detoxify hub name
    # (``multilingual``) or a model directory. Unset, such comments follow their site's
    # ``unsupported_language`` choice (held for a person by default).
    model_multilingual: str | None = None
    # The ISO 639-1 codes that model covers, comma-separated (Detoxify's multilingual list).
    model_multilingual_languages: str = "en,fr,es,it,pt,tr,ru"
    model_threads: int | None = Field(None, ge=1, le=64)
    scoring_max_retries: int = Field(3, ge=0, le=20)
    scoring_retry_delay: float = Field(2.0, ge=0)
    scoring_batch_size: int = Field(32, ge=1, le=1024)
    # Seconds between flushes of a worker's buffer while every pool process is busy (an idle
    # process takes a message at once; see workers/batches.py).
    scoring_batch_wait: float = Field(0.05, gt=0, le=10)
    pending_resend_after: float = Field(120.0, gt=0)
    sweep_interval: float = Field(30.0, gt=0)
    # Seconds the compatible APIs (Perspective, Coral, OpenAI) wait for a worker to score a
    # text before answering as each protocol expects when a service is slow.
    sync_timeout: float = Field(2.0, gt=0, le=30)
    # Rate-limit counters; the broker's Redis when unset.
    ratelimit_storage_url: str | None = None
    ratelimit_enabled: bool = True
    # Site API (secret key): per site key. Public widget API: posts per client IP, per
    # reader and per publishable key, and reads per client IP. Flask-Limiter strings.
    ratelimit_site_key: str = "1000/second"
    # Requests with a key that is not valid, per client address; past it, 429 before any lookup.
    ratelimit_invalid_key: str = "30/minute"
    # The Perspective-, Coral- and OpenAI-compatible endpoints, per site key: each request
    # makes a worker score text ahead of the backlog of posted comments.
    ratelimit_sync: str = "20/second;600/minute"
    ratelimit_public_ip: str = "20/minute;200/hour"
    ratelimit_public_author: str = "5/minute;30/hour"
    ratelimit_public_site: str = "600/minute"
    ratelimit_public_read: str = "300/minute"
    # Readers' reports of comments from the widget, per reader and per client IP.
    ratelimit_report_reader: str = "10/minute;100/day"
    ratelimit_report_ip: str = "30/minute;500/day"
    # Comments per author per site on every ingest path (site API and widget); a site's
    # own ``author_rate_limit`` rule overrides it.
    ratelimit_author: str = "10/minute;100/hour"
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (0: none).
    trusted_proxies: int = Field(0, ge=0, le=10)
    webhook_timeout: float = Field(5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(12, ge=1, le=30)
    # Back-off before retry n is webhook_retry_delay * 2**(n-1) seconds, at most webhook_max_delay.
    webhook_retry_delay: float = Field(1.0, gt=0)
    webhook_max_delay: float = Field(3600.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # JSON lines or plain text; JSON by default in production.
    log_format: Literal["json", "text"] | None = None
    # /healthz/workers and `moderation status` want a worker heartbeat this fresh (seconds).
    worker_heartbeat_max_age: float = Field(30.0, gt=0)
    # `moderation status` reports a backlog when a comment has been pending this long.
    max_pending_age: float = Field(300.0, gt=0)
    # /metrics wants "Authorization: Bearer <token>"; in production it answers 403 while unset.
    metrics_token: str | None = None
    # Moderator sessions: the cookie is Secure unless env is development (None = that rule).
    session_cookie_secure: bool | None = None
    session_lifetime_hours: float = Field(12.0, gt=0, le=24 * 30)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator(
        "ratelimit_site_key",
        "ratelimit_invalid_key",
        "ratelimit_sync",
        "ratelimit_public_ip",
        "ratelimit_public_author",
        "ratelimit_public_site",
        "ratelimit_public_read",
        "ratelimit_report_reader",
        "ratelimit_report_ip",
        "ratelimit_author",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must be a rate limit such as '10/minute;100/hour'") from None
        return value

    @field_validator("model_multilingual")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @field_validator("model_multilingual_languages")
    @classmethod
    def _language_codes(cls, value: str) -> str:
        codes = [code.strip().lower() for code in value.split(",") if code.strip()]
        if not codes or not all(re.fullmatch("[a-z]{2,3}", code) for code in codes):
            raise ValueError("must be comma-separated ISO 639-1 codes such as 'fr,es,it'")
        return ",".join(codes)

    @field_validator("broker_url")
    @classmethod
    def _redis_broker(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @model_validator(mode="after")
    def _real_secret_in_production(self) -> Settings:
        if self.env != "production":
            return self
        if self.secret_key == DEVELOPMENT_SECRET_KEY:
            raise ValueError(
                f"{ENV_PREFIX}SECRET_KEY must be set to a real secret in production "
                f"(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                f"or set {ENV_PREFIX}ENV=development on a machine of your own"
            )
        if len(self.secret_key) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"{ENV_PREFIX}SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters "
                f"in production"
            )
        return self

    @property
    def model_is_hub_name(self) -> bool:
        """True when the model is downloaded by Detoxify rather than loaded from disk."""
        return self.model in DETOXIFY_HUB_MODELS

    @property
    def multilingual_languages(self) -> frozenset[str]:
        """The languages ``model_multilingual`` covers."""
        return frozenset(self.model_multilingual_languages.split(","))

    @property
    def cookie_secure(self) -> bool:
        """Whether session cookies carry the Secure flag (sent over HTTPS only)."""
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return self.env != "development"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, failing with the variable's name on a bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    return f"{ENV_PREFIX}{'_'.join(str(part) for part in error['loc']).upper()}: {message}"
