"""`smartpump library lint|diff|sign|verify` and `keys generate` through the CLI: output and exit codes."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

import smartpump.cli.library_review  # noqa: F401  (registers the commands)
from smartpump.cli import library
from smartpump.cli.library_review import format_findings
from smartpump.errors import LibraryFormatError
from smartpump.library.formats import json_format
from smartpump.library.model import DrugLibrary
from smartpump.library.signing import key_fingerprint
from tests.factories import (
    HOSPITAL_ID,
    bounds,
    dose_limits,
    make_care_area,
    make_drug,
    make_entry,
    make_library,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    local = typer.Typer()
    library.register(local)
    return local


def _run(app: typer.Typer, *args: str) -> Result:
    return runner.invoke(app, list(args))


def _write(library_value: DrugLibrary, path: Path) -> Path:
    json_format.write(library_value, path)
    return path


@pytest.fixture
def keys(app: typer.Typer, tmp_path: Path) -> tuple[Path, Path]:
    result = _run(app, "keys", "generate", "--out-dir", str(tmp_path / "keys"), "--name", "pharmacy")
    assert result.exit_code == 0, result.output
    return tmp_path / "keys" / "pharmacy.key.pem", tmp_path / "keys" / "pharmacy.pub.pem"


@pytest.fixture
def signed_file(app: typer.Typer, keys: tuple[Path, Path], tmp_path: Path) -> Path:
    source = _write(make_library(version=7), tmp_path / "v7.json")
    out = tmp_path / "v7.signed.json"
    result = _run(
        app, "library", "sign", str(source), "--key", str(keys[0]), "--key-id", "pharm-1", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize(
    "command",
    [
        ["library", "lint"],
        ["library", "diff"],
        ["library", "sign"],
        ["library", "verify"],
        ["keys", "generate"],
    ],
)
def test_every_command_has_help(app: typer.Typer, command: list[str]) -> None:
    result = _run(app, *command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout


# --- lint -----------------------------------------------------------------------------------


def test_lint_clean_library_exits_0(app: typer.Typer, tmp_path: Path) -> None:
    result = _run(app, "library", "lint", str(_write(make_library(), tmp_path / "lib.json")))
    assert result.exit_code == 0, result.output
    assert "no findings" in result.stdout


def test_lint_error_exits_1_with_table(app: typer.Typer, tmp_path: Path) -> None:
    entry = make_entry(dose=dose_limits("mcg/kg/min", soft_max=20))
    path = _write(make_library(entries=(entry,)), tmp_path / "lib.json")
    result = _run(app, "library", "lint", str(path))
    assert result.exit_code == 1
    assert "lint.high_alert.no_hard_max" in result.stdout
    assert "error: 1" in result.stdout


def test_lint_warnings_only_exit_0(app: typer.Typer, tmp_path: Path) -> None:
    path = _write(make_library(care_areas=(make_care_area(weight_kg=bounds()),)), tmp_path / "lib.json")
    result = _run(app, "library", "lint", str(path))
    assert result.exit_code == 0
    assert "lint.weight.care_area_limits" in result.stdout
    assert "warning: 1" in result.stdout


def test_lint_table_lists_errors_before_warnings(app: typer.Typer, tmp_path: Path) -> None:
    library_value = make_library(
        care_areas=(make_care_area(weight_kg=bounds()),),
        entries=(make_entry(rate_ml_per_h=bounds(hard_max=1200)),),
    )
    output = _run(app, "library", "lint", str(_write(library_value, tmp_path / "lib.json"))).stdout
    assert output.index("lint.rate.beyond_care_area_max") < output.index("lint.weight.care_area_limits")


def test_lint_json_lists_findings_and_counts(app: typer.Typer, tmp_path: Path) -> None:
    entry = make_entry(rate_ml_per_h=bounds(hard_max=1200))
    path = _write(make_library(entries=(entry,)), tmp_path / "lib.json")
    result = _run(app, "library", "lint", str(path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["counts"] == {"error": 1, "warning": 0, "info": 0}
    (finding,) = report["findings"]
    assert finding["rule"] == "lint.rate.beyond_care_area_max"
    assert finding["severity"] == "error"
    assert finding["where"] == "entry:icu-dopamine"


def test_lint_reports_limits_out_of_order_as_findings(app: typer.Typer, tmp_path: Path) -> None:
    document = json.loads(json_format.dumps(make_library()))
    document["entries"][0]["dose"]["limits"]["hard_min"] = 50
    path = tmp_path / "disordered.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = _run(app, "library", "lint", str(path), "--json")
    assert result.exit_code == 1
    rules = [f["rule"] for f in json.loads(result.stdout)["findings"]]
    assert rules == ["lint.limits.order"]


def test_lint_reports_schema_problems_as_format_findings(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x"}', encoding="utf-8")
    result = _run(app, "library", "lint", str(path), "--json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert findings
    assert {f["rule"] for f in findings} == {"lint.format"}


def test_lint_reports_invalid_json_as_a_finding_in_the_table(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    result = _run(app, "library", "lint", str(path))
    assert result.exit_code == 1
    assert "lint.format" in result.stdout


def test_format_problem_without_location_is_placed_on_the_file() -> None:
    error = LibraryFormatError("the document is empty")
    (finding,) = format_findings(error)
    assert (finding.rule, finding.where, finding.message) == ("lint.format", "file", "the document is empty")


def test_lint_unreadable_file_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    result = _run(app, "library", "lint", str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert "library.unreadable" in result.stderr


# --- diff -----------------------------------------------------------------------------------


def test_diff_shows_flagged_change_and_summary(app: typer.Typer, tmp_path: Path) -> None:
    old = _write(make_library(), tmp_path / "v1.json")
    new = _write(
        make_library(version=2, entries=(make_entry(rate_ml_per_h=bounds(hard_max=50)),)),
        tmp_path / "v2.json",
    )
    result = _run(app, "library", "diff", str(old), str(new))
    assert result.exit_code == 0, result.output
    assert "rate_ml_per_h.hard_max" in result.stdout
    assert "x0.1" in result.stdout
    assert "1 flagged" in result.stdout


def test_diff_json_has_changes_and_summary(app: typer.Typer, tmp_path: Path) -> None:
    old = _write(make_library(), tmp_path / "v1.json")
    new = _write(
        make_library(version=2, entries=(make_entry(rate_ml_per_h=bounds(hard_max=50)),)),
        tmp_path / "v2.json",
    )
    result = _run(app, "library", "diff", str(old), str(new), "--json")
    report = json.loads(result.stdout)
    assert (report["old_version"], report["new_version"]) == (1, 2)
    assert report["summary"]["flagged"] == 1
    assert report["summary"]["entries_changed"] == 1
    change = next(c for c in report["changes"] if c["parameter"] == "rate_ml_per_h.hard_max")
    assert (change["old"], change["new"], change["flagged"]) == (500, 50, True)


def test_diff_marks_added_and_removed_entries(app: typer.Typer, tmp_path: Path) -> None:
    old = _write(make_library(), tmp_path / "v1.json")
    new = _write(
        make_library(version=2, entries=(make_entry(id="renal", therapy="renal"),)), tmp_path / "v2.json"
    )
    lines = _run(app, "library", "diff", str(old), str(new)).stdout.splitlines()
    assert "- entry:icu-dopamine (Adult ICU / DOPamine / mcg/kg/min)" in lines
    assert "+ entry:renal (Adult ICU / DOPamine / renal / mcg/kg/min)" in lines


def test_diff_of_identical_libraries_says_so(app: typer.Typer, tmp_path: Path) -> None:
    path = _write(make_library(), tmp_path / "v1.json")
    result = _run(app, "library", "diff", str(path), str(path))
    assert result.exit_code == 0
    assert "no differences" in result.stdout


def test_diff_with_unreadable_file_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    path = _write(make_library(), tmp_path / "v1.json")
    result = _run(app, "library", "diff", str(path), str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert "missing.json" in result.stderr


# --- keys generate --------------------------------------------------------------------------


def test_keys_generate_writes_private_key_0600(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_keys_generate_refuses_to_overwrite(app: typer.Typer, keys: tuple[Path, Path]) -> None:
    before = keys[0].read_bytes()
    result = _run(app, "keys", "generate", "--out-dir", str(keys[0].parent), "--name", "pharmacy")
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.stderr
    assert keys[0].read_bytes() == before


def test_keys_generate_json_gives_key_id(app: typer.Typer, tmp_path: Path) -> None:
    result = _run(app, "keys", "generate", "--out-dir", str(tmp_path), "--json")
    report = json.loads(result.stdout)
    assert report["key_id"] == key_fingerprint((tmp_path / "library-signing.pub.pem").read_bytes())


def test_keys_generate_refuses_a_path_as_name(app: typer.Typer, tmp_path: Path) -> None:
    result = _run(app, "keys", "generate", "--out-dir", str(tmp_path), "--name", "../escape")
    assert result.exit_code == 2
    assert not (tmp_path.parent / "escape.key.pem").exists()


def test_keys_generate_reports_unwritable_directory(app: typer.Typer, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _run(app, "keys", "generate", "--out-dir", str(blocker / "sub"))
    assert result.exit_code == 2
    assert "cli.unwritable" in result.stderr


# --- sign / verify --------------------------------------------------------------------------


def test_sign_then_verify_exits_0(app: typer.Typer, signed_file: Path, keys: tuple[Path, Path]) -> None:
    result = _run(
        app,
        "library",
        "verify",
        str(signed_file),
        "--public-key",
        str(keys[1]),
        "--installed-version",
        "6",
        "--hospital",
        HOSPITAL_ID,
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verified"] is True
    assert (report["version"], report["key_id"], report["hospital_id"]) == (7, "pharm-1", HOSPITAL_ID)


def test_verify_prints_a_line_for_people(
    app: typer.Typer, signed_file: Path, keys: tuple[Path, Path]
) -> None:
    result = _run(app, "library", "verify", str(signed_file), "--public-key", str(keys[1]))
    assert result.exit_code == 0
    assert "verified" in result.stdout


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--installed-version", "7"], "signature.rollback"),
        (["--hospital", "another-hospital"], "signature.wrong_hospital"),
    ],
)
def test_verify_refusal_exits_1_with_code(
    app: typer.Typer, signed_file: Path, keys: tuple[Path, Path], extra: list[str], code: str
) -> None:
    result = _run(app, "library", "verify", str(signed_file), "--public-key", str(keys[1]), *extra)
    assert result.exit_code == 1
    assert code in result.stdout


def test_verify_tampered_file_is_refused_in_json(
    app: typer.Typer, signed_file: Path, keys: tuple[Path, Path]
) -> None:
    document = json.loads(signed_file.read_text())
    payload = base64.b64decode(document["payload"]).replace(b'"version":7', b'"version":8')
    document["payload"] = base64.b64encode(payload).decode()
    signed_file.write_text(json.dumps(document))
    result = _run(app, "library", "verify", str(signed_file), "--public-key", str(keys[1]), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "verified": False,
        "code": "signature.invalid",
        "message": json.loads(result.stdout)["message"],
    }


def test_verify_with_other_key_is_refused(app: typer.Typer, signed_file: Path, tmp_path: Path) -> None:
    _run(app, "keys", "generate", "--out-dir", str(tmp_path / "other"))
    result = _run(
        app,
        "library",
        "verify",
        str(signed_file),
        "--public-key",
        str(tmp_path / "other" / "library-signing.pub.pem"),
    )
    assert result.exit_code == 1
    assert "signature.invalid" in result.stdout


def test_verify_malformed_file_is_refused(app: typer.Typer, keys: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "bad.signed.json"
    path.write_text("{}")
    result = _run(app, "library", "verify", str(path), "--public-key", str(keys[1]))
    assert result.exit_code == 1
    assert "signature.malformed" in result.stdout


def test_verify_missing_file_exits_2(app: typer.Typer, keys: tuple[Path, Path], tmp_path: Path) -> None:
    result = _run(app, "library", "verify", str(tmp_path / "none.json"), "--public-key", str(keys[1]))
    assert result.exit_code == 2
    assert "cli.unreadable" in result.stderr


def test_verify_missing_public_key_exits_2(app: typer.Typer, signed_file: Path, tmp_path: Path) -> None:
    result = _run(app, "library", "verify", str(signed_file), "--public-key", str(tmp_path / "none.pem"))
    assert result.exit_code == 2
    assert "public key" in result.stderr


def test_sign_default_key_id_is_the_fingerprint(
    app: typer.Typer, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    source = _write(make_library(), tmp_path / "lib.json")
    out = tmp_path / "lib.signed.json"
    result = _run(app, "library", "sign", str(source), "--key", str(keys[0]), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["key_id"] == key_fingerprint(keys[1].read_bytes())


def test_sign_refuses_to_overwrite_without_force(
    app: typer.Typer, signed_file: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    source = _write(make_library(version=8), tmp_path / "v8.json")
    before = signed_file.read_text()
    refused = _run(app, "library", "sign", str(source), "--key", str(keys[0]), "-o", str(signed_file))
    assert refused.exit_code == 2
    assert signed_file.read_text() == before
    forced = _run(
        app, "library", "sign", str(source), "--key", str(keys[0]), "-o", str(signed_file), "--force"
    )
    assert forced.exit_code == 0
    assert signed_file.read_text() != before


def test_sign_with_public_key_as_private_key_exits_2(
    app: typer.Typer, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    source = _write(make_library(), tmp_path / "lib.json")
    out = tmp_path / "out.json"
    result = _run(app, "library", "sign", str(source), "--key", str(keys[1]), "-o", str(out))
    assert result.exit_code == 2
    assert "key.wrong_type" in result.stderr
    assert not out.exists()


def test_sign_with_missing_key_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    source = _write(make_library(), tmp_path / "lib.json")
    result = _run(
        app, "library", "sign", str(source), "--key", str(tmp_path / "none.pem"), "-o", str(tmp_path / "o")
    )
    assert result.exit_code == 2
    assert "key.missing" in result.stderr and "private key" in result.stderr


def test_sign_unreadable_library_exits_2(app: typer.Typer, keys: tuple[Path, Path], tmp_path: Path) -> None:
    result = _run(
        app, "library", "sign", str(tmp_path / "none.json"), "--key", str(keys[0]), "-o", str(tmp_path / "o")
    )
    assert result.exit_code == 2


def _library_with_error_warning_and_info(tmp_path: Path) -> Path:
    no_hard_max = make_entry(id="icu-dopamine-2", therapy="renal", dose=dose_limits("mcg/kg/min", soft_max=5))
    drugs = (
        make_drug(is_high_alert=True),
        make_drug(id="cefazolin", generic_name="cefazolin", is_high_alert=False),
    )
    info = make_entry(id="icu-cefazolin", drug_id="cefazolin", dose=dose_limits("mg", soft_max=2000))
    area = make_care_area(weight_kg=bounds())
    library = make_library(care_areas=(area,), drugs=drugs, entries=(make_entry(), no_hard_max, info))
    return _write(library, tmp_path / "lib.json")


def test_lint_prints_counts_per_rule_first_then_findings_grouped_by_rule(
    app: typer.Typer, tmp_path: Path
) -> None:
    result = _run(app, "library", "lint", str(_library_with_error_warning_and_info(tmp_path)))
    assert result.exit_code == 1
    out = result.stdout
    assert out.index("Lint summary") < out.index("ERROR lint.high_alert.no_hard_max (1)")
    assert out.index("ERROR lint.high_alert.no_hard_max (1)") < out.index(
        "WARNING lint.weight.care_area_limits"
    )
    assert out.index("WARNING lint.weight.care_area_limits") < out.index("INFO lint.limits.missing_hard_max")


@pytest.mark.parametrize(
    ("severity", "shown"),
    [("error", {"error"}), ("warning", {"error", "warning"}), ("info", {"error", "warning", "info"})],
)
def test_lint_severity_shows_that_severity_and_worse(
    app: typer.Typer, tmp_path: Path, severity: str, shown: set[str]
) -> None:
    path = _library_with_error_warning_and_info(tmp_path)
    result = _run(app, "library", "lint", str(path), "--severity", severity, "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert {f["severity"] for f in document["findings"]} == shown
    assert {r["severity"] for r in document["by_rule"]} == shown
    assert document["counts"] == {"error": 1, "warning": 1, "info": 1}


def test_lint_summary_prints_no_findings(app: typer.Typer, tmp_path: Path) -> None:
    path = _library_with_error_warning_and_info(tmp_path)
    result = _run(app, "library", "lint", str(path), "--summary", "--json")
    document = json.loads(result.stdout)
    assert document["findings"] == []
    assert [r["count"] for r in document["by_rule"]] == [1, 1, 1]
