"""Set-based statements for ingest: many rows changed by one statement instead of one per row."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table, bindparam, text, update


def update_rows(
    connection: Connection,
    table: Table,
    names: Sequence[str],
    rows: Sequence[tuple[object, ...]],
    *,
    rising: str | None = None,
) -> None:
    """Set the columns ``names[1:]`` of each row of ``table`` whose key column ``names[0]`` is a row's first
    value (only where the column ``rising`` grows, when given): on PostgreSQL one ``UPDATE ... FROM
    unnest(arrays)`` (one array per column, cast to its type; the statement's text is the same whatever
    the rows, so it is prepared once), elsewhere one statement per row (SQLite has no round trips to
    save)."""
    if not rows:
        return
    key, *changed = names
    if connection.dialect.name == "postgresql":
        types = [table.c[name].type.compile(dialect=connection.dialect) for name in names]
        arrays = ", ".join(f"CAST(:a_{n} AS {t}[])" for n, t in zip(names, types, strict=True))
        guard = "" if rising is None else f" AND t.{rising} < v.{rising}"
        statement = text(
            f"UPDATE {table.name} AS t SET {', '.join(f'{n} = v.{n}' for n in changed)} "
            f"FROM unnest({arrays}) AS v({', '.join(names)}) WHERE t.{key} = v.{key}{guard}"
        )
        connection.execute(
            statement,
            {f"a_{n}": list(column) for n, column in zip(names, zip(*rows, strict=True), strict=True)},
        )
        return
    conditions = [table.c[key] == bindparam(f"b_{key}")]
    if rising is not None:
        conditions.append(table.c[rising] < bindparam(f"b_{rising}"))
    connection.execute(
        update(table).where(*conditions).values({n: bindparam(f"b_{n}") for n in changed}),
        [{f"b_{n}": value for n, value in zip(names, row, strict=True)} for row in rows],
    )
