"""Copy one SQL store into another (``autolog db copy SRC DST``): SQLite into PostgreSQL, back,
or between any two stores of the shared schema, artifacts included.

Every table both stores have is copied row by row with its keys (experiment and run ids, version
numbers, model digests), in the order of their foreign keys; all metric points, not only the
latest. The destination must hold no runs yet (a fresh database: its default experiment is
overwritten by the source's). Artifacts are copied run by run through the stores' artifact
methods, so either side may keep them in a folder or in S3. At the end the rows of every table
are counted on both sides and must agree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from store.artifacts.local import PARTIAL_PREFIX, TEMP_PREFIX
from store.errors import StoreError

# Parents before children; tables added by later migrations follow in name order.
_ORDER = (
    "experiments",
    "experiment_tags",
    "runs",
    "params",
    "tags",
    "metrics",
    "latest_metrics",
    "models",
    "model_files",
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
)
_NOT_COPIED = {"autolog_schema_version", "sqlite_stat1", "sqlite_sequence"}
_BATCH = 5000


def _tables(store: Any) -> dict[str, list[str]]:
    """table -> its columns, of a SQLite or PostgreSQL store."""
    if store.dialect.name == "postgresql":
        store.conn  # noqa: B018  (connects and migrates)
        return {name: list(info.columns) for name, info in store.tables}
    names = [
        r[0]
        for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith("sqlite_")
    ]
    return {n: [r[1] for r in store.conn.execute(f"PRAGMA table_info({n})")] for n in names}


def _rows(store: Any, table: str, columns: list[str]) -> Iterator[list[tuple]]:
    """The rows of a table in batches, without holding the whole table in memory."""
    sql = f"SELECT {', '.join(columns)} FROM {table}"
    if store.dialect.name == "postgresql":
        with store.pool.connection() as raw, raw.transaction(), raw.cursor(name="copy") as cur:
            cur.execute(sql)
            while batch := cur.fetchmany(_BATCH):
                yield [tuple(r) for r in batch]
        return
    cur = store.conn.execute(sql)
    while batch := cur.fetchmany(_BATCH):
        yield batch


def _count(store: Any, table: str) -> int:
    return int(store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def copy_store(
    src: Any, dst: Any, artifacts: bool = True, progress: Callable[[str], None] = lambda _: None
) -> dict[str, int]:
    """Copy every row (and the artifacts) of src into dst; return table -> rows copied.

    :raises StoreError: dst already holds runs, or the counts disagree afterwards.
    """
    if _count(dst, "runs"):
        raise StoreError(
            f"The destination {dst.location} already holds {_count(dst, 'runs')} runs; copy into "
            "a fresh, empty database."
        )
    src_tables, dst_tables = _tables(src), _tables(dst)
    names = [t for t in _ORDER if t in src_tables and t in dst_tables]
    names += sorted(set(src_tables) & set(dst_tables) - set(names) - _NOT_COPIED)
    copied: dict[str, int] = {}
    for table in names:
        columns = [c for c in src_tables[table] if c in dst_tables[table]]
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        if table == "metrics":  # no key to replace on; dst holds no runs, so none there
            sql = sql.replace("INSERT OR REPLACE", "INSERT")
        n = 0
        for batch in _rows(src, table, columns):
            dst._transaction(lambda c, b=batch, q=sql: c.executemany(q, b))
            n += len(batch)
        copied[table] = n
        progress(f"{table}: {n} rows")
    if dst.dialect.name == "postgresql":
        _advance_identities(dst)
    if artifacts:
        copied["artifact files"] = _copy_artifacts(src, dst, progress)
    for table in names:
        got, want = _count(dst, table), _count(src, table)
        if got != want:
            raise StoreError(
                f"Copy check failed: {table} has {want} rows in the source, {got} here."
            )
    return copied


def _advance_identities(dst: Any) -> None:
    """Identity columns continue after the copied ids (they were given explicitly)."""
    for table, info in dst.tables:
        if info.identity:
            dst._transaction(
                lambda c, t=table, col=info.identity: c.execute(
                    f"SELECT setval(pg_get_serial_sequence('{t}', '{col}'), "
                    f"GREATEST(COALESCE(MAX({col}), 0), 1)) FROM {t}"
                )
            )


def _copy_artifacts(src: Any, dst: Any, progress: Callable[[str], None]) -> int:
    files = 0
    run_ids = [r[0] for r in src.conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
    for run_id in run_ids:
        folder = Path(src.artifact_local_path(run_id))
        if not folder.is_dir():
            continue
        for top, dirs, names in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith((PARTIAL_PREFIX, TEMP_PREFIX))]
            rel = os.path.relpath(top, folder).replace(os.sep, "/")
            for name in names:
                if name.startswith((PARTIAL_PREFIX, TEMP_PREFIX)) or os.path.islink(
                    os.path.join(top, name)
                ):
                    continue
                dst.log_artifact(run_id, os.path.join(top, name), None if rel == "." else rel)
                files += 1
    progress(f"artifacts: {files} files of {len(run_ids)} runs")
    return files
