"""`smartpump demo`'s lock: a second demo on a data directory is refused while the first runs (exit 3)
and nothing of the first is wiped; a lock left by a process that is gone is taken over."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from smartpump.cli import demo

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    demo.register(app)
    app.command("noop")(lambda: None)
    return app


@pytest.fixture
def live_process() -> Iterator[int]:
    """The PID of a live process that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_a_second_demo_is_refused_while_the_first_runs_and_its_data_stays(
    tmp_path: Path, live_process: int
) -> None:
    data = tmp_path / "demo"
    data.mkdir()
    (data / demo.LOCK_FILE).write_text(f"{live_process}\n")
    (data / "demo.db").write_text("the running demo's database")
    result = runner.invoke(_app(), ["demo", "--data-dir", str(data), "--port", "8999"])
    assert result.exit_code == 3
    assert "demo.running" in result.output and f"PID {live_process}" in result.output
    assert (data / "demo.db").read_text() == "the running demo's database"
    assert (data / demo.LOCK_FILE).read_text().strip() == str(live_process)


def test_a_lock_left_by_a_finished_process_is_taken_over_and_released(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True
    )
    data = tmp_path / "demo"
    data.mkdir()
    lock_file = data / demo.LOCK_FILE
    lock_file.write_text(finished.stdout.decode())
    lock = demo.acquire_lock(data)
    assert lock == lock_file and lock.read_text().strip() == str(os.getpid())
    demo.release_lock(lock)
    assert not lock.exists()


def test_the_lock_of_another_live_process_is_never_released_by_us(tmp_path: Path, live_process: int) -> None:
    lock = tmp_path / demo.LOCK_FILE
    lock.write_text(f"{live_process}\n")
    demo.release_lock(lock)
    assert lock.read_text().strip() == str(live_process)
