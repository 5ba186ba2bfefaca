"""Metric points go into SQLite in multi-row INSERT statements (store.sqlite_values.insert_rows):
every row, in its order, whatever the count, and a bad one refused with nothing written."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from store.base import open_store
from store.errors import InvalidValueError
from store.sqlite_values import _values_sql, insert_rows


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 255, 1000, 1003])
def test_every_row_goes_in_once_in_its_order(n: int) -> None:
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE t (a TEXT, b INTEGER, c REAL)")
    rows = [(f"k{i % 3}", n - i, i / 2) for i in range(n)]
    insert_rows(c, "INSERT INTO t", rows, 3)
    assert c.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == rows


def test_a_few_statement_shapes_serve_every_count() -> None:
    _values_sql.cache_clear()
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE t (a INTEGER)")
    for n in range(300):
        insert_rows(c, "INSERT INTO t", [(i,) for i in range(n)], 1)
    # 128, 64, 32, 16 and 8 rows, and one row for the last few
    assert _values_sql.cache_info().currsize == 6
    assert c.execute("SELECT count(*) FROM t").fetchone()[0] == sum(range(300))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_batch_of_points_reads_back_exactly_and_a_bad_one_writes_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    else:
        uri = request.getfixturevalue("postgres_uri")
        store = open_store(f"{uri}?artifact_root={tmp_path / 'artifacts'}")
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
