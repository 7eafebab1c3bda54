"""`smartpump` command line: one Typer app; each area registers its commands from its own module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from smartpump import __version__
from smartpump.cli import (  # noqa: F401  (importing a module registers its commands)
    bench,
    calc,
    config,
    cqi,
    demo,
    fleet,
    hl7,
    keyring,
    library,
    library_formats,
    library_import,
    library_review,
    library_search,
    pki,
    scenario,
    server,
)
from smartpump.cli.output import err_console
from smartpump.errors import SmartpumpError

app = typer.Typer(
    name="smartpump",
    help="Open, vendor-neutral smart infusion system (not a certified medical device).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"smartpump {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Open, vendor-neutral smart infusion system (not a certified medical device)."""


calc.register(app)
library.register(app)
config.register(app)
scenario.register(app)
hl7.register(app)
cqi.register(app)
server.register(app)
fleet.register(app)
demo.register(app)
bench.register(app)
pki.register(app)


def main() -> None:
    """Console-script entry point: runs the app, turning our errors into one-line reasons."""
    try:
        app()
    except SmartpumpError as error:
        err_console.print(f"error [{error.code}]: {error.message}", markup=False, highlight=False)
        sys.exit(2)
