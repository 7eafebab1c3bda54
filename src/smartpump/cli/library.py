"""`smartpump library ...` and `smartpump keys ...`: the drug-library commands."""

from __future__ import annotations

import typer

library_app = typer.Typer(
    help="Drug library: show, schema, import/export, lint, diff, sign, verify.", no_args_is_help=True
)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the library and keys command groups to the main app."""
    app.add_typer(library_app, name="library")
    app.add_typer(keys_app, name="keys")
