"""On SQLite a filter's rarest comparison drives the search (store/sql/plan.py): the same
results as the plain plan, and the plan actually chosen."""

from __future__ import annotations

import random

import pytest

from store.sql.dialect import SQLiteDialect
from store.sql.search import count_run_ids, search_run_ids
from store.sqlite import Store


class PlainSQLite(SQLiteDialect):
    """SQLite without the driver: the plan every search used before (and PostgreSQL's SQL)."""

    counts_selectivity = False


PLAIN = PlainSQLite()
PLANNED = SQLiteDialect()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plan")
    s = Store(folder / "autolog.db", folder / "artifacts")
    rng = random.Random(7)
    a, b = s.create_experiment("a"), s.create_experiment("b")

    def spec(i: int) -> tuple:
        params = {"n": str(i)}
        if i % 7:  # some runs lack the key
            params["model"] = rng.choice(["forest", "boost", "linear", "svm"])
        if i % 97 == 3:
            params["rare"] = "yes"
        tags = {"team": rng.choice(["vision", "audio"])} if i % 5 else {}
        if i % 113 == 1:
            tags["flag"] = "x"
        metrics = [("acc", rng.choice([rng.random(), float("nan")]), 0, 0)] if i % 3 else []
        if i % 89 == 5:
            metrics.append(("peak", 1000.0 + i, 0, 0))
        return f"run-{i}", tags, params, metrics

    ids = s.create_finished_runs(a, [spec(i) for i in range(400)])
    ids += s.create_finished_runs(b, [spec(i) for i in range(400, 460)])
    ids += s.create_finished_runs(a, [spec(i) for i in range(460, 490)], parent_run_id=ids[3])
    for k, run_id in enumerate(ids):  # start times with ties, a few unknown
        start = None if k % 61 == 0 else 1_700_000_000_000 + rng.randrange(50) * 1000
        s.conn.execute("UPDATE runs SET start_time = ? WHERE run_id = ?", [start, run_id])
    for run_id in ids[10:400:37]:
        s.delete_run(run_id)
    s.conn.commit()
    s.experiments = [a, b]
    yield s
    s.close()


def _execute(store: Store, seen: list | None = None, with_params: bool = False):
    def execute(sql: str, params: list) -> list:
        if seen is not None:
            seen.append((sql, list(params)) if with_params else sql)
        return store.conn.execute(sql, params).fetchall()

    return execute


# every one is driven somewhere (a count over 490 runs reads the 100 'forest' rows first), but
# an OR, which no single comparison can drive
FILTERS = [
    "params.rare = 'yes'",
    "params.rare = 'yes' and metrics.acc > 0.2",
    "params.model = 'forest' and tags.flag = 'x'",
    "tags.flag = 'x'",
    "tags.flag IN ('x', 'y') and params.model != 'svm'",
    "metrics.peak > 1200",
    "metrics.peak >= 1005 and metrics.acc IS NULL",
    "metrics.peak < 1300 and params.model IS NULL",
    "params.model LIKE 'bo%' and params.rare = 'yes'",
    "params.model = 'linear' and attributes.parent_run_id IS NULL",
    "params.rare = 'yes' or tags.flag = 'x'",
    "params.model = 'forest'",
    "params.n = '999'",
]
ORDERS = [
    None,
    ["attributes.start_time DESC"],
    ["attributes.start_time ASC"],
    ["metrics.acc DESC"],
    ["params.model ASC", "metrics.acc"],
    ["tags.team DESC"],
    ["attributes.run_name"],
]


@pytest.mark.parametrize("filter_string", FILTERS)
def test_the_driven_search_finds_what_the_plain_plan_finds(store, filter_string):
    seen: list[str] = []
    execute = _execute(store, seen)
    for experiments in ([store.experiments[0]], store.experiments, None):
        for stage in ("active", "deleted", None):
            args = (execute, experiments, filter_string)
            assert count_run_ids(*args, stage, PLANNED) == count_run_ids(*args, stage, PLAIN)
            for order in ORDERS:
                for limit, offset in ((None, 0), (5, 0), (5, 3), (50, 0), (7, 40), (3, 1000)):
                    plain = search_run_ids(*args, order, limit, offset, stage, PLAIN)
                    planned = search_run_ids(*args, order, limit, offset, stage, PLANNED)
                    assert planned == plain, (experiments, stage, order, limit, offset)
    driven = any(" d CROSS JOIN runs r ON " in sql for sql in seen)
    assert driven == (" or " not in filter_string)


