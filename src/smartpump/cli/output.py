"""Shared CLI output: JSON for scripts, Rich for people, one-line failures with a code.

Output never depends on where it is read: text lines are never wrapped (``soft_wrap``), and tables fit
the terminal only when writing to one; into a pipe, a file or a test runner they get a fixed wide page,
whatever ``COLUMNS`` or the terminal that launched the process says.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Final, NoReturn

import typer
from rich.console import Console, ConsoleDimensions

PAGE_WIDTH: Final = 240
PAGE_HEIGHT: Final = 25


class CliConsole(Console):
    """A Rich console sized by the terminal only when it writes to one, else by a fixed page."""

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size on a terminal; ``PAGE_WIDTH`` x ``PAGE_HEIGHT`` anywhere else."""
        if self.is_terminal:
            return super().size
        return ConsoleDimensions(PAGE_WIDTH, PAGE_HEIGHT)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self.width, self.height = new_size


console = CliConsole(soft_wrap=True)
err_console = CliConsole(stderr=True, soft_wrap=True)


def jsonable(value: Any) -> Any:
    """Dataclasses, named tuples, Decimals, enums and tuples as plain JSON values (Decimal -> number)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in asdict(value).items() if not k.startswith("_")}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: jsonable(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def emit_json(payload: Any) -> None:
    """Print a JSON document on stdout (the machine-readable output of ``--json``)."""
    sys.stdout.write(json.dumps(jsonable(payload), indent=2, ensure_ascii=False) + "\n")


def fail(message: str, *, code: str = "cli.invalid", exit_code: int = 2) -> NoReturn:
    """Print a one-line reason with its code on stderr and exit non-zero (never a traceback)."""
    err_console.print(f"error [{code}]: {message}", markup=False, highlight=False)
    raise typer.Exit(exit_code)
