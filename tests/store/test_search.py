"""The filter grammar compiled to SQL, run against a small hand-built database."""

from __future__ import annotations

import sqlite3

import pytest

from store.errors import InvalidValueError, SearchSyntaxError
from store.search import build_search_sql, count_search_sql, parse_order_by

SCHEMA = """
CREATE TABLE experiments(experiment_id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,
    artifact_location TEXT, lifecycle_stage TEXT DEFAULT 'active', creation_time INTEGER,
    last_update_time INTEGER);
CREATE TABLE runs(run_id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL, run_name TEXT,
    status TEXT, start_time INTEGER, end_time INTEGER, user_id TEXT, host TEXT, pid INTEGER,
    parent_run_id TEXT, lifecycle_stage TEXT DEFAULT 'active', artifact_uri TEXT);
CREATE TABLE params(run_id TEXT, key TEXT, value TEXT, PRIMARY KEY(run_id, key));
CREATE TABLE tags(run_id TEXT, key TEXT, value TEXT, PRIMARY KEY(run_id, key));
CREATE TABLE latest_metrics(run_id TEXT, key TEXT, value REAL, timestamp INTEGER,
    step INTEGER, PRIMARY KEY(run_id, key));
CREATE TABLE metrics(run_id TEXT, key TEXT, value REAL, timestamp INTEGER, step INTEGER);
"""

# run_id: experiment, name, status, start, end, user, parent, lifecycle
RUNS = {
    "r1": (1, "alpha", "FINISHED", 1000, 2000, "ann", None, "active"),
    "r2": (1, "beta", "FAILED", 2000, 2500, "bob", None, "active"),
    "r3": (1, "gamma", "RUNNING", 3000, None, "ann", "r1", "active"),
    "r4": (2, "delta", "FINISHED", 4000, 5000, "carl", None, "active"),
    "r5": (1, "epsilon", "KILLED", 5000, 6000, "ann", None, "deleted"),
    "r6": (1, "zeta", "FINISHED", 3000, 3500, "bob", None, "active"),
}
PARAMS = {
    "r1": {"model": "linear", "lr": "0.1", "model.depth": "3"},
    "r2": {"model": "tree", "lr": "0.01"},
    "r3": {"model": "tree_deep", "lr": "0.5", "note": "it's"},
    "r4": {"model": "Tree", "lr": "1e-3", "note": "50%_off"},
    "r5": {"model": "tree"},
}
NAN = None  # NaN metrics are stored as NULL
METRICS = {
    "r1": {"acc": 0.9, "loss": 0.3, "f1 score": 0.8},
    "r2": {"acc": 0.7, "loss": NAN},
    "r3": {"loss": float("inf")},
    "r4": {"acc": 0.95, "loss": 0.1, "f1 score": 0.5},
    "r5": {"acc": 0.99},
}
TAGS = {
    "r1": {"mlflow.source.type": "LOCAL", "mlflow.runName": "alpha", "team": "Vision"},
    "r2": {"mlflow.source.type": "NOTEBOOK", "team": "vision"},
    "r3": {"team": "Audio", "odd key": "x"},
    "r4": {"mlflow.source.type": "JOB"},
}
ACTIVE = {"r1", "r2", "r3", "r4", "r6"}


@pytest.fixture
def db(tmp_path):
    conn = sqlite3.connect(tmp_path / "runs.db")
    conn.executescript(SCHEMA)
    conn.executemany(
        "INSERT INTO experiments(experiment_id, name) VALUES (?, ?)", [(1, "one"), (2, "two")]
    )
    for run_id, (exp, name, status, start, end, user, parent, stage) in RUNS.items():
        conn.execute(
            "INSERT INTO runs(run_id, experiment_id, run_name, status, start_time, end_time,"
            " user_id, host, pid, parent_run_id, lifecycle_stage, artifact_uri)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'h', 1, ?, ?, ?)",
            (run_id, exp, name, status, start, end, user, parent, stage, f"file:///a/{run_id}"),
        )
    for table, rows in (("params", PARAMS), ("tags", TAGS)):
        for run_id, kv in rows.items():
            conn.executemany(
                f"INSERT INTO {table} VALUES (?, ?, ?)", [(run_id, k, v) for k, v in kv.items()]
            )
    for run_id, kv in METRICS.items():
        conn.executemany(
            "INSERT INTO latest_metrics VALUES (?, ?, ?, 0, 0)",
            [(run_id, k, v) for k, v in kv.items()],
        )
    conn.commit()
    yield conn
    conn.close()


