"""`smartpump config show|defaults`: check a pump configuration document offline and print its settings, or
print a model's factory settings (the pure core only: no server, no key)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from smartpump.cli.output import console, emit_json, err_console, fail
from smartpump.errors import ConfigurationError, LibraryFormatError
from smartpump.library.formats import json_format
from smartpump.pump.capabilities import PumpModel
from smartpump.pump.configuration import PumpConfiguration, content_sha256, factory_settings
from smartpump.pump.configuration_guide import SETTING_GUIDE, shown_value

config_app = typer.Typer(
    help="Pump configurations: check a configuration document, print a model's factory settings.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")]


def register(app: typer.Typer) -> None:
    """Attach the config command group to the main app."""
    app.add_typer(config_app, name="config")


def _model(text: str) -> PumpModel:
    """A pump model by its id (``lvp-4``) or its short name (``lvp``), or exit 2 naming the known ones."""
    for model in PumpModel:
        if text.lower() in (model.value, model.name.lower()):
            return model
    known = ", ".join(f"{m.value} ({m.name.lower()})" for m in PumpModel)
    fail(f"unknown pump model {text!r} (known: {known})", code="configuration.model")


def _read(path: Path) -> PumpConfiguration:
    """The configuration in a JSON file (numbers read exactly), or exit 2 with one line per problem."""
    if not path.is_file():
        fail(f"no such file: {path}", code="cli.no_file")
    try:
        raw = json_format.parse_json(path.read_text(encoding="utf-8"), what=str(path))
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text", code="configuration.unreadable")
    except LibraryFormatError as error:
        fail(error.message, code="configuration.unreadable")
    try:
        return PumpConfiguration.from_dict(raw)
    except ConfigurationError as error:
        for field, reason in error.problems:
            err_console.print(f"  {field}: {reason}", markup=False, highlight=False, soft_wrap=True)
        count = len(error.problems)
        fail(
            f"{path} is not a valid pump configuration ({count} problem{'s' if count != 1 else ''})",
            code=error.code,
        )


def _settings_table(title: str, model: PumpModel, settings: dict[str, Any]) -> Table:
    factory = factory_settings(model).to_dict()
    table = Table(title=title)
    for column in ("setting", "value", "unit", "factory", "meaning"):
        table.add_column(column, no_wrap=column != "meaning")
    for guide in SETTING_GUIDE:
        table.add_row(
            guide.key,
            shown_value(settings[guide.key]),
            guide.unit,
            shown_value(factory[guide.key]),
            guide.meaning,
        )
    return table


@config_app.command("show")
def show_command(
    file: Annotated[Path, typer.Argument(help="Configuration document (smartpump.pump-configuration/1).")],
    as_json: JsonOpt = False,
) -> None:
    """Check a configuration document and print its settings beside the model's factory values (exit 2 with
    one line per problem when it is not valid)."""
    configuration = _read(file)
    digest = content_sha256(configuration)
    if as_json:
        emit_json({**configuration.to_dict(), "content_sha256": digest})
        return
    title = (
        f"{configuration.name} — {configuration.model.value} v{configuration.version} "
        f"(hospital {configuration.hospital_id})"
    )
    console.print(_settings_table(title, configuration.model, configuration.settings.to_dict()))
    console.print(f"valid; content sha256 {digest}", markup=False, highlight=False, soft_wrap=True)


@config_app.command("defaults")
def defaults_command(
    model: Annotated[str, typer.Option("--model", help="Pump model: lvp-4, syringe-1, pca-1, ambulatory-1.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Wrap the settings with the model and version 0 for scripts.")
    ] = False,
) -> None:
    """Print a model's factory settings (configuration version 0): the JSON ``settings`` of a document."""
    chosen = _model(model)
    settings = factory_settings(chosen).to_dict()
    payload = {"model": chosen.value, "version": 0, "settings": settings} if as_json else settings
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")
