"""Settings refuse default secrets in production and never ship a fixed development secret."""

from __future__ import annotations

from pathlib import Path

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


def test_production_refuses_auto_registration_and_mqtt_without_device_identity(tmp_path: Path) -> None:
    base = {
        "env": Environment.PRODUCTION,
        "secret_key": SecretStr("k" * 48),
        "database_url": "postgresql://db/x",
    }
    with pytest.raises(ValidationError, match="SMARTPUMP_INGEST_REGISTER_FACILITY"):
        Settings(**base, ingest_register_facility="north")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="SMARTPUMP_DEVICE_REGISTRY"):
        Settings(**base, mqtt_url="mqtts://broker:8883")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="set together"):
        Settings(mqtt_cert_file=tmp_path / "server.crt")
    secured = Settings(
        **base,  # type: ignore[arg-type]
        mqtt_url="mqtts://broker:8883",
        mqtt_ca_file=tmp_path / "ca.crt",
        mqtt_cert_file=tmp_path / "server.crt",
        mqtt_key_file=tmp_path / "server.key",
        device_registry=tmp_path / "registry.json",
    )
    assert secured.device_registry == tmp_path / "registry.json"
    assert Settings(ingest_register_facility="sim").ingest_register_facility == "sim"