def search(conn, filter_string="", **kwargs):
    kwargs.setdefault("experiment_ids", None)
    sql, params = build_search_sql(filter_string=filter_string, **kwargs)
    return [row[0] for row in conn.execute(sql, params)]


def dump(conn):
    return list(conn.iterdump())


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("", ACTIVE),
        ("   \n\t", ACTIVE),
        # metrics
        ("metrics.acc > 0.8", {"r1", "r4"}),
        ("metric.acc >= 0.9", {"r1", "r4"}),
        ("metrics.acc < 0.9", {"r2"}),
        ("metrics.acc <= 0.9", {"r1", "r2"}),
        ("metrics.acc = 0.7", {"r2"}),
        ("metrics.acc != 0.7", {"r1", "r4"}),  # r3, r6 lack acc: no match
        ("metrics.acc <> 0.7", {"r1", "r4"}),
        ("metrics.acc > 7e-1", {"r1", "r4"}),
        ("metrics.acc > -1.5", {"r1", "r2", "r4"}),
        ("metrics.acc>.8", {"r1", "r4"}),
        ("metrics.loss > 0", {"r1", "r3", "r4"}),  # NaN (r2) matches nothing
        ("metrics.loss != 0.3", {"r3", "r4"}),
        ("metrics.loss = inf", {"r3"}),
        ("metrics.loss < inf", {"r1", "r4"}),
        ("metrics.loss > -inf", {"r1", "r3", "r4"}),
        ("metrics.loss > 1e308", {"r3"}),
        ("metrics.`f1 score` >= 0.8", {"r1"}),
        ('metrics."f1 score" < 0.8', {"r4"}),
        ("metrics.missing > 0", set()),
        # params
        ("params.model = 'tree'", {"r2"}),
        ('params.model = "tree"', {"r2"}),
        ("param.model != 'tree'", {"r1", "r3", "r4"}),
        ("parameters.lr = '0.1'", {"r1"}),
        ("params.model.depth = '3'", {"r1"}),
        ("params.model LIKE 'tree%'", {"r2", "r3"}),
        ("params.model LIKE 'tre_'", {"r2"}),
        ("params.model NOT LIKE 'tree%'", {"r1", "r4"}),
        ("params.model ILIKE 'TREE%'", {"r2", "r3", "r4"}),
        ("params.model not ilike 'tree'", {"r1", "r3"}),
        ("params.note LIKE '50[%]%'", set()),  # brackets are literal, not a GLOB set
        ("params.note LIKE '50%\\_off'", set()),  # no LIKE escape character
        ("params.note LIKE '50*'", set()),  # '*' is literal
        ("params.note LIKE '%\\%%'", set()),  # a backslash is a literal backslash
        ("params.note LIKE '50%off'", {"r4"}),
        ("params.note = 'it''s'", {"r3"}),
        ("params.note = 'it\\'s'", {"r3"}),
        ('params.note = "it\'s"', {"r3"}),
        ("params.model IN ('tree', 'linear')", {"r1", "r2"}),
        ("params.model in ('x')", set()),
        ("params.model NOT IN ('tree', 'linear')", {"r3", "r4"}),
        ("params.lr > '0.1'", {"r3", "r4"}),  # string order, as MLflow
        ("params.note IS NULL", {"r1", "r2", "r6"}),
        ("params.note IS NOT NULL", {"r3", "r4"}),
        # tags
        ("tags.team = 'vision'", {"r2"}),
        ("tag.team ILIKE 'vision'", {"r1", "r2"}),
        ("tags.mlflow.source.type = 'LOCAL'", {"r1"}),
        ("tags.\"mlflow.runName\" = 'alpha'", {"r1"}),
        ("tags.`odd key` = 'x'", {"r3"}),
        ("tags.mlflow.source.type IN ('LOCAL', 'JOB')", {"r1", "r4"}),
        ("tags.team IS NULL", {"r4", "r6"}),
        ("metrics.loss IS NULL", {"r6"}),  # r2's NaN loss is present
        ("metrics.acc IS NOT NULL", {"r1", "r2", "r4"}),
        # attributes
        ("attributes.status = 'FINISHED'", {"r1", "r4", "r6"}),
        ("attributes.status = 'finished'", {"r1", "r4", "r6"}),
        ("status != 'FINISHED'", {"r2", "r3"}),
        ("attribute.status IN ('FAILED', 'RUNNING')", {"r2", "r3"}),
        ("attr.status NOT IN ('FINISHED')", {"r2", "r3"}),
        ("run.status LIKE 'F%'", {"r1", "r2", "r4", "r6"}),
        ("attributes.run_id = 'r3'", {"r3"}),
        ("attributes.run_uuid IN ('r1', 'r2', 'nope')", {"r1", "r2"}),
        ("attributes.run_name = 'beta'", {"r2"}),
        ("attributes.`Run Name` ILIKE '%ETA'", {"r2", "r6"}),
        ("run_name LIKE '%a'", {"r1", "r2", "r3", "r4", "r6"}),
        ("attributes.user_id = 'ann'", {"r1", "r3"}),
        ("attributes.parent_run_id = 'r1'", {"r3"}),
        ("attributes.parent_run_id IS NULL", {"r1", "r2", "r4", "r6"}),
        ("attributes.end_time IS NULL", {"r3"}),
        ("attributes.experiment_id = 2", {"r4"}),
        ("attributes.experiment_id IN (1, 3)", {"r1", "r2", "r3", "r6"}),
        ("attributes.artifact_uri = 'file:///a/r2'", {"r2"}),
        ("attributes.host = 'h'", ACTIVE),
        # times
        ("attributes.start_time >= 3000", {"r3", "r4", "r6"}),
        ("start_time < 2000", {"r1"}),
        ("attributes.created > 1000 and attributes.end_time <= 3500", {"r2", "r6"}),
        ("attributes.end_time > 2000", {"r2", "r4", "r6"}),
        ("attributes.start_time > 99999999999999999999999", set()),
        # AND / OR / parentheses
        ("metrics.acc > 0.8 and params.model = 'linear'", {"r1"}),
        ("metrics.acc > 0.8 AND params.model = 'tree'", set()),
        ("params.model = 'tree' or params.model = 'Tree'", {"r2", "r4"}),
        # AND binds tighter: a OR (b AND c)
        ("status = 'RUNNING' OR metrics.acc > 0.8 AND params.model = 'Tree'", {"r3", "r4"}),
        ("(status = 'RUNNING' OR metrics.acc > 0.8) AND params.model = 'Tree'", {"r4"}),
        (
            "((tags.team ILIKE 'vision') and (metrics.acc < 0.8)) or start_time = 3000",
            {"r2", "r3", "r6"},
        ),
        ("(((metrics.acc > 0)))", {"r1", "r2", "r4"}),
        ("metrics.acc > 0 aNd metrics.loss > 0 Or tags.team = 'Audio'", {"r1", "r3", "r4"}),
    ],
)
def test_filter_matches_expected_runs(db, filter_string, expected):
    assert set(search(db, filter_string)) == expected
    sql, params = count_search_sql(None, filter_string)
    assert db.execute(sql, params).fetchone()[0] == len(expected)


