"""The core stays pure: no wall clock, environment, unseeded randomness, frameworks, network or files.

An AST walk over errors.py, clock.py, units.py, library/, ders/ and pump/; ``library/formats`` is the
one part of the core allowed to open files.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "smartpump"
CORE = ["errors.py", "clock.py", "units.py", "library", "ders", "pump"]
FILE_IO_ALLOWED = PACKAGE / "library" / "formats"

FORBIDDEN_CALLS = {
    "datetime.now": "reads the wall clock",
    "datetime.utcnow": "reads the wall clock",
    "datetime.today": "reads the wall clock",
    "date.today": "reads the wall clock",
    "time.time": "reads the wall clock",
    "time.time_ns": "reads the wall clock",
    "time.monotonic": "reads the wall clock",
    "time.monotonic_ns": "reads the wall clock",
    "time.perf_counter": "reads the wall clock",
    "os.environ": "reads the environment",
    "os.getenv": "reads the environment",
    "os.environb": "reads the environment",
}
FORBIDDEN_FROM_IMPORTS = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter"},
    "os": {"environ", "environb", "getenv"},
}
FORBIDDEN_MODULES = {
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "paho",
    "typer",
    "rich",
    "yaml",
    "socket",
    "requests",
    "urllib",
}
FILE_IO_CALLS = {"open", "io.open", "os.open"}
FILE_IO_METHODS = {"read_text", "write_text", "read_bytes", "write_bytes"}


def core_files() -> list[Path]:
    files: list[Path] = []
    for part in CORE:
        path = PACKAGE / part
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def dotted(node: ast.expr) -> str | None:
    """'a.b.c' for a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


WALL_CLOCK_HOME = PACKAGE / "clock.py"
WALL_CLOCK_CLASS = "WallClock"


def violations(path: Path) -> list[str]:
    """Every impurity in one core file, as 'src/...:line: what', in line order.

    The one exemption: clock.py's ``WallClock`` class, the wall clock the edges hand to the core
    (DESIGN.md: clock.py holds the virtual and wall implementations). Nothing else may read time.
    """
    where = str(path.relative_to(PACKAGE.parents[1]))
    source = path.read_text(encoding="utf-8")
    found = violations_in(source, where, file_io_allowed=path.is_relative_to(FILE_IO_ALLOWED))
    if path == WALL_CLOCK_HOME:
        exempt = _class_lines(source, WALL_CLOCK_CLASS)
        found = [v for v in found if int(v.split(":")[1]) not in exempt]
    return found


def _class_lines(source: str, name: str) -> set[int]:
    """The line numbers of a top-level class body."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    raise AssertionError(f"class {name} not found")


def violations_in(source: str, where: str, *, file_io_allowed: bool) -> list[str]:
    """Every impurity in a module's source, sorted by line."""
    found = sorted(_walk(ast.parse(source), where, file_io_allowed), key=lambda item: item[0])
    return [text for _, text in found]


def _walk(tree: ast.AST, where: str, file_io_allowed: bool) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = dotted(node)
            if name is not None:
                for forbidden, why in FORBIDDEN_CALLS.items():
                    if name == forbidden or name.endswith("." + forbidden):
                        yield node.lineno, f"{where}:{node.lineno}: {name} {why}"
                if name.startswith("random.") and name != "random.Random":
                    yield (
                        node.lineno,
                        f"{where}:{node.lineno}: {name} is unseeded (use random.Random(seed))",
                    )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    yield node.lineno, f"{where}:{node.lineno}: imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            top = node.module.split(".")[0]
            names = {a.name for a in node.names}
            if top in FORBIDDEN_MODULES:
                yield node.lineno, f"{where}:{node.lineno}: imports from {node.module}"
            if node.module in FORBIDDEN_FROM_IMPORTS and names & FORBIDDEN_FROM_IMPORTS[node.module]:
                yield node.lineno, f"{where}:{node.lineno}: imports {sorted(names)} from {node.module}"
            if node.module == "random" and names - {"Random"}:
                yield node.lineno, f"{where}:{node.lineno}: imports unseeded randomness from random"
        if isinstance(node, ast.Call) and not file_io_allowed:
            name = dotted(node.func)
            if name in FILE_IO_CALLS:
                yield node.lineno, f"{where}:{node.lineno}: {name}() does file I/O outside library/formats"
            elif isinstance(node.func, ast.Attribute) and node.func.attr in FILE_IO_METHODS:
                yield (
                    node.lineno,
                    f"{where}:{node.lineno}: .{node.func.attr}() does file I/O outside formats",
                )


def test_wall_clock_is_the_only_exemption_and_its_time_reads_are_still_seen() -> None:
    source = WALL_CLOCK_HOME.read_text(encoding="utf-8")
    raw = violations_in(source, "clock.py", file_io_allowed=False)
    assert raw, "the walk must see WallClock's time reads (the exemption is explicit, not blind)"
    assert violations(WALL_CLOCK_HOME) == []


def test_core_files_are_found() -> None:
    names = {p.name for p in core_files()}
    assert {"errors.py", "clock.py", "units.py", "limits.py", "model.py", "check.py"} <= names


def test_core_reads_no_clock_environment_or_randomness_and_does_no_io() -> None:
    found = [v for path in core_files() for v in violations(path)]
    assert not found, "impure core code:\n" + "\n".join(found)


def test_the_checker_catches_each_kind_of_violation() -> None:
    source = (
        "import datetime, os, random, socket\n"
        "from time import monotonic\n"
        "from sqlalchemy import select\n"
        "a = datetime.datetime.now()\n"
        "b = os.environ['X']\n"
        "c = random.random()\n"
        "d = random.Random(4)\n"
        "e = open('x')\n"
        "f = path.write_text('x')\n"
    )
    found = violations_in(source, "bad.py", file_io_allowed=False)
    assert [line.split(": ", 1)[0] for line in found] == [f"bad.py:{n}" for n in (1, 2, 3, 4, 5, 6, 8, 9)]


def test_file_io_is_allowed_in_library_formats_only() -> None:
    source = "text = open('library.json').read()\n"
    assert violations_in(source, "formats/json_format.py", file_io_allowed=True) == []
    assert violations_in(source, "ders/check.py", file_io_allowed=False) != []
