"""The syntax tree of :mod:`store.filters` compiled to parametrized SQL, per dialect.

Every key and value becomes a parameter; the SQL text is assembled only from this module's
fixed fragments and the fixed table and column names of a :class:`Target`. Runs are searched
through :data:`RUNS`; the registry describes its own tables with a Target and reuses
:func:`compile_filter` and :func:`order_terms`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from store.errors import InvalidValueError, SearchSyntaxError
from store.filters import (
    LIFECYCLE_STAGES,
    Junction,
    Node,
    Vocabulary,
    parse_filter,
    parse_order_by,
)
from store.filters import RUNS as RUN_NAMES
from store.sql.dialect import SQLITE, Dialect
from store.sql.keyset import Term, Types, after_condition, valid_cursor
from store.sql.plan import Driver, choose_driver

__all__ = [
    "RUNS",
    "Target",
    "build_search_sql",
    "compile_filter",
    "count_run_ids",
    "count_search_sql",
    "order_terms",
    "parse_order_by",
]


@dataclass(frozen=True)
class Target:
    """Where the names of a search live.

    :param alias: the alias of the searched table; attributes are its columns.
    :param keyed: kind (metrics, params, tags) -> (table of key/value rows, the condition
        joining a row of it, written with ``{x}`` for its alias, to the searched row).
    """

    alias: str
    keyed: Mapping[str, tuple[str, str]]


RUNS = Target(
    alias="r",
    keyed={
        "metrics": ("latest_metrics", "{x}.run_id = r.run_id"),
        "params": ("params", "{x}.run_id = r.run_id"),
        "tags": ("tags", "{x}.run_id = r.run_id"),
    },
)


def _condition(
    column: str, op: str, values: tuple[Any, ...], params: list[Any], dialect: Dialect
) -> str:
    """SQL for `column op values`; column is one of the fixed names."""
    if op in ("IN", "NOT IN"):
        params.extend(values)
        return f"{column} {op} ({dialect.marks(len(values))})"
    if op in ("LIKE", "NOT LIKE"):
        return dialect.like(column, op.startswith("NOT"), values[0], params)
    if op in ("ILIKE", "NOT ILIKE"):
        return dialect.ilike(column, op.startswith("NOT"), values[0], params)
    params.append(values[0])
    return f"{column} {op} {dialect.mark}"


def compile_filter(node: Node, target: Target, params: list[Any], dialect: Dialect = SQLITE) -> str:
    """The WHERE condition of a filter's syntax tree; its parameters are appended to params."""
    if isinstance(node, Junction):
        return _junction(node.op, node.items, target, params, dialect)
    name = node.name
    if name.kind == "datasets":
        return _dataset_condition(node, target, params, dialect)
    if name.kind == "attributes":
        column = f"{target.alias}.{name.key}"
        if node.op.startswith("IS"):
            return f"{column} {node.op}"
        return _condition(column, node.op, node.values, params, dialect)
    table, join = target.keyed[name.kind]
    exists = (
        f"EXISTS (SELECT 1 FROM {table} x WHERE {join.format(x='x')} AND x.key = {dialect.mark}"
    )
    params.append(name.key)
    if node.op == "IS NULL":
        return f"NOT {exists})"
    if node.op == "IS NOT NULL":
        return f"{exists})"
    return f"{exists} AND {_condition('x.value', node.op, node.values, params, dialect)})"


# the run's dataset inputs; the dataset's name/digest, or the input's context tag
_DATASET_INPUTS = (
    "EXISTS (SELECT 1 FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id "
    "WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' "
    "AND i.destination_id = {alias}.run_id"
)
_CONTEXT_TAG = "mlflow.data.context"


