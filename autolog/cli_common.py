"""What every ``autolog`` subcommand shares: opening the store (never creating one), run-id
prefixes, formatting, and tables fitted to the terminal."""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from autolog.errors import AutologError, RunNotFoundError

STATUS_COLOURS = {"FINISHED": "green", "FAILED": "red", "KILLED": "red", "RUNNING": "yellow"}


def fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Library errors become one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AutologError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return inner


def store_uri(ctx: click.Context) -> str:
    from autolog.tracking import Client

    return Client(ctx.obj.get("store")).tracking_uri


def client(ctx: click.Context) -> Any:
    """A Client over the store that --store names; an error (nothing created) when it is missing."""
    from autolog.tracking import Client
    from store.base import open_store

    uri = store_uri(ctx)
    open_store(uri, create=False)  # raises StoreNotFoundError naming nearby stores
    return Client(uri)


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless n is 1: "1 experiment", "3 registered models"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def store_label(c: Any) -> str:
    """The store a command read, as the user would pass it back with --store."""
    db = getattr(c.store, "db_path", None)
    return str(db) if db is not None else c.tracking_uri


def resolve_run_id(c: Any, given: str) -> str:
    """The full id of the run whose id starts with ``given`` (any run, deleted ones included)."""
    if len(given) == 32:
        return given
    if not given or not all(ch in "0123456789abcdef" for ch in given.lower()):
        raise RunNotFoundError(f"Run id {given!r} is not a run id or a prefix of one (hex digits).")
    found = c.search_runs(
        experiment_ids=None,
        filter_string=f"attributes.run_id LIKE '{given.lower()}%'",
        run_view_type="ALL",
        max_results=3,
    )
    if not found:
        raise RunNotFoundError(f"No run id starts with {given!r} in {store_label(c)}.")
    if len(found) > 1:
        ids = ", ".join(r.info.run_id for r in found)
        raise RunNotFoundError(f"Run id prefix {given!r} is ambiguous ({ids}); give more digits.")
    return str(found[0].info.run_id)


def fmt_time(ms: int | None) -> str:
    if not ms:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start: int | None, end: int | None) -> str:
    if not start or not end:
        return "-"
    secs = (end - start) / 1000
    return f"{secs:.1f}s" if secs < 120 else f"{secs / 60:.1f}m"


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.6g}"
    return str(v)


def first_line(text: str | None, width: int = 50) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def terminal_width() -> int | None:
    """Columns to fit tables into: the terminal's, or $COLUMNS; None when output is piped
    (a pipe gets whole values, for grep and awk)."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _fit(widths: list[int], mins: list[int], limit: int) -> list[int]:
    widths = list(widths)
    excess = sum(widths) + 2 * (len(widths) - 1) - limit
    while excess > 0:
        # take one character at a time from the widest column that can still give one
        candidates = [i for i, w in enumerate(widths) if w > mins[i]]
        if not candidates:
            break
        i = max(candidates, key=lambda j: widths[j] - mins[j])
        widths[i] -= 1
        excess -= 1
    return widths


def _cut(text: str, width: int, exact: bool) -> str:
    if len(text) <= width:
        return text
    return text[:width] if exact else text[: max(width - 1, 0)] + "…"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    id_columns: Sequence[int] = (0,),
    styles: dict[int, Callable[[str], str]] | None = None,
    whole: Sequence[int] = (),
) -> str:
    """An aligned table, fitted to the terminal: long cells end in '…'; id columns are cut to
    8 characters without a mark (every command accepts run-id prefixes); ``whole`` columns
    (a status) are never cut."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    limit = terminal_width()
    hidden: list[str] = []
    if limit is not None:
        mins = [
            w if i in whole else 8 if i in id_columns else min(w, 5) for i, w in enumerate(widths)
        ]
        # even at their narrowest the columns overflow: the last ones go, and a line says so
        while len(mins) > 1 and sum(mins) + 2 * (len(mins) - 1) > limit:
            hidden.insert(0, headers[len(mins) - 1] or "-")
            mins, widths = mins[:-1], widths[:-1]
        widths = _fit(widths, mins, limit)
    styles = styles or {}

    def line(cells: Sequence[str], header: bool) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths)):
            text = _cut(c, w, i in id_columns).ljust(w)
            if header:
                text = click.style(text, bold=True)
            elif i in styles:
                text = styles[i](text)
            out.append(text)
        return "  ".join(out).rstrip()

    out = [line(headers, True), "  ".join("-" * w for w in widths)]
    out += [line(row, False) for row in rows]
    if hidden:
        out.append(
            f"({counted(len(hidden), 'more column')} not shown: {', '.join(hidden)}; widen the "
            "terminal to see them)"
        )
    return "\n".join(out)


def status_style(text: str) -> str:
    colour = STATUS_COLOURS.get(text.strip())
    return click.style(text, fg=colour) if colour else text
