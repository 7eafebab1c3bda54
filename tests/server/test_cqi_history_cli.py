"""`smartpump sim history --into-db URL --facility CODE`: a labelled synthetic history in the event store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from smartpump.analytics import history
from smartpump.cli import cqi as cqi_cli
from smartpump.library.formats import json_format
from smartpump.server.auth import Access, Principal, Role
from smartpump.server.services import cqi
from tests.factories import make_library
from tests.server.conftest import World
from tests.server.cqi_history import CqiTeam

START_DAY = "2026-02-20"
ARGS = ["--pumps", "2", "--days", "2", "--seed", "5", "--start", START_DAY]


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    cqi_cli.register(app)
    return app


@pytest.fixture
def library_file(tmp_path: Path) -> Path:
    path = tmp_path / "north.json"
    json_format.write(make_library(hospital_id="north"), path)
    return path


def _expected_events() -> int:
    start = datetime.fromisoformat(START_DAY).replace(tzinfo=UTC)
    library = make_library(hospital_id="north")
    return len(history.generate_events(library, pumps=2, days=2, seed=5, start=start))


def _auditor() -> Access:
    principal = Principal(user_id=1, username="aud", global_roles=frozenset({Role.AUDITOR}))
    return Access(principal=principal, roles=frozenset({Role.AUDITOR}))


def test_history_is_stored_labelled_synthetic_and_only_once(
    world: World, cli: typer.Typer, database_url: str, library_file: Path
) -> None:
    north = world.facility("north")
    command = [
        "sim",
        "history",
        "--into-db",
        database_url,
        "--facility",
        "north",
        "--library",
        str(library_file),
    ]
    first = CliRunner().invoke(cli, [*command, *ARGS, "--json"])
    assert first.exit_code == 0, first.output
    expected = _expected_events()
    loaded = json.loads(first.stdout)
    assert (loaded["events"], loaded["stored"], loaded["duplicates"], loaded["pumps_registered"]) == (
        expected,
        expected,
        0,
        2,
    )
    again = json.loads(CliRunner().invoke(cli, [*command, *ARGS, "--json"]).stdout)
    assert (again["stored"], again["duplicates"], again["pumps_registered"]) == (0, expected, 0)
    with world.state.sessions() as session:
        frame = cqi.events_frame(session, _auditor(), since=None, until=None)
    assert frame.height == expected
    assert frame["synthetic"].to_list() == [True] * expected
    assert sorted(frame["pump"].unique().to_list()) == [f"SIM-F{north}-00001", f"SIM-F{north}-00002"]
    auditor = world.as_role(Role.AUDITOR, north, username="n-aud")
    overview = world.client.get(
        "/api/v1/cqi/overview", headers=auditor, params={"since": f"{START_DAY}T00:00:00Z"}
    ).json()
    assert (overview["synthetic"], overview["events"]) == (True, expected)
    assert "SYNTHETIC DATA" in world.client.get("/api/v1/cqi/report.html", headers=auditor).text


def test_history_runs_the_released_library_by_default(
    world: World, cli: typer.Typer, database_url: str
) -> None:
    team = CqiTeam(world)
    args = ["sim", "history", "--into-db", database_url, "--facility", "north", *ARGS, "--json"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2
    assert "cqi.no_library" in refused.output
    team.released_north_v2()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["library_version"] == 2


def test_bad_history_options_fail_with_a_reason(
    world: World, cli: typer.Typer, database_url: str, library_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.facility("north")
    base = ["sim", "history", "--into-db", database_url, "--library", str(library_file), "--days", "1"]
    cases = [
        (["--facility", "nowhere"], "facility.not_found"),
        ([], "cli.bad_parameter"),
        (["--facility", "north", "-o", "out.parquet"], "cli.bad_parameter"),
        (["--facility", "north", "--start", "20 Feb"], "cli.bad_date"),
    ]
    for extra, code in cases:
        result = CliRunner().invoke(cli, [*base, *extra])
        assert (result.exit_code, code in result.output) == (2, True), result.output
    monkeypatch.setenv("SMARTPUMP_ENV", "production")
    result = CliRunner().invoke(cli, [*base, "--facility", "north"])
    assert result.exit_code == 2
    assert "cli.production" in result.output
