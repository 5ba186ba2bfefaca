"""``autolog db``: commands on a whole store (``autolog db copy SRC DST``)."""

from __future__ import annotations

import click

from autolog.errors import AutologError


@click.group("db")
def db_group() -> None:
    """Copy a whole store (e.g. a SQLite folder into PostgreSQL)."""


@db_group.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option("--no-artifacts", is_flag=True, help="Copy the database rows only.")
def copy_command(src: str, dst: str, no_artifacts: bool) -> None:
    """Copy every experiment, run (ids kept), param, metric point, tag, model record and the
    registry from the store SRC into the empty store DST, artifacts included, and check the
    counts. SRC and DST are tracking URIs: a folder, sqlite:///file.db,
    postgresql://user:pass@host:5432/db (add ?artifact_root=s3://bucket/prefix or a folder)."""
    import sys

    from store.base import open_store
    from store.copy import copy_store

    try:
        source, target = open_store(src), open_store(dst)
        copied = copy_store(source, target, not no_artifacts, lambda line: click.echo(line))
    except AutologError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    total = sum(n for t, n in copied.items() if t != "artifact files")
    click.echo(
        f"Copied {total} rows and {copied.get('artifact files', 0)} artifact files "
        f"from {source.location} to {target.location}; counts match."
    )
    source.close()
    target.close()
