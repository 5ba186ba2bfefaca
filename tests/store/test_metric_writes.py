"""How metric points are written: in multi-row INSERT statements on SQLite
(store.sqlite_values.insert_rows), every row in its order whatever the count, a bad batch refused
with nothing written; and into a table without a foreign key to runs (migration 9), a batch for
an unknown run still refused whole."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store.base import open_store
from store.errors import InvalidValueError, RunNotFoundError
from store.sql.schema import drop_sqlite_foreign_keys
from store.sqlite_values import _values_sql, insert_rows


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 255, 1000, 1003])
def test_every_row_goes_in_once_in_its_order(n: int) -> None:
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE t (a TEXT, b INTEGER, c REAL)")
    rows = [(f"k{i % 3}", n - i, i / 2) for i in range(n)]
    insert_rows(c, "INSERT INTO t", rows)
    assert c.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == rows


def test_a_few_statement_shapes_serve_every_count() -> None:
    _values_sql.cache_clear()
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE t (a INTEGER)")
    for n in range(300):
        insert_rows(c, "INSERT INTO t", [(i,) for i in range(n)])
    # 128, 64, 32, 16 and 8 rows, and one row for the last few
    assert _values_sql.cache_info().currsize == 6
    assert c.execute("SELECT count(*) FROM t").fetchone()[0] == sum(range(300))


def _open(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if backend == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'a.db'}")
    uri = request.getfixturevalue("postgres_uri")  # a throwaway PostgreSQL (tests/conftest.py)
    return open_store(f"{uri}?artifact_root={tmp_path / 'artifacts'}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_batch_of_points_reads_back_exactly_and_a_bad_one_writes_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = _open(backend, tmp_path, request)
    rid = store.create_run("0").info.run_id
    points = [("m", float(i) if i % 97 else math.nan, 1_700_000_000_000 + i, i // 2)
              for i in range(1003)]  # fmt: skip
    store.log_batch(rid, metrics=points)
    got = [(m.key, m.value, m.timestamp, m.step) for m in store.get_metric_history(rid, "m")]
    assert len(got) == 1003
    for (k, v, ts, step), (k2, v2, ts2, step2) in zip(got, points, strict=True):
        assert (k, ts, step) == (k2, ts2, step2)
        assert v == v2 or (math.isnan(v) and math.isnan(v2))
    late = [("late", 1.0, 5, i) for i in range(300)] + [("late", 2.0, 5, 2**70)]
    with pytest.raises(InvalidValueError, match="1180591620717411303424"):
        store.log_batch(rid, metrics=late)
    assert store.get_metric_history(rid, "late") == []
    assert store.get_run(rid).data.metrics == {"m": 1002.0}


def _stored(store: object, sql: str, args: list[object]) -> list[tuple[object, ...]]:
    read = store._transaction  # type: ignore[attr-defined]  # either backend's connection
    return [tuple(r) for r in read(lambda c: c.execute(sql, args).fetchall())]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_points_have_no_foreign_key_yet_a_batch_for_an_unknown_run_leaves_no_row(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = _open(backend, tmp_path, request)
    if backend == "sqlite":
        fks = "SELECT count(*) FROM pragma_foreign_key_list(?)"
    else:
        fks = (
            "SELECT count(*) FROM pg_constraint WHERE conrelid = CAST(? AS regclass) "
            "AND contype = 'f'"
        )
    rid = store.create_run("0").info.run_id
    assert _stored(store, fks, ["metrics"]) == [(0,)]
    assert _stored(store, fks, ["latest_metrics"]) == [(1,)]
    points = [("m", float(i), 5, i) for i in range(300)]
    with pytest.raises(RunNotFoundError, match="not-a-run"):
        store.log_batch("not-a-run", metrics=points)
    assert _stored(store, "SELECT count(*) FROM metrics WHERE run_id = ?", ["not-a-run"]) == [(0,)]
    store.log_batch(rid, metrics=points)
    assert [m.value for m in store.get_metric_history(rid, "m")] == [float(i) for i in range(300)]


def test_a_store_made_before_migration_9_loses_the_key_and_keeps_its_points(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    store = open_store(f"sqlite:///{path}")
    rid = store.create_run("0").info.run_id
    store.log_batch(rid, metrics=[("m", float(i), 7, i) for i in range(50)])
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)  # back to schema 8: the key as it was
    old = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'metrics'").fetchone()[0]
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = ? WHERE name = 'metrics'",
        [old.replace('"run_id" TEXT', '"run_id" TEXT REFERENCES "runs"("run_id")')],
    )
    conn.execute("PRAGMA writable_schema = OFF")
    conn.execute(f"PRAGMA schema_version = {version + 1}")
    conn.execute("PRAGMA user_version = 8")
    conn.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM pragma_foreign_key_list('metrics')").fetchone() == (
        1,
    )
    conn.close()

    store = open_store(f"sqlite:///{path}")
    assert [m.step for m in store.get_metric_history(rid, "m")] == list(range(50))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (9,)
    assert conn.execute("SELECT count(*) FROM pragma_foreign_key_list('metrics')").fetchone() == (
        0,
    )
    assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'metrics'").fetchone() == (old,)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_dropping_a_key_leaves_rows_indexes_and_other_constraints() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE p (id TEXT PRIMARY KEY)")
    conn.execute(
        'CREATE TABLE c ("pid" TEXT REFERENCES "p"("id") ON DELETE CASCADE, v REAL NOT NULL, '
        "CHECK (v >= 0))"
    )
    conn.execute("CREATE INDEX ci ON c (pid, v)")
    conn.execute("INSERT INTO p VALUES ('a')")
    conn.executemany("INSERT INTO c VALUES ('a', ?)", [(float(i),) for i in range(10)])
    conn.execute("BEGIN")
    drop_sqlite_foreign_keys(conn, "c")
    conn.execute("COMMIT")
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'c'").fetchone()[0]
    assert sql == 'CREATE TABLE c ("pid" TEXT, v REAL NOT NULL, CHECK (v >= 0))'
    conn.execute("INSERT INTO c VALUES ('elsewhere', 1.0)")  # no key any more
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO c VALUES ('a', -1.0)")  # the check stays
    assert conn.execute("SELECT count(*) FROM c INDEXED BY ci WHERE pid = 'a'").fetchone() == (10,)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