def test_experiment_ids_and_lifecycle(db):
    assert set(search(db, experiment_ids=[2])) == {"r4"}
    assert set(search(db, experiment_ids=[1, 2])) == ACTIVE
    assert set(search(db, experiment_ids=["1"])) == {"r1", "r2", "r3", "r6"}
    assert search(db, experiment_ids=[]) == []
    assert search(db, lifecycle_stage="deleted") == ["r5"]
    assert set(search(db, "params.model = 'tree'", lifecycle_stage=None)) == {"r2", "r5"}
    assert set(search(db, "metrics.acc > 0.9", lifecycle_stage=None)) == {"r4", "r5"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"experiment_ids": ["one"]},
        {"experiment_ids": [True]},
        {"lifecycle_stage": "gone"},
        {"max_results": -1},
        {"max_results": 1.5},
        {"offset": -1},
        {"filter_string": None},
    ],
)
def test_bad_arguments_raise_invalid_value(kwargs):
    kwargs.setdefault("experiment_ids", None)
    with pytest.raises(InvalidValueError):
        build_search_sql(**kwargs)


def test_default_order_is_newest_first_later_insert_first_on_ties(db):
    # r3 and r6 share start_time 3000; r6 was inserted after r3
    assert search(db) == ["r4", "r6", "r3", "r2", "r1"]


