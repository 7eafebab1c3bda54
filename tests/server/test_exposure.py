"""What the server shows to anyone: /metrics with bounded labels, closed in production unless a scrape
token or a setting opens it; /openapi.json and /docs closed in production unless a setting opens them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine

from smartpump.clock import ManualClock
from smartpump.errors import SigningKeyError
from smartpump.server import keys
from smartpump.server.app import create_app
from smartpump.server.settings import Environment, Settings
from tests.server.conftest import TestClient, _wipe

SCRAPE_TOKEN = "s" * 40


@pytest.fixture
def served(settings: Settings, clock: ManualClock, engine: Engine) -> Iterator[Any]:
    """A function that starts the app with settings changed as given (production by default), on a keyring
    provisioned beforehand (production makes no keys)."""
    opened: list[TestClient] = []
    keys.load(settings.signing_keys_dir, create_missing=True, now=clock.now())

    def serve(**changes: Any) -> TestClient:
        changed = settings.model_copy(update={"env": Environment.PRODUCTION} | changes)
        client = TestClient(create_app(changed, clock=clock, engine=engine), raise_server_exceptions=False)
        opened.append(client)
        return client

    try:
        yield serve
    finally:
        for client in opened:
            client.close()
        _wipe(engine)


def test_unknown_methods_and_paths_do_not_grow_the_metrics(client: TestClient) -> None:
    for n in range(5):
        client.request(f"PROBE{n}", f"/nowhere/{n}")
    client.get("/metrics")  # its own series exist from now on
    before = len(client.get("/metrics").text)
    for n in range(5, 305):
        assert client.request(f"PROBE{n}", f"/nowhere/{n}").status_code in (404, 405)
    text = client.get("/metrics").text
    assert "PROBE" not in text and "/nowhere" not in text
    assert 'method="other",route="unmatched"' in text
    assert len(text) - before < 200  # only the counts changed


def test_production_closes_metrics_and_api_docs(served: Any) -> None:
    client = served()
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 404, path
    assert client.get("/api/v1/health").status_code == 200


def test_a_scrape_token_opens_metrics_to_its_bearer_only(served: Any) -> None:
    client = served(metrics_token=SecretStr(SCRAPE_TOKEN))
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "metrics.token_required"
    assert client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40}).status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert scraped.status_code == 200 and "smartpump_http_requests_total" in scraped.text


def test_settings_open_metrics_and_docs_in_production(served: Any) -> None:
    client = served(metrics_public=True, api_docs_public=True)
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path


def test_development_serves_metrics_and_docs(client: TestClient) -> None:
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path


def test_production_refuses_a_short_scrape_token() -> None:
    with pytest.raises(ValidationError, match="SMARTPUMP_METRICS_TOKEN"):
        Settings(env=Environment.PRODUCTION, secret_key=SecretStr("k" * 48), metrics_token=SecretStr("short"))


def test_production_refuses_to_start_without_provisioned_signing_keys(
    settings: Settings, clock: ManualClock, engine: Engine, tmp_path: Path
) -> None:
    empty = settings.model_copy(
        update={"env": Environment.PRODUCTION, "signing_keys_dir": tmp_path / "no-keys"}
    )
    with pytest.raises(SigningKeyError) as refused:
        create_app(empty, clock=clock, engine=engine)
    assert refused.value.code == "key.missing"
    assert not (tmp_path / "no-keys").exists()