def _dataset_condition(node: Node, target: Target, params: list[Any], dialect: Dialect) -> str:
    """``datasets.name|digest|context``: the run has a dataset input that matches (IS NULL:
    has none with that key)."""
    assert not isinstance(node, Junction)
    exists = _DATASET_INPUTS.format(alias=target.alias)
    if node.name.key == "context":
        exists += (
            " AND EXISTS (SELECT 1 FROM input_tags t WHERE t.input_uuid = i.input_uuid "
            f"AND t.name = {dialect.mark}"
        )
        params.append(_CONTEXT_TAG)
        column, close = "t.value", "))"
    else:
        column, close = f"d.{node.name.key}", ")"
    if node.op == "IS NULL":
        return f"NOT {exists}{close}"
    if node.op == "IS NOT NULL":
        return f"{exists}{close}"
    return f"{exists} AND {_condition(column, node.op, node.values, params, dialect)}{close}"


_GROUP = 8  # comparisons per parenthesized group of a long AND/OR chain


def _size(node: Node) -> int:
    return sum(_size(i) for i in node.items) if isinstance(node, Junction) else 1


def _junction(
    op: str, items: tuple[Node, ...], target: Target, params: list[Any], dialect: Dialect
) -> str:
    """SQL of an AND/OR chain shaped for SQLite's two limits on how an expression nests.

    SQLite parses ``a OR b OR c`` into a tree as deep as the chain is long and refuses trees
    deeper than 1000; its parser's stack (~100 entries) overflows on deeply nested parentheses,
    above all on an operator still waiting for a parenthesized right side. So the largest
    nested junctions come first (their '(' opens before any operator waits), and the plain
    comparisons after them go in groups of ``_GROUP``: a chain of 1000 is ~125 deep, not 1000.
    """
    junctions = sorted((i for i in items if isinstance(i, Junction)), key=_size, reverse=True)
    parts = [compile_filter(j, target, params, dialect) for j in junctions]
    plain = [i for i in items if not isinstance(i, Junction)]
    if len(plain) <= _GROUP:
        parts += [compile_filter(i, target, params, dialect) for i in plain]
    else:
        for start in range(0, len(plain), _GROUP):
            chunk = plain[start : start + _GROUP]
            inner = f" {op} ".join(compile_filter(i, target, params, dialect) for i in chunk)
            parts.append(f"({inner})")
    return "(" + f" {op} ".join(parts) + ")"


def order_columns(
    order: Sequence[tuple[str, str, bool]], target: Target, params: list[Any], dialect: Dialect
) -> tuple[str, list[tuple[str, bool]]]:
    """(LEFT JOINs, [(column, ascending)]) for parsed order_by clauses."""
    joins: list[str] = []
    columns: list[tuple[str, bool]] = []
    for i, (kind, key, ascending) in enumerate(order):
        if kind == "attributes":
            column = f"{target.alias}.{key}"
        else:
            # One LEFT JOIN per keyed clause, on the (owner, key) primary key.
            alias = f"o{i}"
            table, join = target.keyed[kind]
            joins.append(
                f" LEFT JOIN {table} {alias} ON {join.format(x=alias)}"
                f" AND {alias}.key = {dialect.mark}"
            )
            params.append(key)
            column = f"{alias}.value"
        columns.append((column, ascending))
    return "".join(joins), columns


def order_terms(
    order: Sequence[tuple[str, str, bool]], target: Target, params: list[Any], dialect: Dialect
) -> tuple[str, list[str]]:
    """(LEFT JOINs, ORDER BY terms) for parsed order_by clauses; missing values come last."""
    joins, columns = order_columns(order, target, params, dialect)
    return joins, [_term(c, a, True) for c, a in columns]


def _term(column: str, ascending: bool, missing_last: bool) -> str:
    """One ORDER BY term; missing_last: NULLs after every value."""
    term = f"{column} {'ASC' if ascending else 'DESC'}"
    return f"{column} IS NULL, {term}" if missing_last else term


def _experiment_ids(experiment_ids: Sequence[Any]) -> list[int]:
    ids = []
    for experiment_id in experiment_ids:
        try:
            if isinstance(experiment_id, bool):
                raise TypeError
            ids.append(int(experiment_id))
        except (TypeError, ValueError):
            raise InvalidValueError(
                f"experiment id {experiment_id!r} is not an integer; pass ids such as [1, 2]"
            )
    return ids


