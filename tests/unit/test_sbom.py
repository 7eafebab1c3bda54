"""`make sbom`: a CycloneDX JSON SBOM of the installed environment that names every runtime dependency the
project declares, with its installed version and a package URL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CYCLONEDX = Path(sys.executable).with_name("cyclonedx-py")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.slow
def test_the_sbom_lists_every_declared_runtime_dependency_at_its_installed_version(tmp_path: Path) -> None:
    if not CYCLONEDX.exists():
        pytest.fail(f"{CYCLONEDX} is missing: install the dev dependencies (pip install -e '.[dev]')")
    output = tmp_path / "sbom.cdx.json"
    subprocess.run(
        [
            str(CYCLONEDX),
            "environment",
            "--pyproject",
            str(REPO / "pyproject.toml"),
            "--of",
            "JSON",
            "--output-reproducible",
            "--validate",
            "-o",
            str(output),
            sys.executable,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    bom = json.loads(output.read_text())
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    assert bom["metadata"]["component"]["name"] == "smartpump"
    components = {_normal(c["name"]): c for c in bom["components"]}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name = _normal(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0])
        assert name in components, f"{name} is declared but not in the SBOM"
        component = components[name]
        assert component["version"] == metadata.version(name)
        assert component["purl"].lower().endswith(f"@{component['version']}".lower())
        assert _normal(component["purl"].removeprefix("pkg:pypi/").split("@")[0]) == name