@pytest.mark.parametrize(
    "order_by, expected",
    [
        (["metrics.acc DESC"], ["r4", "r1", "r2", "r3", "r6"]),
        (["metrics.acc"], ["r2", "r1", "r4", "r3", "r6"]),
        (["metrics.acc ASC"], ["r2", "r1", "r4", "r3", "r6"]),
        # NaN (r2) and missing (r6) come last in both directions; inf sorts as a number
        (["metrics.loss DESC"], ["r3", "r1", "r4", "r2", "r6"]),
        (["metrics.loss asc"], ["r4", "r1", "r3", "r2", "r6"]),
        (["metrics.`f1 score` DESC"], ["r1", "r4", "r2", "r3", "r6"]),
        (["params.model"], ["r4", "r1", "r2", "r3", "r6"]),
        (["params.note DESC"], ["r3", "r4", "r1", "r2", "r6"]),
        (["tags.team", "run_name DESC"], ["r3", "r1", "r2", "r6", "r4"]),
        (["attributes.start_time ASC"], ["r1", "r2", "r3", "r6", "r4"]),
        (["start_time"], ["r1", "r2", "r3", "r6", "r4"]),
        (["start_time DESC"], ["r4", "r3", "r6", "r2", "r1"]),
        (["run_name"], ["r1", "r2", "r4", "r3", "r6"]),
        (["attributes.end_time DESC"], ["r4", "r6", "r2", "r1", "r3"]),
        (["attributes.end_time ASC"], ["r1", "r2", "r6", "r4", "r3"]),
        (["status", "metrics.acc DESC"], ["r2", "r4", "r1", "r6", "r3"]),
        (["attributes.run_id DESC"], ["r6", "r4", "r3", "r2", "r1"]),
        (["user_id", "attributes.run_id DESC"], ["r3", "r1", "r6", "r2", "r4"]),
        ([], ["r4", "r6", "r3", "r2", "r1"]),
    ],
)
def test_order_by(db, order_by, expected):
    assert search(db, order_by=order_by) == expected


def test_order_by_combines_with_filter(db):
    assert search(db, "params.model LIKE 'tree%'", order_by=["metrics.acc DESC"]) == ["r2", "r3"]


def test_parse_order_by():
    assert parse_order_by(None) == []
    assert parse_order_by(
        [
            "metrics.acc DESC",
            "params.model",
            "attributes.start_time ASC",
            "start_time",
            "run_name",
            "tags.`my key` desc",
            "attr.created",
            'tags."mlflow.runName"',
        ]
    ) == [
        ("metrics", "acc", False),
        ("params", "model", True),
        ("attributes", "start_time", True),
        ("attributes", "start_time", True),
        ("attributes", "run_name", True),
        ("tags", "my key", False),
        ("attributes", "start_time", True),
        ("tags", "mlflow.runName", True),
    ]
    assert parse_order_by("metrics.acc DESC") == [("metrics", "acc", False)]


