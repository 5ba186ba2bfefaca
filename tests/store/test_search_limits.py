"""Large filters: within the limits every shape runs on SQLite; past them, a SearchSyntaxError
naming the limit and how to narrow the filter (never a sqlite3 error or a RecursionError)."""

from __future__ import annotations

import itertools

import pytest

import autolog
from store import search
from store.errors import SearchSyntaxError


@pytest.fixture
def runs(store):
    """Runs 0..9 with param a = str(i), metric m = i and tag t = 'even'/'odd'."""
    ids = []
    for i in range(10):
        run = store.create_run("0", f"run{i}", tags={"t": "odd" if i % 2 else "even"})
        store.log_batch(run.info.run_id, metrics=[("m", float(i), 0, 0)], params={"a": str(i)})
        store.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    return ids


def names(store, filter_string: str, order_by: list[str] | None = None) -> list[str]:
    found = store.search_runs(["0"], filter_string, order_by or ["metrics.m ASC"])
    return [r.info.run_name for r in found]


def test_a_thousand_ored_terms_run(store, runs):
    # SQLite alone refuses this chain: "Expression tree is too large (maximum depth 1000)".
    f = " or ".join(f"params.a = '{i}'" for i in range(search.MAX_COMPARISONS - 1, -1, -1))
    assert names(store, f) == [f"run{i}" for i in range(10)]
    f = " and ".join(f"params.a != '{i}'" for i in range(3, search.MAX_COMPARISONS + 3))
    assert names(store, f) == ["run0", "run1", "run2"]


def test_one_comparison_more_than_the_limit_is_a_syntax_error(store, runs):
    f = " or ".join(f"params.a = '{i}'" for i in range(search.MAX_COMPARISONS + 1))
    with pytest.raises(SearchSyntaxError) as caught:
        names(store, f)
    message = str(caught.value)
    assert "more than 1000 comparisons (the limit)" in message
    assert "single IN (...) list instead of OR'ed comparisons" in message
    assert caught.value.position == f.rindex("params.a")
    assert caught.value.token == "params.a"


def test_the_fluent_search_raises_the_same_error(runs):
    f = " or ".join(f"metrics.m = {i}" for i in range(5000))
    with pytest.raises(SearchSyntaxError, match=r"more than 1000 comparisons \(the limit\)"):
        autolog.search_runs(filter_string=f, output_format="list")


def test_in_lists_up_to_the_limit_run_and_one_value_more_is_an_error(store, runs):
    # the limit counts every list together: 9991 + 9 = 10000 values is allowed
    values = ", ".join(f"'{i}'" for i in range(search.MAX_IN_VALUES - 10, -1, -1))
    assert values.count(",") + 1 == 9991
    others = "('0', '1', '2', '3', '4', '5', '6', '7', '8')"
    f = f"params.a IN ({values}) and params.a NOT IN {others}"
    assert names(store, f) == ["run9"]
    with pytest.raises(SearchSyntaxError) as caught:
        names(store, f"params.a IN ({values}, 'one more') and params.a NOT IN {others}")
    assert "more than 10000 values in IN lists (the limit, all lists together)" in str(caught.value)
    assert caught.value.token == "'8'"


def _alternating(depth: int, extra: int, counter: itertools.count) -> str:
    """depth nested parentheses, AND and OR alternating, each level with `extra` comparisons
    on keys no run has (so a run matches through the innermost comparison only)."""
    f = "params.a = '7'"
    for level in range(depth):
        op = "and" if level % 2 else "or"
        if op == "and":  # a run lacking the key matches IS NULL: AND keeps it true
            others = [f"params.k{next(counter)} IS NULL" for _ in range(extra)]
        else:
            others = [f"params.k{next(counter)} = 'x'" for _ in range(extra)]
        f = " ".join(f"{o} {op}" for o in others) + f" ({f})"
    return f


