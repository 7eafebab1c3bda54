"""Settings refuse default secrets in production and never ship a fixed development secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from smartpump.server.settings import Environment, Settings


@pytest.mark.parametrize("secret", ["", "changethis", "short-but-not-empty"])
def test_production_refuses_default_or_weak_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="SMARTPUMP_SECRET_KEY"):
        Settings(
            env=Environment.PRODUCTION, secret_key=SecretStr(secret), database_url="postgresql://db/smartpump"
        )


def test_production_accepts_a_long_random_secret() -> None:
    settings = Settings(
        env=Environment.PRODUCTION, secret_key=SecretStr("k" * 48), database_url="postgresql://db/x"
    )
    assert settings.is_production


def test_development_makes_up_a_random_secret_per_process() -> None:
    first, second = Settings(), Settings()
    assert len(first.secret_key.get_secret_value()) >= 32
    assert first.secret_key.get_secret_value() != second.secret_key.get_secret_value()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTPUMP_ENV", "production")
    monkeypatch.setenv("SMARTPUMP_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("SMARTPUMP_DATABASE_URL", "postgresql://db/fromenv")
    settings = Settings()
    assert settings.database_url == "postgresql://db/fromenv"
    assert settings.env is Environment.PRODUCTION