@pytest.mark.parametrize(
    "clause, position",
    [
        ("", 0),
        ("   ", 3),
        ("metrics.acc DESCENDING", 12),
        ("metrics.acc DESC ASC", 17),
        ("metrics.acc; DROP TABLE runs", 11),
        ("metrics.acc -- x", 12),
        ("foo.acc", 0),
        ("bogus", 0),
        ("attributes.nope", 0),
        ("'metrics.acc'", 0),
        ("1", 0),
        ("metrics.`acc", 8),
        ("metrics.acc, params.x", 11),
    ],
)
def test_malformed_order_by(clause, position):
    with pytest.raises(SearchSyntaxError) as err:
        parse_order_by([clause])
    assert err.value.position == position
    assert repr(clause) in str(err.value)


def test_order_by_element_must_be_a_string():
    with pytest.raises(SearchSyntaxError):
        parse_order_by([1])  # type: ignore[list-item]


def test_paging_is_stable_and_complete(db):
    order = ["metrics.acc DESC"]
    everything = search(db, order_by=order, max_results=None)
    pages = [search(db, order_by=order, max_results=2, offset=o) for o in (0, 2, 4, 6)]
    assert pages == [["r4", "r1"], ["r2", "r3"], ["r6"], []]
    assert sum(pages, []) == everything
    assert search(db, max_results=0) == []
    assert search(db, max_results=None, offset=3) == ["r2", "r1"]
    assert search(db, max_results=1, offset=1) == ["r6"]


def test_count(db):
    sql, params = count_search_sql(None)
    assert db.execute(sql, params).fetchone() == (5,)
    sql, params = count_search_sql([1], "metrics.acc > 0", lifecycle_stage=None)
    assert db.execute(sql, params).fetchone() == (3,)
    sql, params = count_search_sql([2], "status = 'FAILED'")
    assert db.execute(sql, params).fetchone() == (0,)


