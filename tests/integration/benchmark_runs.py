"""Run a script of benchmarks/ at tiny scale as its user would: its output, once it ended without error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(
    script: str, arguments: list[str], *, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()
) -> str:
    """The standard output of ``benchmarks/<script> <arguments>`` (this checkout's ``src`` on the path, the
    test's environment with ``env`` and without ``unset``); fails the test, with both outputs, when it
    exits non-zero or runs past 240 s."""
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    for name in unset:
        environment.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
