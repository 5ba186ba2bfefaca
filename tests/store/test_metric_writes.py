"""How metric points are written: in multi-row INSERT statements on SQLite
(store.sqlite_points.insert_rows), every row in its order whatever the count, a bad batch refused
with nothing written; into a table without a foreign key to runs (migration 9), a batch for an
unknown run still refused whole; keyed by the run's integer key (migration 10), with every
point kept, equal ones too."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from store.base import open_store
from store.errors import InvalidValueError, RunNotFoundError
from store.sql.schema import MIGRATIONS, drop_sqlite_foreign_keys
from store.sqlite_points import HISTORY_ORDER, RUN_KEY, _upsert_sql, _values_sql, insert_rows


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
    # 128, 64, 32, 16, 8, 4, 2 and 1 rows
    assert _values_sql.cache_info().currsize == 8
    assert c.execute("SELECT count(*) FROM t").fetchone()[0] == sum(range(300))


def _open(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if backend == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'a.db'}")
    uri = request.getfixturevalue("postgres_uri")  # a throwaway PostgreSQL (tests/conftest.py)
    return open_store(f"{uri}?artifact_root={tmp_path / 'artifacts'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh store on each backend."""
    return _open(request.param, tmp_path, request)


def test_a_batch_of_points_reads_back_exactly_and_a_bad_one_writes_nothing(store: Any) -> None:
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


def test_points_have_no_foreign_key_yet_a_batch_for_an_unknown_run_leaves_no_row(
    store: Any,
) -> None:
    if store.dialect.name == "sqlite":
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
    assert _stored(store, "SELECT count(*) FROM metrics", []) == [(0,)]
    store.log_batch(rid, metrics=points)
    assert [m.value for m in store.get_metric_history(rid, "m")] == [float(i) for i in range(300)]


@contextmanager
def _schema(version: int) -> Iterator[None]:
    """Stores opened inside are made (or migrated) only up to schema ``version``."""
    later = MIGRATIONS[version:]
    del MIGRATIONS[version:]
    try:
        yield
    finally:
        MIGRATIONS.extend(later)


def _old_points(store: Any, rows: list[tuple[Any, ...]]) -> None:
    """(run_id, key, value, timestamp, step) rows into a store made before migration 10, with
    the latest point of each key of an existing run, as that schema's stores wrote them."""

    def write(c: Any) -> None:
        c.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
        runs = {r[0] for r in c.execute("SELECT run_id FROM runs").fetchall()}
        ordered = sorted((r for r in rows if r[0] in runs), key=lambda r: (r[4], r[3]))
        latest = {(r[0], r[1]): r for r in ordered}
        c.executemany("INSERT INTO latest_metrics VALUES (?, ?, ?, ?, ?)", list(latest.values()))

    store._transaction(write)


