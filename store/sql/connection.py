"""The SQL the stores write, run on PostgreSQL: a translator and a sqlite3-shaped connection.

The SQLite store's mixins (values, models, registry, histories) write their SQL once, in
SQLite's words, against a ``sqlite3.Connection``-like object (``execute``, ``executemany``,
``fetchone``/``fetchall``/iteration, ``rowcount``, ``lastrowid``). The PostgreSQL store hands
them :class:`PgConnection`, which runs each statement through :func:`translate`:

* ``?`` marks become ``%s`` (and a literal ``%`` becomes ``%%``); ``%s`` marks written by the
  search compiler for :data:`store.sql.dialect.POSTGRESQL` pass through;
* ``INSERT OR REPLACE INTO t`` becomes ``INSERT ... ON CONFLICT (<t's primary key>) DO UPDATE``
  of the other columns, ``INSERT OR IGNORE`` becomes ``ON CONFLICT DO NOTHING``;
* ``rowid`` becomes ``ctid`` (a row's physical address: stable while the row is not updated,
  which is all the stores use it for between two reads);
* an ``INSERT`` into a table with an identity column returns it, for ``lastrowid``.

Anything else must already be SQL both databases accept (see docs/postgres.md, "Writing a
migration" for the rules). Translations are cached per statement text and table layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["PgConnection", "Rows", "TableInfo", "translate"]


@dataclass(frozen=True)
class TableInfo:
    """What the translator needs to know of a table: its columns in order, its primary key,
    and its identity column (None when it has none)."""

    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    identity: str | None = None


_INSERT = re.compile(
    r"^\s*INSERT\s+(?:OR\s+(REPLACE|IGNORE)\s+)?INTO\s+(\w+)\s*(\(([^)]*)\))?", re.IGNORECASE
)
_ROWID = re.compile(r"\browid\b", re.IGNORECASE)


def _marks(sql: str) -> str:
    """``?`` -> ``%s``, a lone ``%`` -> ``%%``, everywhere (also in quoted literals, where
    psycopg would read a ``%`` too); ``%s`` marks stay."""
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(sql):
        ch = sql[i]
        if ch == "'":
            quoted = not quoted
            out.append(ch)
        elif ch == "?" and not quoted:
            out.append("%s")
        elif ch == "%":
            if not quoted and sql[i + 1 : i + 2] == "s":
                out.append("%s")
                i += 1
            else:
                out.append("%%")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _conflict_clause(verb: str, table: TableInfo, columns: Sequence[str]) -> str:
    if verb == "IGNORE" or not table.primary_key:
        return " ON CONFLICT DO NOTHING"
    updates = [c for c in columns if c not in table.primary_key]
    if not updates:
        return f" ON CONFLICT ({', '.join(table.primary_key)}) DO NOTHING"
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in updates)
    return f" ON CONFLICT ({', '.join(table.primary_key)}) DO UPDATE SET {sets}"


@lru_cache(maxsize=2048)
def translate(
    sql: str, tables: tuple[tuple[str, TableInfo], ...], returning: bool = False
) -> tuple[str, str | None]:
    """(PostgreSQL text of sql, the column it returns for lastrowid or None).

    :param tables: table name -> layout, as a hashable tuple of pairs.
    :param returning: add ``RETURNING <identity>`` to an INSERT into a table with one.
    """
    layout = dict(tables)
    text = _ROWID.sub("ctid", sql)
    returned = None
    m = _INSERT.match(text)
    if m:
        verb, name, columns_text = (m.group(1) or "").upper(), m.group(2), m.group(4)
        info = layout.get(name.lower())
        if verb:
            if info is None:
                raise ValueError(f"INSERT OR {verb} INTO {name}: no such table in the database")
            columns = [c.strip() for c in columns_text.split(",")] if columns_text else info.columns
            text = f"INSERT INTO {name} {text[m.end(2) :].lstrip()}"
            text = text.rstrip().rstrip(";") + _conflict_clause(verb, info, columns)
        if returning and info is not None and info.identity and "RETURNING" not in text.upper():
            text = text.rstrip().rstrip(";") + f" RETURNING {info.identity}"
            returned = info.identity
    return _marks(text), returned


class Rows:
    """The rows of one statement, fetched at once (the connection went back to its pool)."""

    def __init__(self, rows: list[tuple], rowcount: int, lastrowid: Any = None):
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> tuple | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.fetchall())


_ROWS_PER_INSERT = 1000  # a statement takes at most 65,535 parameters
_PLAIN_VALUES = re.compile(
    r"^(\s*INSERT\s+INTO\s+\w+\s*(?:\([^)]*\))?\s*VALUES\s*)\(((?:\s*%s\s*,)*\s*%s\s*)\)"
    r"(\s+ON\s+CONFLICT\s+DO\s+NOTHING)?\s*;?\s*$",
    re.IGNORECASE,
)


@lru_cache(maxsize=512)
def _multi_row(text: str) -> tuple[str | None, int, str]:
    """(the statement's ``INSERT INTO t (...) VALUES `` head, its number of marks) when it may
    take many rows in one statement: a plain insert, or one that ignores conflicts (one that
    updates on conflict may not meet the same key twice in a statement), and what follows the
    values (its ON CONFLICT clause); else (None, 0, "").

    Many rows in one INSERT instead of psycopg's executemany (one Bind/Execute per row): a
    log-batch of 100 metric points is one statement for the server to plan and run.
    """
    m = _PLAIN_VALUES.match(text)
    if m is None:
        return None, 0, ""
    return m.group(1), m.group(2).count("%s"), m.group(3) or ""


@lru_cache(maxsize=512)
def _values(width: int, n: int, tail: str = "") -> str:
    """``n`` rows of ``width`` marks in PostgreSQL's own numbering (``($1, $2), ($3, $4)``)."""
    marks = [f"${i}" for i in range(1, width * n + 1)]
    rows = ("(" + ", ".join(marks[i : i + width]) + ")" for i in range(0, len(marks), width))
    return ", ".join(rows) + tail


_PYFORMAT = re.compile(r"%%|%s")


@lru_cache(maxsize=2048)
def _numbered(text: str) -> str:
    """psycopg's marks (``%s``, ``%%`` for a literal ``%``) as PostgreSQL's (``$1``, ``%``).

    Statements run through a raw cursor, which sends the text as it is: psycopg's own cursor
    parses the text for its marks on every call once a statement has more than 50 parameters
    (its cache stops there), and for a 100-point log-batch that parse was a fifth of the
    server's CPU (py-spy, the load test of benchmarks/server_load_pg.py, 2026-12-06).
    """
    n = 0

    def mark(m: re.Match[str]) -> str:
        nonlocal n
        if m.group(0) == "%%":
            return "%"
        n += 1
        return f"${n}"

    return _PYFORMAT.sub(mark, text)


class PgConnection:
    """A psycopg connection that takes the stores' SQLite-worded SQL (see the module's doc)."""

    def __init__(self, conn: Any, tables: tuple[tuple[str, TableInfo], ...]):
        from psycopg import RawCursor  # psycopg is optional: imported once a store opens

        self.raw = conn
        self.tables = tables
        self._cursor = RawCursor

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Rows:
        text, returned = translate(sql, self.tables, returning=True)
        with self._cursor(self.raw) as cur:
            cur.execute(_numbered(text), list(params) if params is not None else None)
            rows = cur.fetchall() if cur.description is not None else []
            count = cur.rowcount  # a closed cursor forgets it
        lastrowid = rows[0][0] if returned and rows else None
        return Rows([tuple(r) for r in rows], count, lastrowid)

    def executemany(self, sql: str, seq: Any) -> Rows:
        rows = [list(r) for r in seq]
        if not rows:
            return Rows([], 0)
        text, _ = translate(sql, self.tables)
        head, width, tail = _multi_row(text)
        with self._cursor(self.raw) as cur:
            if head is None or len(rows) < 2 or any(len(r) != width for r in rows):
                cur.executemany(_numbered(text), rows)
                return Rows([], cur.rowcount)
            count = 0
            for lo in range(0, len(rows), _ROWS_PER_INSERT):
                part = rows[lo : lo + _ROWS_PER_INSERT]
                cur.execute(head + _values(width, len(part), tail), [v for r in part for v in r])
                count += cur.rowcount
            return Rows([], count)


def load_tables(conn: Any) -> tuple[tuple[str, TableInfo], ...]:
    """The layout of every table of the connection's current schema."""
    columns: dict[str, list[str]] = {}
    identity: dict[str, str] = {}
    for table, column, is_identity in conn.execute(
        "SELECT table_name, column_name, is_identity FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        columns.setdefault(table, []).append(column)
        if is_identity == "YES":
            identity[table] = column
    keys: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
        "AND kcu.table_schema = tc.table_schema AND kcu.table_name = tc.table_name "
        "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema() "
        "ORDER BY tc.table_name, kcu.ordinal_position"
    ):
        keys.setdefault(table, []).append(column)
    return tuple(
        sorted(
            (t, TableInfo(tuple(cols), tuple(keys.get(t, ())), identity.get(t)))
            for t, cols in columns.items()
        )
    )
