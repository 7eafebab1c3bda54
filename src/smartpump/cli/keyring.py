"""`smartpump keys list|add|activate|retire`: the server's keyring of per-purpose signing keys (rotation)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from smartpump.cli.library import keys_app
from smartpump.cli.output import console, emit_json, fail
from smartpump.errors import SigningKeyError
from smartpump.library.keys import KeyPurpose
from smartpump.server import keys
from smartpump.server.keys import SigningKey

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="keyring directory (default: SMARTPUMP_SIGNING_KEYS_DIR, else ./var/keys)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def _directory(given: Path | None) -> Path:
    if given is not None:
        return given
    from smartpump.cli.server import _settings

    return _settings().signing_keys_dir


def _show(rows: list[dict[str, str]], as_json: bool) -> None:
    if as_json:
        emit_json({"keys": rows})
        return
    for row in rows:
        console.print(
            f"{row['key_id']}  {row['purpose']:<13} {row['status']:<9} created {row['created_at']}",
            markup=False,
            highlight=False,
        )


def _row(key: SigningKey) -> dict[str, str]:
    return {
        "key_id": key.key_id,
        "purpose": key.purpose.value,
        "status": key.status.value,
        "created_at": key.created_at,
    }


@keys_app.command("list")
def list_keys(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List the keyring: each key's id, purpose, status (published, active, retired) and creation time."""
    try:
        rows = keys.manifest(_directory(directory))
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    _show(rows, as_json)


@keys_app.command("add")
def add_key(
    purpose: Annotated[KeyPurpose, typer.Option(help="what the key signs")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a key for a purpose: active if the purpose has none, else published (pumps learn to trust it)
    until `keys activate`."""
    try:
        key = keys.add_key(_directory(directory), purpose, datetime.now(UTC))
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    except OSError as error:
        fail(f"cannot write the keyring: {error.strerror}", code="key.unwritable")
    _show([_row(key)], as_json)


@keys_app.command("activate")
def activate_key(
    key_id: Annotated[str, typer.Argument(help="id of a published key")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a published key the signer of its purpose; the former one stays published until retired.
    Restart the server replicas to sign with it."""
    try:
        key = keys.activate(_directory(directory), key_id)
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    _show([_row(key)], as_json)


@keys_app.command("retire")
def retire_key(
    key_id: Annotated[str, typer.Argument(help="id of a key that no longer signs")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop publishing a key (pumps drop it); the active key of a purpose cannot be retired."""
    try:
        key = keys.retire(_directory(directory), key_id)
    except SigningKeyError as error:
        fail(error.message, code=error.code)
    _show([_row(key)], as_json)