def test_a_store_made_before_migration_9_loses_the_key_and_keeps_its_points(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    with _schema(8):
        store = open_store(f"sqlite:///{path}")
        rid = store.create_run("0").info.run_id
        _old_points(store, [(rid, "m", float(i), 7, i) for i in range(50)])
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM pragma_foreign_key_list('metrics')").fetchone() == (
        1,
    )
    conn.close()

    store = open_store(f"sqlite:///{path}")
    assert [m.step for m in store.get_metric_history(rid, "m")] == list(range(50))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    assert conn.execute("SELECT count(*) FROM pragma_foreign_key_list('metrics')").fetchone() == (
        0,
    )
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_10_moves_every_point_to_the_run_keyed_table(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with _schema(9):
        store = _open(backend, tmp_path, request)
        a, b = (store.create_run("0").info.run_id for _ in range(2))
        old = [
            (a, "loss", 3.0, 10, 0),
            (a, "loss", 3.0, 10, 0),  # the same point twice
            (a, "loss", 1.0, 10, 0),  # same step and time, another value
            (a, "loss", None, 11, 1),  # NaN
            (a, "acc", 0.5, 10, 0),
            (b, "loss", 7.0, 12, 2),
            ("gone", "loss", 1.0, 1, 1),  # a point of no run: nothing can read it
        ]
        _old_points(store, old)
        store.close()
    store = _open(backend, tmp_path, request)
    assert store.schema_version == len(MIGRATIONS) == 10

    def history(rid: str, key: str) -> list[tuple[int, int, float]]:
        return [(m.step, m.timestamp, m.value) for m in store.get_metric_history(rid, key)]

    # equal in step and time, the moved points keep the old table's order (by value)
    assert str(history(a, "loss")) == str(
        [(0, 10, 1.0), (0, 10, 3.0), (0, 10, 3.0), (1, 11, math.nan)]
    )
    assert history(a, "acc") == [(0, 10, 0.5)]
    assert history(b, "loss") == [(2, 12, 7.0)]
    assert store.get_run(a).data.metrics["acc"] == 0.5
    keys = dict(_stored(store, "SELECT run_id, run_key FROM runs", []))
    assert sorted(keys.values()) == [1, 2]
    assert _stored(store, "SELECT count(*) FROM metrics", []) == [(6,)]

    # new points beside the moved ones, the same point again included; a new run's key is next
    store.log_batch(a, metrics=[("loss", 3.0, 10, 0), ("acc", 0.25, 20, 1)])
    store.log_batch(a, metrics=[("loss", 2.0, 10, 0)])
    assert str(history(a, "loss")) == str(
        [(0, 10, 1.0), (0, 10, 3.0), (0, 10, 3.0), (0, 10, 3.0), (0, 10, 2.0), (1, 11, math.nan)]
    )
    assert history(a, "acc") == [(0, 10, 0.5), (1, 20, 0.25)]
    c = store.create_run("0").info.run_id
    store.log_batch(c, metrics=[("loss", 2.0, 5, 0)])
    assert _stored(store, "SELECT run_key FROM runs WHERE run_id = ?", [c]) == [(3,)]
    assert history(c, "loss") == [(0, 5, 2.0)]
    if backend == "sqlite":
        conn = sqlite3.connect(tmp_path / "a.db")
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'metrics'").fetchone()[0]
        assert sql.endswith("WITHOUT ROWID")
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_a_store_from_schema_2_reads_histories_from_the_points_key(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with _schema(2):  # points indexed by (run_id, key, step) only
        old = open_store(f"sqlite:///{path}")
        rid = old.create_run("0").info.run_id
        _old_points(old, [(rid, "loss", 1.0 / (s + 1), 1000 + s, s) for s in range(50)])
        indexes = {r[1] for r in old.conn.execute("PRAGMA index_list(metrics)")}
        assert indexes == {"idx_metrics_run_id_key_step"}
        old.close()
    new = open_store(f"sqlite:///{path}")
    history = new.get_metric_history(rid, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (s, 1.0 / (s + 1), 1000 + s) for s in range(50)
    ]
    assert [r[1] for r in new.conn.execute("PRAGMA index_list(metrics)")] == [
        "sqlite_autoindex_metrics_1"  # the primary key: the table itself
    ]

    def plan(sql: str, args: list[Any]) -> list[str]:
        return [r[3] for r in new.conn.execute(f"EXPLAIN QUERY PLAN {sql}", args)]

    bucket = plan(
        f"SELECT MIN(value), MAX(value) FROM metrics WHERE {RUN_KEY} AND key = ? "
        "AND step >= ? AND step < ?",
        [rid, "loss", 0, 10],
    )
    assert bucket[0] == (
        "SEARCH metrics USING PRIMARY KEY (run_key=? AND key=? AND step>? AND step<?)"
    )
    ordered = plan(
        f"SELECT value, timestamp, step FROM metrics WHERE {RUN_KEY} AND key = ? {HISTORY_ORDER}",
        [rid, "loss"],
    )
    # the points come in the key's order: no sort
    assert ordered[0] == "SEARCH metrics USING PRIMARY KEY (run_key=? AND key=?)"
    assert not [step for step in ordered if "TEMP B-TREE" in step]


def test_points_equal_in_step_and_time_across_batches_are_all_kept(store: Any) -> None:
    rid = store.create_run("0").info.run_id
    store.log_batch(rid, metrics=[("a", 1.0, 5, 0), ("a", 1.0, 5, 0), ("b", 2.0, 5, 0)])
    # keys now at different places in their histories: a at 3, b at 3, c new
    store.log_batch(rid, metrics=[("a", 1.0, 5, 0), ("c", 4.0, 5, 0)])
    store.log_batch(rid, metrics=[("b", 2.0, 5, 0), ("a", 0.5, 5, 0), ("c", 4.0, 5, 0)])
    for _ in range(3):
        store.log_metric(rid, "b", 2.0, 5, 0)
    got = {k: [m.value for m in store.get_metric_history(rid, k)] for k in ("a", "b", "c")}
    assert got == {"a": [1.0, 1.0, 1.0, 0.5], "b": [2.0] * 5, "c": [4.0, 4.0]}
    assert store.get_run(rid).data.metrics == {"a": 0.5, "b": 2.0, "c": 4.0}
    assert _stored(store, "SELECT count(*) FROM metrics", []) == [(11,)]


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


def test_batches_of_many_keys_keep_every_latest_point(store: Any) -> None:
    rid = store.create_run("0").info.run_id
    _upsert_sql.cache_clear()
    # 1 to 300 keys a batch, one point each at the batch's step: keys at many different bases
    for step, n in enumerate((300, 1, 129, 7, 200, 3)):
        store.log_batch(
            rid, metrics=[(f"k{i:03d}", float(step), 10 + step, step) for i in range(n)]
        )
    latest = store.get_run(rid).data.metrics
    assert len(latest) == 300
    assert latest["k000"] == 5.0 and latest["k005"] == 4.0 and latest["k150"] == 4.0
    assert latest["k250"] == 0.0
    assert [m.step for m in store.get_metric_history(rid, "k000")] == [0, 1, 2, 3, 4, 5]
    assert [m.step for m in store.get_metric_history(rid, "k128")] == [0, 2, 4]
    if store.dialect.name == "sqlite":  # a few statement shapes, whatever the number of keys
        assert _upsert_sql.cache_info().currsize <= 8