def _scope(
    experiment_ids: Sequence[Any] | None, lifecycle_stage: str | None, dialect: Dialect
) -> tuple[list[str], list[Any]]:
    """The conditions (and parameters) selecting the runs searched, before the filter."""
    conditions: list[str] = []
    params: list[Any] = []
    if experiment_ids is not None:
        ids = _experiment_ids(experiment_ids)
        if ids:
            conditions.append(f"r.experiment_id IN ({dialect.marks(len(ids))})")
            params.extend(ids)
        else:
            conditions.append("0 = 1")
    if lifecycle_stage is not None:
        if lifecycle_stage not in LIFECYCLE_STAGES:
            raise InvalidValueError(
                f"lifecycle_stage {lifecycle_stage!r} is not one of 'active', 'deleted' or None"
            )
        conditions.append(f"r.lifecycle_stage = {dialect.mark}")
        params.append(lifecycle_stage)
    return conditions, params


def _where(
    experiment_ids: Sequence[Any] | None,
    filter_string: str,
    lifecycle_stage: str | None,
    dialect: Dialect,
) -> tuple[str, list[Any]]:
    where, params, _ = _where_and_filter(experiment_ids, filter_string, lifecycle_stage, dialect)
    return where, params


def _where_and_filter(
    experiment_ids: Sequence[Any] | None,
    filter_string: str,
    lifecycle_stage: str | None,
    dialect: Dialect,
) -> tuple[str, list[Any], Node | None]:
    """The WHERE clause and parameters of a search, and its parsed filter."""
    if not isinstance(filter_string, str):
        raise InvalidValueError(f"filter_string must be a string, not {filter_string!r}")
    conditions, params = _scope(experiment_ids, lifecycle_stage, dialect)
    node = parse_filter(filter_string)
    if node is not None:
        conditions.append(compile_filter(node, RUNS, params, dialect))
    return _clause(conditions), params, node


def _driven(
    execute: Any,
    node: Node | None,
    experiment_ids: Sequence[Any] | None,
    lifecycle_stage: str | None,
    dialect: Dialect,
    wanted: int | None,
) -> tuple[Driver, str, list[Any]] | None:
    """The comparison a search reads first where the dialect asks (see store.sql.plan), and
    the WHERE clause and parameters left to test on its runs; None: the plain plan."""
    if node is None or not dialect.counts_selectivity:
        return None
    conditions, params = _scope(experiment_ids, lifecycle_stage, dialect)
    tables = {kind: table for kind, (table, _) in RUNS.keyed.items()}
    scope = (_clause(conditions), list(params))
    driver = choose_driver(execute, node, scope, tables, _condition, dialect, wanted)
    if driver is None:
        return None
    rest = driver.rest(node)
    if rest is not None:
        conditions.append(compile_filter(rest, RUNS, params, dialect))
    return driver, _clause(conditions), params


