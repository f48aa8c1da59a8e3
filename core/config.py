"""Every knob of Sonance in one place.

Settings come from the environment and an optional `.env` file. Secrets are `SecretStr` so that
printing or logging a `Settings` object never reveals them. Base-URL overrides exist for every
external service so that tests (and REST proxies in production) can point the real client code at
another server.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./sonance.db"

#: Settings a command may need, with the environment variable that provides them. Used to print
#: one actionable line ("set X") instead of a traceback.
ENV_NAMES: dict[str, str] = {
    "discord_token": "DISCORD_TOKEN",
    "lastfm_api_key": "LASTFM_API_KEY",
    "lastfm_api_secret": "LASTFM_API_SECRET",
    "spotify_client_id": "SPOTIFY_CLIENT_ID",
    "spotify_client_secret": "SPOTIFY_CLIENT_SECRET",
    "spotify_redirect_uri": "SPOTIFY_REDIRECT_URI",
    "openai_api_key": "OPENAI_API_KEY",
    "secret_key": "SONANCE_SECRET_KEY",
    "dataset_dir": "SONANCE_DATASET_DIR",
}


class Settings(BaseSettings):
    """Sonance's configuration, read from the environment and `.env`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        # `KEY=` (as .env.example leaves optional settings) means "not set", not an empty value.
        env_ignore_empty=True,
    )

    # --- storage -----------------------------------------------------------------------------
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    data_dir: Path = Field(Path("./data"), validation_alias="SONANCE_DATA_DIR")
    dataset_dir: Path | None = Field(None, validation_alias="SONANCE_DATASET_DIR")
    # The base corpus `sonance run` imports into a near-empty database: "hetrec" (downloaded from
    # GroupLens and checksum-verified, or SONANCE_DATASET_DIR), a local folder of HetRec files, or "none".
    base_dataset: str = Field("hetrec", validation_alias="SONANCE_BASE_DATASET")
    base_dataset_url: str = Field(
        "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",  # = core.datasets.HETREC_URL
        validation_alias="SONANCE_BASE_DATASET_URL")
    base_dataset_sha256: str = Field("6738f48195667ff03caaab4d32ca9a3133d8cc026b7c3cdaf6ce1010e913c59c",  # HETREC_SHA256
                                     validation_alias="SONANCE_BASE_DATASET_SHA256")
    # "Near-empty": fewer listeners of the server's own (members and its own imports, with any plays)
    # than this; the base corpus's listeners never count.
    base_max_members: int = Field(100, ge=0, validation_alias="SONANCE_BASE_MAX_MEMBERS")

    # --- Discord -----------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(None, validation_alias="DISCORD_TOKEN")
    discord_dev_guild_id: int | None = Field(None, validation_alias="DISCORD_DEV_GUILD_ID")
    discord_api_base: str | None = Field(None, validation_alias="DISCORD_API_BASE")
    discord_gateway_url: str | None = Field(None, validation_alias="DISCORD_GATEWAY_URL")
    discord_shard_count: int | None = Field(None, validation_alias="DISCORD_SHARD_COUNT")
    discord_shard_ids: str | None = Field(None, validation_alias="DISCORD_SHARD_IDS")
    #: Start-up: how often to try reaching Discord, and the first wait (doubled each time).
    discord_connect_attempts: int = Field(5, ge=1, le=20, validation_alias="DISCORD_CONNECT_ATTEMPTS")
    discord_connect_backoff_s: float = Field(2.0, ge=0, le=60, validation_alias="DISCORD_CONNECT_BACKOFF_S")

    # --- Last.fm -----------------------------------------------------------------------------
    lastfm_api_key: SecretStr | None = Field(None, validation_alias="LASTFM_API_KEY")
    lastfm_api_secret: SecretStr | None = Field(None, validation_alias="LASTFM_API_SECRET")
    lastfm_api_root: str = Field("https://ws.audioscrobbler.com/2.0/", validation_alias="LASTFM_API_ROOT")
    lastfm_auth_url: str = Field("https://www.last.fm/api/auth/", validation_alias="LASTFM_AUTH_URL")
    lastfm_requests_per_second: float = Field(5.0, validation_alias="LASTFM_REQUESTS_PER_SECOND")

    # --- Spotify -----------------------------------------------------------------------------
    spotify_client_id: str | None = Field(None, validation_alias="SPOTIFY_CLIENT_ID")
    spotify_client_secret: SecretStr | None = Field(None, validation_alias="SPOTIFY_CLIENT_SECRET")
    spotify_redirect_uri: str | None = Field(None, validation_alias="SPOTIFY_REDIRECT_URI")
    #: Spotify's development mode admits 5 users per app (the owner needs Premium); 0 = no limit, for
    #: an app Spotify granted extended quota. /link spotify says so plainly once the places are taken.
    spotify_user_limit: int = Field(5, ge=0, validation_alias="SPOTIFY_USER_LIMIT")
    spotify_api_base: str = Field("https://api.spotify.com/v1/", validation_alias="SPOTIFY_API_BASE")
    spotify_accounts_base: str = Field("https://accounts.spotify.com", validation_alias="SPOTIFY_ACCOUNTS_BASE")

    # --- albumoftheyear.org ------------------------------------------------------------------
    aoty_base_url: str = Field("https://www.albumoftheyear.org", validation_alias="AOTY_BASE_URL")
    aoty_min_interval_s: float = Field(1.0, validation_alias="AOTY_MIN_INTERVAL_S")
    aoty_cache_days: int = Field(7, validation_alias="AOTY_CACHE_DAYS")

    # --- LLM explanations --------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    openai_model: str = Field("gpt-4o-mini", validation_alias="OPENAI_MODEL")
    explain_timeout_s: float = Field(2.0, validation_alias="SONANCE_EXPLAIN_TIMEOUT_S")
    explain_daily_budget: int = Field(50, validation_alias="SONANCE_EXPLAIN_DAILY_BUDGET")

    # --- security and web --------------------------------------------------------------------
    secret_key: SecretStr | None = Field(None, validation_alias="SONANCE_SECRET_KEY")
    public_base_url: str = Field("http://127.0.0.1:8080", validation_alias="SONANCE_PUBLIC_BASE_URL")
    web_host: str = Field("0.0.0.0", validation_alias="SONANCE_WEB_HOST")
    web_port: int = Field(8080, validation_alias="SONANCE_WEB_PORT")

    # --- behaviour ---------------------------------------------------------------------------
    log_level: str = Field("INFO", validation_alias="SONANCE_LOG_LEVEL")
    log_json: bool = Field(False, validation_alias="SONANCE_LOG_JSON")
    sync_active_minutes: int = Field(15, validation_alias="SONANCE_SYNC_ACTIVE_MINUTES")
    repeat_window_days: int = Field(30, validation_alias="SONANCE_REPEAT_WINDOW_DAYS")
    worker_processes: int = Field(1, ge=0, le=16, validation_alias="SONANCE_WORKER_PROCESSES")
    #: The scheduler leader's lease: a killed leader is replaced within about this long plus a third
    #: of it (the standby's renewal interval). Shorter means faster failover, more database writes.
    scheduler_lease_s: float = Field(30.0, ge=3, le=600, validation_alias="SONANCE_SCHEDULER_LEASE_S")
    #: How often the leader looks for members whose weekly DM slot has come.
    weekly_dm_check_s: float = Field(300.0, ge=1, le=3600, validation_alias="SONANCE_WEEKLY_DM_CHECK_S")

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"DATABASE_URL is not a valid database URL: {exc}") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    @property
    def async_database_url(self) -> str:
        """The database URL with an async driver (aiosqlite / asyncpg), whatever the user wrote."""
        url = make_url(self.database_url)
        backend = url.get_backend_name()
        driver = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}[backend]
        return url.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"

    def require(self, *names: str) -> None:
        """Raise `ConfigError` naming the first missing setting, so a command prints one line."""
        for name in names:
            value = getattr(self, name)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                env = ENV_NAMES.get(name, name.upper())
                raise ConfigError(f"Missing setting: set {env} (in the environment or .env).")


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's validation report into one readable `ConfigError`."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise ConfigError(f"Invalid setting {where}: {first.get('msg')}") from None
