"""Library files in and out: the smartpump .xlsx export goes through every command that takes a
library, and each wrong kind of file gets its own reason (synthetic libraries)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import smartpump.cli.library_import  # noqa: F401  (registers the command)
from smartpump.cli import app
from smartpump.library.formats import json_format, xlsx_format
from smartpump.library.formats.library_file import FileKind, file_kind
from smartpump.library.signing import SignedLibrary
from tests.conftest import shared_file
from tests.factories import make_library

runner = CliRunner()


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    source = tmp_path / "lib.json"
    json_format.write(make_library(version=3), source)
    out = tmp_path / "lib.xlsx"
    result = runner.invoke(app, ["library", "export", str(source), "--format", "xlsx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_xlsx_export_is_read_by_show_lint_and_diff(exported: Path, tmp_path: Path) -> None:
    shown = runner.invoke(app, ["library", "show", str(exported), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["version"] == 3
    linted = runner.invoke(app, ["library", "lint", str(exported), "--json"])
    assert json.loads(linted.stdout)["file"] == str(exported)
    json_copy = tmp_path / "copy.json"
    json_format.write(xlsx_format.read(exported), json_copy)
    compared = runner.invoke(app, ["library", "diff", str(json_copy), str(exported), "--json"])
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.stdout)["changes"] == []


def test_the_xlsx_export_is_signed_and_imported_back_to_the_same_library(
    exported: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    assert runner.invoke(app, ["keys", "generate", "--out-dir", str(keys)]).exit_code == 0
    signed = tmp_path / "lib.signed.json"
    result = runner.invoke(
        app,
        ["library", "sign", str(exported), "--key", str(keys / "library-signing.key.pem"), "-o", str(signed)],
    )
    assert result.exit_code == 0, result.output
    assert file_kind(signed) is FileKind.SIGNED_JSON
    assert SignedLibrary.from_json(signed.read_text(encoding="utf-8")).payload
    imported = tmp_path / "imported.json"
    result = runner.invoke(app, ["library", "import", str(exported), "-o", str(imported), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "smartpump-xlsx"
    assert json_format.read(imported) == xlsx_format.read(exported)


def test_a_json_library_given_to_import_is_told_to_use_it_directly(tmp_path: Path) -> None:
    source = tmp_path / "lib.json"
    json_format.write(make_library(), source)
    result = runner.invoke(app, ["library", "import", str(source)])
    assert result.exit_code == 2
    assert "cli.already_a_library" in result.stderr
    assert "is a smartpump JSON library: use it directly" in result.stderr
    assert "Excel" not in result.stderr


@pytest.mark.parametrize(
    ("content", "name", "reason"),
    [
        (b"%PDF-1.7 ...", "library.pdf", "is a PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "library.xls", "legacy Excel .xls"),
        (b'{"format": "something/else"}', "other.json", "JSON of another kind"),
        (b"plain words", "notes.txt", "is not a drug library file"),
    ],
)
def test_every_wrong_file_kind_gets_its_own_reason(
    tmp_path: Path, content: bytes, name: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for command in (["library", "import"], ["library", "lint"], ["library", "show"]):
        result = runner.invoke(app, [*command, str(path)])
        assert result.exit_code == 2, (command, result.output)
        assert reason in result.stderr, (command, result.stderr)


def test_a_vendor_export_given_to_lint_is_told_to_import_it_first() -> None:
    source = shared_file("vendor-libraries", "baxter-sigma-library-v14.xlsx")
    result = runner.invoke(app, ["library", "lint", str(source)])
    assert result.exit_code == 2
    assert "is a Baxter Sigma export: import it first" in result.stderr