def _clause(conditions: list[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def build_search_sql(
    experiment_ids: Sequence[Any] | None,
    filter_string: str = "",
    order_by: list[str] | None = None,
    max_results: int | None = 1000,
    offset: int = 0,
    lifecycle_stage: str | None = "active",
    dialect: Dialect = SQLITE,
) -> tuple[str, list]:
    """SQL selecting ``r.run_id`` from ``runs r`` matching the filter, ordered, limited.

    :param experiment_ids: experiments to search; None searches all.
    :param filter_string: a filter in the grammar of :mod:`store.filters`; "" matches every run.
    :param order_by: clauses ``name [ASC|DESC]``; default start_time DESC. Runs lacking the
        key come last; run_id breaks ties.
    :param max_results: at most this many run ids; None for no limit.
    :param offset: skip this many matching runs first.
    :param lifecycle_stage: "active", "deleted", or None for both.
    :param dialect: the database the SQL is for.
    :return: the SQL text and its parameters.
    :raises SearchSyntaxError: the filter or an order_by clause is malformed.
    :raises InvalidValueError: another argument is out of range.
    """
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0
    ):
        raise InvalidValueError(f"max_results must be an integer >= 0 or None, not {max_results!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidValueError(f"offset must be an integer >= 0, not {offset!r}")
    order = parse_order_by(order_by) or [("attributes", "start_time", False)]

    join_params: list[Any] = []
    joins, terms = order_terms(order, RUNS, join_params, dialect)
    if not order_by and dialect.insertion_order:  # runs started in the same millisecond
        terms.append(f"r.{dialect.insertion_order} DESC")  # the later insert first
    if ("attributes", "run_id") not in [(kind, key) for kind, key, _ in order]:
        terms.append("r.run_id ASC")

    where, where_params = _where(experiment_ids, filter_string, lifecycle_stage, dialect)
    sql = "SELECT r.run_id FROM runs r" + joins + where + " ORDER BY " + ", ".join(terms)
    params = join_params + where_params
    sql += dialect.limit(max_results, offset, params)
    return sql, params


def count_search_sql(
    experiment_ids: Sequence[Any] | None,
    filter_string: str = "",
    lifecycle_stage: str | None = "active",
    dialect: Dialect = SQLITE,
) -> tuple[str, list]:
    """SQL counting the runs that :func:`build_search_sql` would select without a limit.

    :return: the SQL text (one row, one column) and its parameters.
    :raises SearchSyntaxError: the filter is malformed.
    """
    where, params = _where(experiment_ids, filter_string, lifecycle_stage, dialect)
    return "SELECT COUNT(*) FROM runs r" + where, params


def count_run_ids(
    execute: Any,
    experiment_ids: Sequence[Any] | None,
    filter_string: str = "",
    lifecycle_stage: str | None = "active",
    dialect: Dialect = SQLITE,
) -> int:
    """How many runs :func:`search_run_ids` finds without a limit; the count reads the rarest
    comparison's rows first where that is cheaper (see store.sql.plan).
    ``execute(sql, params)`` returns the rows of a statement."""
    where, params, node = _where_and_filter(experiment_ids, filter_string, lifecycle_stage, dialect)
    driven = _driven(execute, node, experiment_ids, lifecycle_stage, dialect, None)
    source, source_params = "runs r", list[Any]()
    if driven is not None:
        driver, where, params = driven
        source = driver.source(_condition, source_params, dialect)
    return int(execute(f"SELECT COUNT(*) FROM {source}{where}", source_params + params)[0][0])


def entity_search_sql(
    select: str,
    table: str,
    target: Target,
    vocabulary: Vocabulary,
    what: str,
    filter_string: str,
    order_by: Sequence[str] | str | None,
    default_order: Sequence[tuple[str, bool]],
    tie_breakers: Sequence[tuple[str, bool]],
    max_results: int | None,
    dialect: Dialect = SQLITE,
) -> tuple[str, list[Any]]:
    """SQL selecting ``select`` from ``table`` (aliased as the target's alias) for a search of
    any other entity (the registry's models and versions): filter, order by attributes only.
    """
    params: list[Any] = []
    node = parse_filter(filter_string, vocabulary, f"{what} filter")
    where = "" if node is None else f" WHERE {compile_filter(node, target, params, dialect)}"
    order: list[tuple[str, bool]] = []
    for clause in [order_by] if isinstance(order_by, str) else order_by or []:
        for kind, column, ascending in parse_order_by([clause], vocabulary):
            if kind != "attributes":
                raise SearchSyntaxError(
                    f"Invalid order_by {clause!r}: order by "
                    f"{', '.join(vocabulary.attributes)}, not by tags",
                    0,
                    clause,
                )
            order.append((column, ascending))
    order = order or list(default_order)
    for column, ascending in tie_breakers:
        if column not in [c for c, _ in order]:
            order.append((column, ascending))
    _, terms = order_terms([("attributes", c, a) for c, a in order], target, params, dialect)
    sql = f"SELECT {select} FROM {table} {target.alias}{where} ORDER BY {', '.join(terms)}"
    if max_results is not None:
        sql += f" LIMIT {dialect.mark}"
        params.append(max_results)
    return sql, params


def _page_sql(
    where: str,
    where_params: list[Any],
    order: list[tuple[str, str, bool]],
    first_missing: bool,
    default_order: bool,
    limit: int | None,
    offset: int,
    dialect: Dialect,
    driver: Driver | None = None,
    after: list[Any] | None = None,
) -> tuple[str, list[Any], list[Term]]:
    """One of the two halves of a search (see :func:`search_run_ids`): the runs that have a
    value for the first ordering (``first_missing`` False), or those that have none. With a
    driver, its rows are read first (store.sql.plan), then their runs, then the ordering's.
    Selects each run's id then its sort key (the half's terms, returned too); with ``after``
    (a sort key of this half), only the runs sorting after it."""
    kind, key, ascending = order[0]
    params: list[Any] = []
    runs = "runs r" if driver is None else driver.source(_condition, params, dialect)
    if kind == "attributes":
        column, joins = f"r.{key}", runs
    else:
        table, join = RUNS.keyed[kind]
        # Runs with the key: an inner join, so the (key, value, run_id) index can lead the plan
        # and a LIMIT stops the walk early; runs without it: a left join keeping the NULLs.
        on = f"{join.format(x='f')} AND f.key = {dialect.mark}"
        if first_missing:
            joins = f"{runs} LEFT JOIN {table} f ON {on}"
        elif driver is None:
            joins = dialect.leading_join(f"{table} f", "runs r", on)
        else:  # the driver's runs first; CROSS JOIN keeps f from leading instead
            joins = f"{runs} CROSS JOIN {table} f ON {on}"
        params.append(key)
        column = "f.value"
    rest_joins, rest = order_columns(order[1:], RUNS, params, dialect)
    terms: list[Term] = [] if first_missing else [(column, ascending, False)]
    terms += [(c, a, True) for c, a in rest]
    if default_order and dialect.insertion_order:  # runs started in the same millisecond
        terms.append((f"r.{dialect.insertion_order}", False, False))
    if ("attributes", "run_id") not in [(k, n) for k, n, _ in order] or not terms:
        terms.append(("r.run_id", True, False))  # (ordered by run_id alone: no run lacks it)
    condition = f"{column} IS {'' if first_missing else 'NOT '}NULL"
    where = f"{where} AND {condition}" if where else f" WHERE {condition}"
    params += where_params
    if after is not None:
        where += " AND " + after_condition(terms, after, params, dialect)
    select = ", ".join(["r.run_id"] + [t[0] for t in terms])
    order_sql = ", ".join(_term(*t) for t in terms)
    sql = f"SELECT {select} FROM {joins}{rest_joins}{where} ORDER BY {order_sql}"
    return sql + dialect.limit(limit, offset, params), params, terms


def search_run_ids(
    execute: Any,
    experiment_ids: Sequence[Any] | None,
    filter_string: str = "",
    order_by: list[str] | None = None,
    max_results: int | None = 1000,
    offset: int = 0,
    lifecycle_stage: str | None = "active",
    dialect: Dialect = SQLITE,
) -> list[str]:
    """The run ids :func:`build_search_sql` selects, found in two steps that stay fast as the
    store grows (see :func:`search_run_page`)."""
    args = (filter_string, order_by, max_results, offset, lifecycle_stage, dialect)
    return search_run_page(execute, experiment_ids, *args)[0]


def search_run_page(
    execute: Any,
    experiment_ids: Sequence[Any] | None,
    filter_string: str = "",
    order_by: list[str] | None = None,
    max_results: int | None = 1000,
    offset: int = 0,
    lifecycle_stage: str | None = "active",
    dialect: Dialect = SQLITE,
    after: Any = None,
) -> tuple[list[str], list[list[Any]]]:
    """The run ids :func:`build_search_sql` selects and each one's sort key (a cursor: pass
    the last one as ``after`` for the page that follows it, see store.sql.keyset).

    Runs lacking the first ordering's value come after all others, so the page is read first
    from the runs that have it, ordered by it alone: with the ``(key, value, run_id)`` index of
    metrics, params and tags (or ``idx_runs_page``) the database walks the index in order,
    tests the filter run by run and stops at the page's end, instead of filtering every run and
    sorting them all (what ``... IS NULL, value DESC`` forces). Only a page reaching past those
    runs reads the ones without a value. Where a comparison of the filter matches few runs, its
    rows are read first instead (store.sql.plan). ``execute(sql, params)`` returns the rows of a
    statement. ``after``: the runs after that sort key, ``offset`` ignored; a cursor that does
    not fit this search's ordering is ignored (the offset counts).
    """
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0
    ):
        raise InvalidValueError(f"max_results must be an integer >= 0 or None, not {max_results!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidValueError(f"offset must be an integer >= 0, not {offset!r}")
    order = parse_order_by(order_by) or [("attributes", "start_time", False)]
    where, where_params, node = _where_and_filter(
        experiment_ids, filter_string, lifecycle_stage, dialect
    )
    if max_results == 0:
        return [], []
    if not valid_cursor(after, _key_types(order, not order_by, dialect)):
        after = None
    elif after is not None:
        offset = 0
    wanted = None if max_results is None else offset + max_results
    driven = _driven(execute, node, experiment_ids, lifecycle_stage, dialect, wanted)
    driver = None
    if driven is not None:
        driver, where, where_params = driven
    page = _Page(execute, (where, where_params, order), not order_by, dialect, driver)
    return page.read(max_results, offset, after)


_NUMBER: Types = (int, float)
_COLUMN_TYPES = {column: (int,) if kind == "number" else (str,)
                 for column, kind in RUN_NAMES.attributes.values()}  # fmt: skip


def _key_types(
    order: list[tuple[str, str, bool]], default_order: bool, dialect: Dialect
) -> tuple[list[Types], list[Types]]:
    """The value types of each half's sort key (see :func:`_page_sql`'s terms)."""
    types: list[Types] = [
        _NUMBER if kind == "metrics" else _COLUMN_TYPES[key] if kind == "attributes" else (str,)
        for kind, key, _ in order
    ]
    if default_order and dialect.insertion_order:
        types.append((int,))
    if ("attributes", "run_id") not in [(k, n) for k, n, _ in order]:
        types.append((str,))
    return types, types[1:] or [(str,)]


@dataclass
class _Page:
    """The two halves of one search (see :func:`search_run_page`)."""

    execute: Any
    pieces: tuple[str, list[Any], list[tuple[str, str, bool]]]
    default_order: bool
    dialect: Dialect
    driver: Driver | None

    def half(
        self, missing: bool, limit: int | None, offset: int, after: list[Any] | None = None
    ) -> list[tuple[str, list[Any]]]:
        """(run id, cursor) of a half's runs: those with a first ordering value or without."""
        sql, params, _ = _page_sql(
            *self.pieces, missing, self.default_order, limit, offset, self.dialect, self.driver,
            after,
        )  # fmt: skip
        return [(row[0], [int(missing), *row[1:]]) for row in self.execute(sql, params)]

    def read(
        self, limit: int | None, offset: int, after: list[Any] | None
    ) -> tuple[list[str], list[list[Any]]]:
        if after is not None and after[0] == 1:  # the cursor is past every run with a value
            rows = self.half(True, limit, 0, after[1:])
            return [r for r, _ in rows], [k for _, k in rows]
        rows = self.half(False, limit, offset, None if after is None else after[1:])
        if limit is not None and len(rows) == limit:
            return [r for r, _ in rows], [k for _, k in rows]
        if rows or not offset:
            skipped = 0  # the page started inside the runs with a value: none of the rest skipped
        else:  # the page starts past them: skip the rest of the offset among those without
            sql, params, _ = _page_sql(
                *self.pieces, False, self.default_order, None, 0, self.dialect, self.driver
            )
            total = self.execute(f"SELECT COUNT(*) FROM ({sql}) AS page", params)[0][0]
            skipped = offset - int(total)
        left = None if limit is None else limit - len(rows)
        rows += self.half(True, left, max(0, skipped))
        return [r for r, _ in rows], [k for _, k in rows]
