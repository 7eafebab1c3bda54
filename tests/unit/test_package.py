"""The package stands alone: declared public API, its version, type information and the data it ships."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from typer.testing import CliRunner

import smartpump
from smartpump.cli import app
from smartpump.data import DEMO_LIBRARY

REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path(smartpump.__file__).resolve().parent
PUBLIC_MODULES = [
    "smartpump",
    "smartpump.errors",
    "smartpump.clock",
    "smartpump.units",
    "smartpump.library",
    "smartpump.ders",
    "smartpump.pump",
    "smartpump.data",
]
FLAT_MODULES = ["smartpump.errors", "smartpump.clock", "smartpump.units"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_name_a_module_declares_public_exists(name: str) -> None:
    module = importlib.import_module(name)
    declared = module.__all__
    assert declared, f"{name} declares an empty public API"
    assert len(set(declared)) == len(declared), f"{name}.__all__ repeats a name"
    missing = [n for n in declared if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what the module lacks: {missing}"


@pytest.mark.parametrize("name", FLAT_MODULES)
def test_every_public_class_and_function_of_a_core_module_is_declared(name: str) -> None:
    module = importlib.import_module(name)
    defined = {
        n
        for n, value in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == name
    }
    assert defined - set(module.__all__) == set(), f"public in {name} but not in __all__"


def test_the_packaged_demo_library_is_the_examples_one() -> None:
    examples = REPO / "examples" / "demo-library.json"
    assert DEMO_LIBRARY.read_bytes() == examples.read_bytes(), (
        f"{DEMO_LIBRARY} differs from {examples}: after rebuilding the demo library, "
        "cp examples/demo-library.json src/smartpump/data/demo-library.json"
    )


def test_the_package_says_it_is_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"smartpump {smartpump.__version__}\n"
