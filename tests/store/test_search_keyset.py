"""Keyset pages (store.sql.keyset): a page read after the last run's sort key is the page an
offset gives, on SQLite and PostgreSQL, for every ordering shape (ties, missing values, NaN,
infinities, both halves of a search), and it reads no run before the cursor."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from store.base import open_store
from store.sql.search import search_run_page
from store.sqlite import Store

ORDERS: list[list[str] | None] = [
    None,  # newest first: start_time ties broken by insertion (SQLite's rowid) then run_id
    ["metrics.m DESC"],
    ["metrics.m ASC", "params.p DESC"],
    ["params.p ASC", "metrics.m DESC"],
    ["tags.t DESC"],
    ["attributes.start_time ASC"],
    ["attributes.run_id DESC"],
    ["attributes.end_time DESC", "metrics.m ASC"],
]
FILTERS = ["", "metrics.m > 0", "params.p != 'b'"]
METRICS = [0.5, 0.5, math.nan, math.inf, -math.inf, 2.0, None, 0.5, 1e-300, None]


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("keyset")
    if request.param == "sqlite":
        s: Any = Store(folder / "autolog.db", folder / "artifacts")
    else:
        pg = request.getfixturevalue("postgres_server")
        s = open_store(f"{pg.new_database()}?artifact_root={folder}/artifacts")
    eid = s.create_experiment("keyset")
    for i in range(37):
        run = s.create_run(eid, start_time=1000 + i // 4)  # four runs a millisecond
        m = METRICS[i % len(METRICS)]
        params = {"p": "abc"[i % 3]} if i % 5 else {}
        tags = {"t": f"t{i % 4}"} if i % 6 else {}
        s.log_batch(run.info.run_id, [("m", m, 0, 0)] if m is not None else [], params, tags)
        if i % 3:
            s.update_run(run.info.run_id, "FINISHED", 5000 + i % 2)
    yield s, eid
    s.close()


def _walk(store: Any, eid: str, f: str, order: list[str] | None, size: int) -> list[str]:
    """Every matching run, read page by page, each page after the last run of the one before."""
    seen: list[str] = []
    after = None
    while True:
        runs, keys = store.search_runs_page([eid], f, order, size, 0, "active", after)
        assert len(runs) == len(keys) <= size
        seen += [r.info.run_id for r in runs]
        if len(runs) < size:
            return seen
        after = keys[-1]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("f", FILTERS)
def test_pages_after_a_cursor_are_the_pages_of_an_offset(store: Any, f: str, order: Any) -> None:
    s, eid = store
    everything = [r.info.run_id for r in s.search_runs([eid], f, order, None)]
    assert everything and len(everything) == len(set(everything))
    for size in (1, 4, 7):
        assert _walk(s, eid, f, order, size) == everything
    offsets = [r.info.run_id for r in s.search_runs([eid], f, order, 5, 10)]
    cursor = s.search_runs_page([eid], f, order, 10, 0)[1][-1]
    assert [r.info.run_id for r in s.search_runs_page([eid], f, order, 5, 0, after=cursor)[0]] == (
        offsets
    )


def test_a_cursor_of_another_ordering_is_ignored_for_the_offset(store: Any) -> None:
    s, eid = store
    three = ["metrics.m DESC", "params.p ASC", "tags.t ASC"]
    cursor = s.search_runs_page([eid], "", three, 3)[1][-1]
    # a key of four values (and run_id) is none of the default order's; the offset counts
    got = s.search_runs_page([eid], "", None, 4, 8, after=cursor)[0]
    assert [r.info.run_id for r in got] == [
        r.info.run_id for r in s.search_runs([eid], "", None, 4, 8)
    ]
    # forged: a dict, no such half, not a list, a bool, text for a metric (PostgreSQL would
    # fail on comparing it), a float for a run id
    forged = ([0, {"x": 1}, "id"], [2, 1.0, "id"], "junk", [True, 1.0, "id"], [0, "0.5", "id"])
    for bad in (*forged, [0, 0.5, 7.0]):
        got = s.search_runs_page([eid], "", ["metrics.m DESC"], 4, 8, after=bad)[0]
        want = s.search_runs([eid], "", ["metrics.m DESC"], 4, 8)
        assert [r.info.run_id for r in got] == [r.info.run_id for r in want]


def test_a_page_after_a_cursor_skips_nothing_by_offset(tmp_path: Path) -> None:
    s = Store(tmp_path / "autolog.db", tmp_path / "artifacts")
    eid = s.create_experiment("e")
    for i in range(30):
        s.log_batch(s.create_run(eid, start_time=i).info.run_id, [("m", i / 10, 0, 0)])
    seen: list[tuple[str, list]] = []

    def execute(sql: str, params: list) -> list:
        seen.append((sql, list(params)))
        return s.conn.execute(sql, params).fetchall()

    order = ["metrics.m DESC"]
    ids, keys = search_run_page(execute, [int(eid)], "", order, 10, 0)
    seen.clear()
    more, _ = search_run_page(execute, [int(eid)], "", order, 10, 10, after=keys[-1])
    assert [r.info.run_id for r in s.search_runs([eid], "", order, 10, 10)] == more
    ((sql, params),) = seen  # one statement: the half with values filled the page
    assert "f.value <= ?" in sql and params[-2:] == [10, 0]  # LIMIT 10 OFFSET 0
    plan = [r[3] for r in s.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    assert plan[0].startswith("SEARCH f USING COVERING INDEX idx_latest_metrics_key_value"), plan
    s.close()