@pytest.mark.parametrize(
    "filter_string, position, token",
    [
        # injection attempts
        ("metrics.a = 1; DROP TABLE runs", 13, ";"),
        ("metrics.a = 1 -- comment", 14, "--"),
        ("metrics.a--x = 1", 9, "--"),
        ("' OR 1=1 --", 0, "' OR 1=1 --"),
        ("params.x = '' OR 1=1 --", 17, "1"),
        ("params.x = 'a' OR '1'='1'", 18, "'1'"),
        ("1=1", 0, "1"),
        ("1 = 1 OR metrics.a > 0", 0, "1"),
        ("metrics.a = 1 UNION SELECT run_id FROM runs", 14, "UNION"),
        ("metrics.a = 1 OR run_id = run_id", 26, "run_id"),
        ("params.x = 'a'; --", 14, ";"),
        ("tags.`x` = '1' /* c */", 15, "/"),
        ("metrics.a = 0x10", 12, "0x10"),
        ("metrics.a = 1)", 13, ")"),
        # quotes
        ("params.x = 'abc", 11, "'abc"),
        ('params.x = "abc', 11, '"abc'),
        ("params.x = 'a'' = 'b", 19, "b"),  # the string is "a' = "
        ("metrics.`f1 score = 1", 8, "`f1 score = 1"),
        ("metrics.`` = 1", 0, "metrics.``"),
        ("`metrics.a` = 1", 0, "`"),
        # parentheses
        ("(metrics.a > 1", 14, None),
        ("((metrics.a > 1) or metrics.b > 2", 33, None),
        ("metrics.a > 1)", 13, ")"),
        ("()", 1, ")"),
        ("metrics.a > 1 and ()", 19, ")"),
        ("(", 1, None),
        ("(" * 100 + "metrics.a > 1" + ")" * 100, 64, "("),
        # names
        ("foo.x = 1", 0, "foo.x"),
        ("metrics = 1", 0, "metrics"),
        ("metrics. = 1", 0, "metrics."),
        ("attributes.nope = 'x'", 0, "attributes.nope"),
        ("acc > 0.5", 0, "acc"),
        ("and metrics.a > 1", 0, "and"),
        # operators and values
        ("metrics.a 1", 10, "1"),
        ("metrics.a", 9, None),
        ("metrics.a =", 11, None),
        ("metrics.a = ", 12, None),
        ("metrics.a == 1", 11, "="),
        ("metrics.a =< 1", 11, "<"),
        ("metrics.a ! 1", 10, "!"),
        ("metrics.a = 'x'", 12, "'x'"),
        ("metrics.a = nan", 12, "nan"),
        ("metrics.a = 1.2.3", 12, "1.2.3"),
        ("metrics.a = 1abc", 12, "1abc"),
        ("metrics.a LIKE '1%'", 10, "LIKE"),
        ("metrics.a IN (1, 2)", 10, "IN"),
        ("params.x = 1", 11, "1"),
        ("params.x = x", 11, "x"),
        ("params.x IN 'a'", 12, "'a'"),
        ("params.x IN ()", 13, ")"),
        ("params.x IN ('a' 'b')", 17, "'b'"),
        ("params.x IN ('a',)", 17, ")"),
        ("params.x IN ('a', 'b'", 21, None),
        ("params.x IN ('a', 1)", 18, "1"),
        ("params.x NOT = 'a'", 13, "="),
        ("params.x IS 'a'", 12, "'a'"),
        ("params.x IS NOT", 15, None),
        ("attributes.status = 'DONE'", 20, "'DONE'"),
        ("attributes.status > 'A'", 18, ">"),
        ("attributes.start_time > '2024-01-01'", 24, "'2024-01-01'"),
        ("attributes.start_time LIKE '1%'", 22, "LIKE"),
        ("attributes.run_name = 5", 22, "5"),
        # structure
        ("metrics.a > 1 metrics.b > 2", 14, "metrics.b"),
        ("metrics.a > 1 and", 17, None),
        ("metrics.a > 1 or or metrics.b > 1", 17, "or"),
        ("metrics.a > 1 && metrics.b > 2", 14, "&"),
        ("metrics.a > 1 and not metrics.b > 2", 18, "not"),
    ],
)
def test_malformed_filter_raises_with_position(db, filter_string, position, token):
    before = dump(db)
    with pytest.raises(SearchSyntaxError) as err:
        build_search_sql(None, filter_string)
    assert err.value.position == position
    assert err.value.token == token
    assert f"position {position}" in str(err.value)
    with pytest.raises(SearchSyntaxError):
        count_search_sql(None, filter_string)
    assert dump(db) == before


def test_error_message_names_position_token_and_fix():
    with pytest.raises(SearchSyntaxError) as err:
        build_search_sql(None, "metrics.acc > 0.5 and metrics.loss =")
    assert str(err.value) == (
        "Invalid filter at position 36 (end of input): expected a value after '='"
    )
    with pytest.raises(SearchSyntaxError) as err:
        build_search_sql(None, "metrics.acc = ; DROP TABLE runs")
    assert str(err.value) == (
        "Invalid filter at position 14 near ';': "
        "';' is not allowed: a filter is one expression, not statements"
    )
    with pytest.raises(SearchSyntaxError) as err:
        build_search_sql(None, "attributes.colour = 'red'")
    message = str(err.value)
    assert "'colour'" in message
    assert "artifact_uri, end_time, experiment_id, host, parent_run_id" in message
    with pytest.raises(SearchSyntaxError) as err:
        build_search_sql(None, "params.alpha = 0.5")
    assert "quote the value, as in '0.5'" in str(err.value)


