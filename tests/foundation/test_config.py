from __future__ import annotations

import logging
import re

import pytest

from core.config import Settings, load_settings
from core.errors import ConfigError
from core.logs import SecretScrubber


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults_use_an_embedded_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = _settings()
    assert settings.async_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.redis_url is None


def test_plain_urls_get_async_drivers() -> None:
    assert _settings(DATABASE_URL="postgresql://u:p@db/x").async_database_url == "postgresql+asyncpg://u:p@db/x"
    assert _settings(DATABASE_URL="sqlite:///a.db").async_database_url == "sqlite+aiosqlite:///a.db"


def test_secrets_never_show_in_repr() -> None:
    settings = _settings(DISCORD_TOKEN="tok-abcdef-123456", SONANCE_SECRET_KEY="k" * 32)
    assert "tok-abcdef-123456" not in repr(settings)
    assert "kkkkkkkk" not in str(settings.model_dump())


@pytest.mark.parametrize("url", ["nonsense", "mysql://x/y", "postgresql://host:notaport/db"])
def test_malformed_database_url_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert "DATABASE_URL" in info.value.user_message
    assert "\n" not in info.value.user_message


def test_require_names_the_variable_to_set() -> None:
    with pytest.raises(ConfigError, match="set DISCORD_TOKEN"):
        _settings().require("discord_token")
    with pytest.raises(ConfigError, match="set SONANCE_SECRET_KEY"):
        _settings().require("secret_key")


def test_scrubber_removes_secret_values_from_log_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token is %s", ("sekrit-value-42",), None)
    SecretScrubber(["sekrit-value-42"]).filter(record)
    assert record.getMessage() == "token is ***"


ENV_EXAMPLE = __import__("pathlib").Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_lists_every_setting() -> None:
    # A setting may be listed commented out ("# DATABASE_URL=…"): shown with its default, but not set
    # by a copied file, where a blank value would override the Docker image's own (SONANCE_DATA_DIR=/data).
    listed = {m.group(1) for line in ENV_EXAMPLE.read_text().splitlines()
              if (m := re.match(r"(?:# )?([A-Z][A-Z0-9_]+)=", line))}
    aliases = {str(field.validation_alias) for field in Settings.model_fields.values()}
    assert aliases - listed == set(), "settings missing from .env.example"
    assert listed - aliases == set(), ".env.example names settings that do not exist"


def test_a_copied_env_example_loads_with_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cp .env.example .env` must not break start-up: blank optional settings are "not set"."""
    for name in ("DATABASE_URL", "REDIS_URL", "DISCORD_TOKEN", "DISCORD_DEV_GUILD_ID"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    defaults = _settings()
    assert settings.discord_dev_guild_id is None and settings.redis_url is None
    assert settings.model_dump() == defaults.model_dump()
    with pytest.raises(ConfigError, match="set DISCORD_TOKEN"):
        settings.require("discord_token")