def test_matches_are_real_runs_and_paging_covers_them_once(store):
    execute = _execute(store)
    f = "params.rare = 'yes'"
    everything = search_run_ids(execute, None, f, None, None, 0, None, PLANNED)
    runs = store.get_runs(everything)
    assert len(runs) == len(everything) == len(set(everything)) > 3
    assert all(r.data.params["rare"] == "yes" for r in runs)
    pages = [search_run_ids(execute, None, f, None, 2, o, None, PLANNED) for o in range(0, 10, 2)]
    assert [i for page in pages for i in page] == everything


def test_a_rare_comparison_leads_the_plan(store):
    seen: list[tuple[str, list]] = []
    f = "params.model = 'forest' and tags.flag = 'x'"
    execute = _execute(store, seen, with_params=True)
    search_run_ids(execute, [store.experiments[0]], f, None, 50, 0, "active")
    sql, params = [(q, p) for q, p in seen if q.startswith("SELECT r.run_id")][0]
    assert sql.startswith("SELECT r.run_id, ")  # then the run's sort key (its page cursor)
    assert sql.split(" FROM ", 1)[1].startswith("tags d CROSS JOIN runs r ON")
    plan = [row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    assert plan[0] == "SEARCH d USING COVERING INDEX idx_tags_key_value (key=? AND value=?)"
    assert plan[1] == "SEARCH r USING INDEX sqlite_autoindex_runs_1 (run_id=?)"


def test_a_common_comparison_keeps_the_walk_in_page_order(store):
    seen: list[str] = []
    search_run_ids(_execute(store, seen), None, "params.model = 'forest'", None, 10, 0)
    page = [sql for sql in seen if sql.startswith("SELECT r.run_id")]
    assert page and all(" d CROSS JOIN" not in sql for sql in page)


def test_a_count_reads_the_rare_rows_only(store):
    seen: list[str] = []
    n = count_run_ids(_execute(store, seen), None, "metrics.peak > 1200 and params.n != 'z'", None)
    assert n == sum(1 for i in range(490) if i % 89 == 5 and 1000 + i > 1200)
    assert seen[-1].startswith("SELECT COUNT(*) FROM latest_metrics d CROSS JOIN runs r ON")


def test_or_negations_and_null_tests_never_drive(store):
    for f in (
        "params.rare = 'yes' or tags.flag = 'x'",
        "params.model != 'forest'",
        "tags.flag IS NOT NULL",
        "params.model NOT IN ('svm')",
        "tags.team ILIKE 'VIS%'",
    ):
        seen: list[str] = []
        count_run_ids(_execute(store, seen), None, f, None)
        assert seen == [sql for sql in seen if sql.startswith("SELECT COUNT(*) FROM runs r")], f


def test_the_runs_page_and_its_count_read_one_covering_index(store):
    """The UI's default page (top-level runs newest first), a far page and their count."""
    seen: list[tuple[str, list]] = []
    execute = _execute(store, seen, with_params=True)
    top = "attributes.parent_run_id IS NULL"
    newest = ["attributes.start_time DESC"]
    a = [store.experiments[0]]
    far = search_run_ids(execute, a, top, newest, 50, 300, "active")
    count_run_ids(execute, a, top, "active")
    assert far == search_run_ids(execute, a, top, newest, 50, 300, "active", PLAIN)
    assert len(seen) >= 2
    for sql, params in seen[:2]:
        plan = [row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
        assert plan[0].startswith("SEARCH r USING COVERING INDEX idx_runs_page "), plan
        assert not any("TEMP B-TREE" in step for step in plan), plan