@pytest.mark.parametrize(
    "filter_string",
    [
        "params.model = 'a''; DROP TABLE runs; --'",
        "params.model = 'tree'' OR ''1''=''1'",
        'params.model = "x"" OR 1=1 --"',
        "params.model = 'x\\' OR 1=1 --'",
        "tags.`team'; DROP TABLE tags; --` = 'vision'",
        'tags."team"" OR 1=1" = \'x\'',
        "params.model IN ('a); DROP TABLE runs; --', 'b')",
        "params.model LIKE '%'' OR 1=1 --'",
        "attributes.run_name = 'x'' OR ''1''=''1'",
    ],
)
def test_hostile_quoted_values_are_plain_values(db, filter_string):
    before = dump(db)
    sql, params = build_search_sql(None, filter_string)
    assert "DROP" not in sql and "OR 1=1" not in sql and "'" not in sql
    assert search(db, filter_string) == []
    assert dump(db) == before
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (6,)


def test_hostile_value_is_matched_literally(db):
    db.execute("INSERT INTO params VALUES ('r6', 'model', 'a''; DROP TABLE runs; --')")
    assert search(db, "params.model = 'a''; DROP TABLE runs; --'") == ["r6"]
    assert search(db, 'params.model = "a\'; DROP TABLE runs; --"') == ["r6"]


def test_sql_text_holds_no_user_input():
    filter_string = (
        "metrics.`zz key` > 123.5 and params.qq_param = 'vv_value' "
        "or tags.tt_tag IN ('ii_one', 'ii_two') or attributes.run_name LIKE 'll_%'"
    )
    sql, params = build_search_sql([7], filter_string, order_by=["metrics.oo_metric DESC"])
    for fragment in ("zz", "123", "qq", "vv", "tt", "ii", "ll_", "oo", "7"):
        assert fragment not in sql
    assert params == [
        "oo_metric",
        7,
        "active",
        "zz key",
        123.5,
        "qq_param",
        "vv_value",
        "tt_tag",
        "ii_one",
        "ii_two",
        "ll?*",
        1000,
        0,
    ]


def test_keyed_lookups_use_the_primary_key_index(db):
    sql, params = build_search_sql(
        None,
        "metrics.acc > 0.5 and params.model = 'tree' or tags.team IS NULL",
        order_by=["metrics.loss DESC", "params.lr"],
    )
    plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert [step for step in plan.split(" | ") if step.startswith("SCAN")] == ["SCAN r"]
    for table in ("latest_metrics", "params", "tags"):
        assert f"INDEX sqlite_autoindex_{table}_1 (run_id=? AND key=?)" in plan


# -- dialects: one syntax tree, SQL per database ----------------------------------------------


def test_the_postgresql_dialect_compiles_the_same_filter_with_its_own_marks_and_matchers():
    from store.sql.dialect import POSTGRESQL

    sql, params = build_search_sql(
        [1],
        "params.model LIKE 'tr%' and tags.team ILIKE 'vis%'",
        max_results=None,
        offset=5,
        dialect=POSTGRESQL,
    )
    assert "?" not in sql
    assert "x.value LIKE %s ESCAPE ''" in sql
    assert "x.value ILIKE %s ESCAPE ''" in sql
    assert "rowid" not in sql
    assert sql.endswith(" OFFSET %s")
    assert params == [1, "active", "model", "tr%", "team", "vis%", 5]


def test_the_registry_search_reuses_the_grammar_through_its_own_vocabulary():
    from store.filters import Comparison, Junction, Name, parse_filter
    from store.registry import _MODEL_ATTRIBUTES, _vocabulary

    node = parse_filter("name LIKE 'a%' or tags.team = 'x'", _vocabulary(_MODEL_ATTRIBUTES))
    assert node == Junction(
        "OR",
        (
            Comparison(Name("attributes", "name", "string"), "LIKE", ("a%",)),
            Comparison(Name("tags", "team", "string"), "=", ("x",)),
        ),
    )
    with pytest.raises(SearchSyntaxError, match="unknown name 'acc'; allowed: name, description"):
        parse_filter("acc = 'x'", _vocabulary(_MODEL_ATTRIBUTES))