@pytest.mark.parametrize(("extra", "inner"), [(1, 1), (14, 1), (1, 900), (3, 700)])
def test_the_deepest_allowed_nesting_runs_with_long_chains_inside(store, runs, extra, inner):
    counter = itertools.count()
    f = _alternating(search.MAX_DEPTH, extra, counter)
    if inner > 1:
        ors = " or ".join(f"params.k{next(counter)} = 'x'" for _ in range(inner))
        f = f.replace("params.a = '7'", f"params.a = '7' or {ors}")
    assert f.count("(") == search.MAX_DEPTH
    assert names(store, f) == ["run7"]


def test_balanced_nesting_of_every_junction_runs(store, runs):
    counter = itertools.count()

    def tree(depth: int) -> str:
        if depth == 0:
            return f"params.k{next(counter)} = 'x'"
        op = "and" if depth % 2 else "or"
        return f"({tree(depth - 1)}) {op} ({tree(depth - 1)})"

    f = f"({tree(9)}) or params.a = '3'"
    assert next(counter) == 512
    assert names(store, f) == ["run3"]


def test_nesting_deeper_than_the_limit_is_a_syntax_error(store, runs):
    for depth in (search.MAX_DEPTH + 1, 100_000):
        f = "(" * depth + "params.a = '1'" + ")" * depth
        with pytest.raises(SearchSyntaxError) as caught:
            names(store, f)
        message = str(caught.value)
        assert "parentheses nested deeper than 64 levels (the limit)" in message
        assert "remove redundant parentheses" in message
        assert caught.value.position == search.MAX_DEPTH


def test_a_filter_longer_than_the_limit_is_refused_before_parsing(store, runs):
    f = "params.a = '" + "x" * search.MAX_FILTER_LENGTH + "'"
    with pytest.raises(SearchSyntaxError) as caught:
        names(store, f)
    assert str(caught.value) == (
        "Invalid filter: 500,013 characters, more than 500,000 (the limit); narrow the filter: "
        "put the values of one key in a single IN (...) list instead of OR'ed comparisons, "
        "filter on fewer keys, or split the search into several searches"
    )
    assert caught.value.position == search.MAX_FILTER_LENGTH
    ok = "params.a = '" + "x" * (search.MAX_FILTER_LENGTH - 13) + "'"
    assert len(ok) == search.MAX_FILTER_LENGTH
    assert names(store, ok) == []


def test_order_by_clauses_past_the_limit_are_an_error(store, runs):
    clauses = [f"params.k{i} DESC" for i in range(search.MAX_ORDER_BY - 1)] + ["metrics.m DESC"]
    assert names(store, "", clauses) == [f"run{i}" for i in range(9, -1, -1)]
    with pytest.raises(SearchSyntaxError, match=r"17 clauses, more than 16 \(the limit\)"):
        names(store, "", [*clauses, "params.a"])


def test_count_runs_applies_the_same_limits(store, runs):
    f = " or ".join(f"params.a = '{i}'" for i in range(search.MAX_COMPARISONS))
    assert store.count_runs(["0"], f) == 10
    with pytest.raises(SearchSyntaxError, match="the limit"):
        store.count_runs(["0"], f + " or params.a = 'x'")


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_the_ui_answers_400_with_the_message(store, runs):
    from starlette.testclient import TestClient

    from autolog.ui import create_app

    f = " or ".join(f"params.a = '{i}'" for i in range(1500))
    with TestClient(create_app(store, allowed={"testserver"})) as client:
        r = client.get("/api/runs", params={"filter": f})
        assert r.status_code == 400
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "more than 1000 comparisons (the limit)" in r.json()["message"]
        page = client.get("/runs", params={"filter": f})
        assert page.status_code == 400
        assert "more than 1000 comparisons (the limit)" in page.text
        ok = " or ".join(f"params.a = '{i}'" for i in range(1000))
        r = client.get("/api/runs", params={"filter": ok})
        assert r.status_code == 200 and r.json()["total"] == 10
