"""`make audit-deps` (.ci/audit-deps) on a closed network: against a local copy of the OSV database it finds
an installed package's known vulnerability by exact version, by range (fixed, last_affected) and in a
zip, passes a fixed one, refuses an unreadable database, and without any vulnerability data says so and
fails only when an audit is required."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit-deps"
PACKAGE = "packaging"
INSTALLED = metadata.version(PACKAGE)
CLOSED = "127.0.0.1:1"


def _audit(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPUMP_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={**base, "SMARTPUMP_AUDIT_PROBE": CLOSED, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _record(osv_id: str, **affected: object) -> dict[str, object]:
    return {
        "id": osv_id,
        "modified": "2026-11-30T00:00:00Z",
        "aliases": [f"CVE-{osv_id}"],
        "affected": [{"package": {"ecosystem": "PyPI", "name": PACKAGE.upper()}, **affected}],
    }


def _major_after() -> str:
    return f"{int(INSTALLED.split('.')[0]) + 1}.0"


def _database(folder: Path, *records: dict[str, object]) -> Path:
    folder.mkdir()
    for record in records:
        (folder / f"{record['id']}.json").write_text(json.dumps(record), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "affected",
    [
        {"versions": [INSTALLED]},
        {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": _major_after()}]}]},
        {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": INSTALLED}]}]},
        {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": INSTALLED}]}]},
    ],
    ids=["versions", "fixed-later", "last-affected", "no-fix"],
)
def test_an_installed_vulnerable_version_fails_the_audit_offline(
    tmp_path: Path, affected: dict[str, object]
) -> None:
    database = _database(tmp_path / "osv", _record("PYSEC-1", **affected))
    result = _audit(SMARTPUMP_VULN_DB=str(database))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"VULNERABLE {PACKAGE} {INSTALLED}: PYSEC-1 CVE-PYSEC-1" in result.stdout
    assert "newest 2026-11-30" in result.stdout


def test_a_fixed_or_foreign_vulnerability_passes_and_a_zip_is_read(tmp_path: Path) -> None:
    fixed = _record(
        "PYSEC-2", ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.1"}]}]
    )
    foreign = {**_record("GHSA-3", versions=[INSTALLED])}
    foreign["affected"] = [{"package": {"ecosystem": "npm", "name": PACKAGE}, "versions": [INSTALLED]}]
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as written:
        for record in (fixed, foreign):
            written.writestr(f"{record['id']}.json", json.dumps(record))
    result = _audit(SMARTPUMP_VULN_DB=str(archive))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "against 2 OSV records" in result.stdout and "no known vulnerabilities" in result.stdout


def test_an_unreadable_database_is_an_error_never_a_pass(tmp_path: Path) -> None:
    broken = tmp_path / "all.zip"
    broken.write_bytes(b"not a zip")
    result = _audit(SMARTPUMP_VULN_DB=str(broken))
    assert result.returncode == 2 and "cannot read the vulnerability database" in result.stderr


def test_without_vulnerability_data_it_says_so_and_fails_only_when_required() -> None:
    skipped = _audit()
    assert skipped.returncode == 0 and "no vulnerability data reachable" in skipped.stderr
    assert "Skipped." in skipped.stderr
    required = _audit(SMARTPUMP_AUDIT_REQUIRED="1")
    assert required.returncode == 3 and "Failing: SMARTPUMP_AUDIT_REQUIRED=1." in required.stderr
