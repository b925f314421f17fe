"""Configuration, read from the environment (and `.env`) once per process.

Every name here is documented in `.env.example`; the README's configuration table is built
from the same list.
"""

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.platforms import Platform

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
# Published in this repository: anyone could mint tokens with it, admin ones included.
DEVELOPMENT_JWT_SECRET = "dev-only-secret-change-me-0123456789"
# Also published: the bot credential of every platform under APP_ENV=development when
# PLATFORM_BOT_TOKENS is not set (what `python -m local.bot_simulator` sends by default).
DEVELOPMENT_BOT_TOKEN = "dev-only-bot-token-change-me-0123456789"
BOT_TOKEN_MIN_CHARS = 32


class UnsafeConfiguration(RuntimeError):
    """A setting that must not reach production; the API and the worker refuse to start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Infrastructure
    database_url: str = "postgresql+asyncpg://copilot@127.0.0.1:5433/copilot"
    redis_url: str = "redis://127.0.0.1:6380/0"
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "copilot"

    # Auth: HS256 JWTs whose `sub` is the user id; `role == "admin"` marks operators.
    jwt_secret: str = Field(default=DEVELOPMENT_JWT_SECRET, min_length=32)
    # Tokens that would stay valid longer than this are refused, whoever signed them.
    jwt_max_lifetime_seconds: int = Field(default=90 * 24 * 3600, ge=60)
    # When set, a token must carry this `iss` / `aud`.
    jwt_issuer: str = ""
    jwt_audience: str = ""
    # "development" (what `make dev` sets) allows the published development secret; nothing else does.
    app_env: Literal["production", "development"] = "production"

    # Model provider. With no key, the built-in offline model at `offline_model_url` is used.
    openrouter_api_key: str = ""
    model_base_url: str = ""
    model_api_key: str = ""
    offline_model_url: str = "http://127.0.0.1:8001/v1"
    fast_model: str = "anthropic/claude-sonnet-4"
    thinking_model: str = "anthropic/claude-sonnet-4"
    advanced_model: str = "anthropic/claude-opus-4"  # a message's `model: "advanced"`
    # Reasoning budget on Anthropic routes (never sent elsewhere); 0 = off.
    reasoning_max_tokens: int = Field(default=8192, ge=0, le=128_000)
    # How long Anthropic keeps the cached prompt prefix (system prompt and tools); "1h" needs a beta header.
    prompt_cache_ttl: Literal["5m", "1h"] = "1h"
    # The most one model round may produce (reasoning included), sent with every request.
    model_max_tokens: int = Field(default=32_768, ge=256)

    # Request bodies are refused past this before they are read (413); the Stripe webhook has
    # a fixed, smaller limit (`api/body_limit.py`).
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Turn behaviour
    max_message_chars: int = Field(default=32_000, ge=1)
    max_rounds: int = Field(default=10, ge=1)
    max_tool_calls_per_round: int = Field(default=20, ge=1)
    max_sub_session_depth: int = Field(default=3, ge=0)  # how deep sub-sessions of sub-sessions may nest
    max_sub_sessions_per_turn: int = Field(default=10, ge=0)  # sub-sessions one turn may start
    # Tools whose every call waits for a person's approval (JSON list, e.g. ["bash_exec"]); a
    # session may add more, never remove any. A call not answered in time counts as declined.
    tools_requiring_approval: list[str] = Field(default_factory=list)
    tool_approval_timeout_seconds: float = Field(default=24 * 3600, ge=1)
    # Turns of one user running at once (sub-sessions count); a send past it is a 429.
    max_running_turns_per_user: int = Field(default=10, ge=1)
    max_pending_messages: int = Field(default=10, ge=1)
    # How long a send's Idempotency-Key answers with the first send's outcome.
    idempotency_window_seconds: int = Field(default=24 * 3600, ge=60)
    message_rate_limit: int = Field(default=30, ge=0)  # per user per window; 0 = unlimited
    message_rate_window_seconds: int = Field(default=60, ge=1)

    # Stream relay
    stream_retention_seconds: int = Field(default=3600, ge=60)
    # Parts one turn's Redis stream may hold; a model round that would write more ends the turn
    # with an error (a stream is never trimmed: a reader joining late must see it whole).
    stream_max_parts: int = Field(default=100_000, ge=1_000)
    stream_keepalive_seconds: float = Field(default=15.0, gt=0)
    stream_idle_timeout_seconds: float = Field(default=600.0, gt=0)

    # Activity timeouts and retries
    llm_heartbeat_timeout_seconds: float = Field(default=20.0, gt=0)
    llm_round_timeout_seconds: float = Field(default=600.0, gt=0)
    llm_retry_max_attempts: int = Field(default=4, ge=1)
    llm_retry_initial_seconds: float = Field(default=1.0, gt=0)
    llm_retry_max_interval_seconds: float = Field(default=20.0, gt=0)
    tool_timeout_seconds: float = Field(default=300.0, gt=0)  # MAX_TOOL_WAIT_SECONDS
    tool_heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    # A streaming model round holds an activity slot for its whole answer, so this caps the turns
    # one worker streams at once (they are I/O-bound: the worker's CPU is the real limit).
    worker_max_concurrent_activities: int = Field(default=1000, ge=1)

    # Spend limits: base microdollars (USD x 1,000,000) per window, times the tier's multiplier; 0 = unlimited
    daily_cost_limit_microdollars: int = Field(default=500_000, ge=0)
    weekly_cost_limit_microdollars: int = Field(default=2_500_000, ge=0)
    tier_multiplier_pro: int = Field(default=5, ge=1)
    tier_multiplier_business: int = Field(default=20, ge=1)
    tier_multiplier_enterprise: int = Field(default=60, ge=1)
    rate_limit_reset_cost: int = Field(default=500, ge=0)  # credits to reset the daily window; 0 = off
    max_daily_resets: int = Field(default=5, ge=0)  # paid daily resets per user per UTC day; 0 = no cap

    # Tools
    tool_output_max_chars: int = Field(default=70_000, ge=1000)
    workspace_dir: str = ".data/workspace"
    workspace_max_file_bytes: int = Field(default=1_048_576, ge=1)
    # All the files of one session's working directory (the workspace tools and bash_exec share it).
    workspace_quota_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    bash_output_max_chars: int = Field(default=20_000, ge=100)  # bytes of stdout and of stderr kept, each
    # bash_exec's sandbox: "bubblewrap" (the default), or "none" to run commands as the worker's own
    # user with no isolation, for a developer's own machine only (see the README).
    bash_sandbox: Literal["bubblewrap", "none"] = "bubblewrap"
    # Budgets of one bash_exec call, all its processes together.
    bash_max_processes: int = Field(default=64, ge=2)
    bash_memory_bytes: int = Field(default=512 * 1024 * 1024, ge=16 * 1024 * 1024)
    bash_cpu_seconds: int = Field(default=120, ge=1)
    bash_file_size_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    bash_tmp_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    initial_credits: int = Field(default=100, ge=0)
    # Where agent graphs live: "local" is this backend's PostgreSQL (agent_graphs/local_store.py). The
    # agent platform's own graph API takes its place here once it has an adapter (see the README).
    graph_store: Literal["local"] = "local"

    # Subscriptions through Stripe. With no key, `make dev` runs the offline Stripe sandbox at
    # `stripe_api_base`; the real `stripe` library talks to either the same way.
    stripe_api_key: str = ""
    stripe_api_base: str = ""  # empty: Stripe itself
    stripe_webhook_secret: str = ""
    stripe_price_pro: str = "price_pro_monthly"
    stripe_price_business: str = "price_business_monthly"
    # Monthly price of each paid tier in cents, as configured on the Stripe prices above.
    tier_cost_cents_pro: int = Field(default=2_000, ge=0)
    tier_cost_cents_business: int = Field(default=10_000, ge=0)
    # Checkout redirect URLs must start with this origin.
    frontend_origin: str = "http://127.0.0.1:3000"

    # Chat-platform linking: each platform's bot credential (JSON, e.g. {"DISCORD": "<token>"}; at
    # least 32 visible ASCII characters each), and the front end's link page, to which a link
    # token is appended (`<base>/<token>`).
    platform_bot_tokens: dict[str, str] = Field(default_factory=dict)
    platform_link_base_url: str = "http://127.0.0.1:3000/link"

    # Public shares: the share URL is on `frontend_origin`; the public routes answer at most this
    # many requests per client address per window (0 = unlimited).
    public_rate_limit: int = Field(default=300, ge=0)
    public_rate_window_seconds: int = Field(default=60, ge=1)

    # The admin API. A turn running for longer than this is long-running (a turn whose stream has
    # been silent for longer than `stream_idle_timeout_seconds` is stuck).
    long_running_turn_seconds: float = Field(default=3600.0, gt=0)
    admin_stop_concurrency: int = Field(default=10, ge=1)  # turns a bulk stop stops at once
    # How long terminating a stuck turn first waits for it to take a Stop.
    admin_terminate_stop_wait_seconds: float = Field(default=5.0, ge=0)

    # The chat playground (`/playground`, a page to try the assistant in a browser): off unless
    # enabled (`make dev` enables it). Browser origins allowed to call the API (CORS); empty: the
    # front end's origin (`frontend_origin`) alone.
    playground_enabled: bool = False
    cors_origins: list[str] = Field(default_factory=list)

    # Observability. Logs: JSON lines, or key=value (`make dev`); /metrics on the API and a
    # Prometheus endpoint on each worker (port 0: none); traces exported over OTLP/HTTP when an
    # endpoint is set (the standard OTEL_* variables), not produced at all when not.
    log_format: Literal["json", "kv"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_enabled: bool = True
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    otel_exporter_otlp_endpoint: str = ""
    otel_service_name: str = ""

    # Services that run turns on behalf of a user they name (the AutoPilot graph block of another
    # service): their credentials (JSON list, each at least 32 visible ASCII characters).
    service_tokens: list[str] = Field(default_factory=list)

    @field_validator("service_tokens")
    @classmethod
    def _service_tokens(cls, tokens: list[str]) -> list[str]:
        for token in tokens:
            if len(token) < BOT_TOKEN_MIN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
                raise ValueError(f"SERVICE_TOKENS: each token must be at least {BOT_TOKEN_MIN_CHARS} visible ASCII "
                                 "characters")
        return tokens

    @field_validator("platform_bot_tokens")
    @classmethod
    def _bot_tokens(cls, tokens: dict[str, str]) -> dict[str, str]:
        known = {p.value for p in Platform}
        for platform, token in tokens.items():
            if platform not in known:
                raise ValueError(f"PLATFORM_BOT_TOKENS: unknown platform {platform!r} (one of {sorted(known)})")
            if len(token) < BOT_TOKEN_MIN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
                raise ValueError(f"PLATFORM_BOT_TOKENS: the {platform} token must be at least {BOT_TOKEN_MIN_CHARS} "
                                 "visible ASCII characters")
        return tokens

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port], no path)")
        return origins

    @property
    def allowed_origins(self) -> list[str]:
        """The browser origins CORS lets call the API."""
        return list(self.cors_origins) or [self.frontend_origin.rstrip("/")]

    @property
    def bot_tokens(self) -> dict[str, str]:
        """The bot credential of each platform: the configured ones, or in development with none
        configured, the published development token for every platform."""
        if not self.platform_bot_tokens and self.app_env == "development":
            return {p.value: DEVELOPMENT_BOT_TOKEN for p in Platform}
        return dict(self.platform_bot_tokens)

    def refuse_unsafe(self) -> None:
        """Called by the API and the worker as they start."""
        if self.app_env != "development" and self.jwt_secret == DEVELOPMENT_JWT_SECRET:
            raise UnsafeConfiguration("JWT_SECRET is the published development value: set a secret of your own "
                                      "(at least 32 characters), or APP_ENV=development on a machine of your own.")
        if self.app_env != "development" and DEVELOPMENT_BOT_TOKEN in self.platform_bot_tokens.values():
            raise UnsafeConfiguration("PLATFORM_BOT_TOKENS holds the published development bot token: set tokens "
                                      "of your own, or APP_ENV=development on a machine of your own.")
        if self.jwt_secret in self.platform_bot_tokens.values():
            raise UnsafeConfiguration("A bot token in PLATFORM_BOT_TOKENS is the JWT secret: the two must differ.")
        if set(self.service_tokens) & ({self.jwt_secret} | set(self.platform_bot_tokens.values())):
            raise UnsafeConfiguration("A token in SERVICE_TOKENS is the JWT secret or a bot token: each credential "
                                      "must be its own.")

    @property
    def secret_values(self) -> list[str]:
        """Values a tool's output must never show (replaced with [REDACTED])."""
        from urllib.parse import urlsplit

        secrets = [self.jwt_secret, self.openrouter_api_key, self.model_api_key, *self.platform_bot_tokens.values(),
                   *self.service_tokens]
        for url in (self.database_url, self.redis_url):
            password = urlsplit(url).password
            if password:
                secrets.append(password)
        return [s for s in secrets if s and len(s) >= 4]

    @property
    def model_endpoint(self) -> tuple[str, str]:
        """Base URL and key of the model provider; the offline model when none is configured."""
        if self.model_base_url:
            return self.model_base_url, self.model_api_key or self.openrouter_api_key or "none"
        if self.openrouter_api_key:
            return OPENROUTER_BASE_URL, self.openrouter_api_key
        return self.offline_model_url, "offline"

    @property
    def uses_offline_model(self) -> bool:
        return not (self.model_base_url or self.openrouter_api_key)


@lru_cache
def get_settings() -> Settings:
    return Settings()
