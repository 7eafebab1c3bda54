"""`smartpump keys list|add|activate|retire`: the rotation steps at the console, each refusal coded."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from smartpump.cli import keyring  # noqa: F401  (registers the commands on keys_app)
from smartpump.cli.library import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), list(args))
    return result.exit_code, result.output


def _keys(folder: Path) -> dict[str, dict[str, str]]:
    code, output = _run("keys", "list", "--dir", str(folder), "--json")
    assert code == 0, output
    return {row["key_id"]: row for row in json.loads(output)["keys"]}


def test_rotation_at_the_console_adds_activates_and_retires(tmp_path: Path) -> None:
    code, output = _run("keys", "add", "--purpose", "library", "--dir", str(tmp_path), "--json")
    assert code == 0, output
    [first] = json.loads(output)["keys"]
    assert (first["purpose"], first["status"]) == ("library", "active")
    code, output = _run("keys", "add", "--purpose", "library", "--dir", str(tmp_path), "--json")
    [second] = json.loads(output)["keys"]
    assert second["status"] == "published"

    code, output = _run("keys", "retire", first["key_id"], "--dir", str(tmp_path))
    assert code == 2 and "key.active" in output
    assert _run("keys", "activate", second["key_id"], "--dir", str(tmp_path))[0] == 0
    assert _run("keys", "retire", first["key_id"], "--dir", str(tmp_path))[0] == 0
    statuses = {key_id: row["status"] for key_id, row in _keys(tmp_path).items()}
    assert statuses == {first["key_id"]: "retired", second["key_id"]: "active"}
    code, output = _run("keys", "activate", first["key_id"], "--dir", str(tmp_path))
    assert code == 2 and "key.retired" in output


def test_an_unknown_purpose_or_key_is_refused(tmp_path: Path) -> None:
    assert _run("keys", "add", "--purpose", "firmware", "--dir", str(tmp_path))[0] == 2
    code, output = _run("keys", "retire", "0123456789abcdef", "--dir", str(tmp_path))
    assert code == 2 and "key.unknown" in output


def test_a_broken_keyring_file_is_named_in_the_listing(tmp_path: Path) -> None:
    (tmp_path / "keyring.json").write_text("[]")
    code, output = _run("keys", "list", "--dir", str(tmp_path))
    assert code == 2 and "key.malformed" in output
