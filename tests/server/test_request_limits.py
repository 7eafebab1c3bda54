"""Request bodies are bounded before anything reads them: JSON nested 1,000 levels is refused 422 with a
code on every route (it was a 500 where a route parsed it), a body over the size limit is refused 413,
library documents have their own limit, and the limits are settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from smartpump.clock import ManualClock
from smartpump.server.app import create_app
from smartpump.server.auth import Role
from smartpump.server.settings import Settings
from tests.server.access_table import ACCESS
from tests.server.conftest import PASSWORD, TestClient, World, _wipe, library_payload
from tests.server.test_web_pages import browsers, csrf_of, login  # noqa: F401  (browsers is a fixture)

DEEP = "[" * 1000 + "]" * 1000
BODY_ROUTES = sorted(key for key in ACCESS if key[0] not in {"GET", "HEAD"})


def _url(path: str) -> str:
    for name in ("serial", "entry_id", "code"):
        path = path.replace("{" + name + "}", "x1")
    while "{" in path:
        start = path.index("{")
        path = path[:start] + "1" + path[path.index("}") + 1 :]
    return path


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.fixture
def limited(settings: Settings, clock: ManualClock, engine: Engine) -> Iterator[TestClient]:
    """An app with small limits: 4 KiB bodies, 8 KiB documents, 8 levels, 1,000 values."""
    small = settings.model_copy(
        update={
            "max_body_bytes": 4096,
            "max_document_bytes": 8192,
            "max_json_depth": 8,
            "max_json_values": 1000,
        }
    )
    try:
        with TestClient(
            create_app(small, clock=clock, engine=engine), raise_server_exceptions=False
        ) as client:
            yield client
    finally:
        _wipe(engine)


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_every_route_refuses_json_nested_a_thousand_levels_before_anything_else(
    shared_client: TestClient, method: str, path: str
) -> None:
    response = shared_client.request(
        method, _url(path), content=DEEP, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "request.too_deep"


def test_routes_that_parsed_a_deep_body_answer_422_not_500(world: World) -> None:
    facility = world.facility()
    pharmacist = world.as_role(Role.PHARMACIST, facility)
    nurse = world.as_role(Role.NURSE, facility)
    biomed = world.as_role(Role.BIOMED, facility)
    created = world.post_json("/api/v1/libraries", library_payload(facility), pharmacist)
    assert created.status_code == 201, created.text
    library_id = created.json()["id"]
    entry = created.json()["entries"][0]["id"] if "entries" in created.json() else "e1"
    deep_document = f'{{"facility_id": {facility}, "document": {{"x": {DEEP}}}}}'
    for path, headers, body in [
        ("/api/v1/libraries", pharmacist, deep_document),
        (f"/api/v1/libraries/{library_id}/entries/{entry}", pharmacist, DEEP),
        ("/api/v1/configurations", biomed, deep_document),
        ("/api/v1/fhir/MedicationRequest", nurse, f'{{"resourceType": "MedicationRequest", "x": {DEEP}}}'),
    ]:
        method = "PUT" if "/entries/" in path else "POST"
        response = world.client.request(
            method, path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["code"] == "request.too_deep"


def test_nesting_up_to_the_limit_reaches_the_route(limited: TestClient) -> None:
    at_limit = limited.post(
        "/api/v1/auth/logout", content=_nested(8), headers={"Content-Type": "application/json"}
    )
    assert at_limit.status_code == 401  # the route's own answer: no token
    beyond = limited.post(
        "/api/v1/auth/logout", content=_nested(9), headers={"Content-Type": "application/json"}
    )
    assert beyond.status_code == 422 and beyond.json()["error"]["code"] == "request.too_deep"


def test_a_body_holding_too_many_values_is_refused(limited: TestClient) -> None:
    body = json.dumps([0] * 1001, separators=(",", ":"))
    assert len(body) < 4096
    response = limited.post("/api/v1/auth/logout", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "request.too_many_values"


def test_a_body_over_the_size_limit_is_refused_413(limited: TestClient) -> None:
    declared = limited.post("/api/v1/auth/logout", content=b" " * 4097)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "request.too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield from (b" " * 1024 for _ in range(5))

    streamed = limited.post("/api/v1/auth/logout", content=chunks())
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "request.too_large"
    within = limited.post("/api/v1/auth/logout", content=b" " * 4096)
    assert within.status_code == 401


def test_library_documents_have_their_own_size_limit(limited: TestClient) -> None:
    document = json.dumps({"facility_id": 1, "document": {"pad": "x" * 6000}})
    assert 4096 < len(document) < 8192
    assert limited.post("/api/v1/libraries", content=document).status_code == 401  # past the size limit
    assert limited.post("/api/v1/auth/logout", content=document).status_code == 413
    too_big = json.dumps({"pad": "x" * 9000})
    assert limited.post("/api/v1/libraries", content=too_big).status_code == 413


def test_the_default_body_limit_is_one_mebibyte(client: TestClient) -> None:
    assert client.post("/api/v1/auth/logout", content=b" " * (1024 * 1024)).status_code == 401
    refused = client.post("/api/v1/auth/logout", content=b" " * (1024 * 1024 + 1))
    assert refused.status_code == 413


def test_forms_are_size_limited_but_not_read_as_json(world: World) -> None:
    world.user(username="nina")
    bracketed = world.client.post("/api/v1/auth/token", data={"username": "nina", "password": "[" * 500})
    assert bracketed.status_code == 401  # a wrong password, not a refused body
    assert (
        world.client.post("/api/v1/auth/token", data={"username": "nina", "password": PASSWORD}).status_code
        == 200
    )


def test_an_uploaded_json_library_nested_a_thousand_levels_is_refused(
    world: World,
    app: Any,
    browsers: list[TestClient],  # noqa: F811
) -> None:
    facility = world.facility()
    world.user((Role.PHARMACIST, facility), username="phil")
    phil = login(app, browsers, "phil")
    token = csrf_of(phil.get("/ui/libraries").text)
    response = phil.post(
        "/ui/libraries/import",
        data={"facility_id": str(facility), "csrf": token},
        files={"upload": ("deep.json", DEEP.encode(), "application/json")},
    )
    assert response.status_code == 422
    assert "request.too_deep" in response.text
