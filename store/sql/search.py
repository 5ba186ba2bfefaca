"""The filter grammar of :mod:`store.filters` compiled to parametrized SQL over the store's tables."""

from __future__ import annotations

from typing import Any

from store.errors import InvalidValueError, SearchSyntaxError
from store.filters import _TABLES, LIFECYCLE_STAGES, _Junction, _Name, _Parser

__all__ = ["build_search_sql", "count_search_sql", "parse_order_by"]

# ----------------------------------------------------------------------------- SQL


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern as a GLOB pattern: GLOB is SQLite's case-sensitive matcher."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _condition(column: str, op: str, values: tuple[Any, ...], params: list[Any]) -> str:
    """SQL for `column op values`; column is one of this module's fixed names."""
    if op in ("IN", "NOT IN"):
        params.extend(values)
        return f"{column} {op} ({', '.join('?' * len(values))})"
    if op in ("LIKE", "NOT LIKE"):
        params.append(_like_to_glob(values[0]))
        return f"{column} {op.replace('LIKE', 'GLOB')} ?"
    if op in ("ILIKE", "NOT ILIKE"):
        params.append(values[0])
        return f"lower({column}) {op.replace('ILIKE', 'LIKE')} lower(?)"
    params.append(values[0])
    return f"{column} {op} ?"


def _compile(node: Any, params: list[Any]) -> str:
    if isinstance(node, _Junction):
        return "(" + f" {node.op} ".join(_compile(item, params) for item in node.items) + ")"
    name: _Name = node.name
    if name.kind == "attributes":
        column = f"r.{name.key}"
        if node.op.startswith("IS"):
            return f"{column} {node.op}"
        return _condition(column, node.op, node.values, params)
    exists = f"EXISTS (SELECT 1 FROM {_TABLES[name.kind]} x WHERE x.run_id = r.run_id AND x.key = ?"
    params.append(name.key)
    if node.op == "IS NULL":
        return f"NOT {exists})"
    if node.op == "IS NOT NULL":
        return f"{exists})"
    return f"{exists} AND {_condition('x.value', node.op, node.values, params)})"


def _where(
    experiment_ids: list[int] | None, filter_string: str, lifecycle_stage: str | None
) -> tuple[str, list[Any]]:
    if not isinstance(filter_string, str):
        raise InvalidValueError(f"filter_string must be a string, not {filter_string!r}")
    conditions: list[str] = []
    params: list[Any] = []
    if experiment_ids is not None:
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
        if ids:
            conditions.append(f"r.experiment_id IN ({', '.join('?' * len(ids))})")
            params.extend(ids)
        else:
            conditions.append("0 = 1")
    if lifecycle_stage is not None:
        if lifecycle_stage not in LIFECYCLE_STAGES:
            raise InvalidValueError(
                f"lifecycle_stage {lifecycle_stage!r} is not one of 'active', 'deleted' or None"
            )
        conditions.append("r.lifecycle_stage = ?")
        params.append(lifecycle_stage)
    node = _Parser(filter_string).parse_filter()
    if node is not None:
        conditions.append(_compile(node, params))
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


def parse_order_by(order_by: list[str] | None) -> list[tuple[str, str, bool]]:
    """Parse order_by clauses into ``[(kind, key, ascending)]``.

    :param order_by: clauses such as ``"metrics.acc DESC"``, ``"params.model"``,
        ``"start_time ASC"``; None or [] for none.
    :return: kind is metrics, params, tags or attributes; for attributes key is the column.
    :raises SearchSyntaxError: a clause is malformed; the message names the clause and position.
    """
    if order_by is None:
        return []
    if isinstance(order_by, str):
        order_by = [order_by]
    parsed = []
    for clause in order_by:
        if not isinstance(clause, str):
            raise SearchSyntaxError(f"Invalid order_by {clause!r}: expected a string", 0, None)
        parsed.append(_Parser(clause, f"order_by {clause!r}").parse_order())
    return parsed


def build_search_sql(
    experiment_ids: list[int] | None,
    filter_string: str = "",
    order_by: list[str] | None = None,
    max_results: int | None = 1000,
    offset: int = 0,
    lifecycle_stage: str | None = "active",
) -> tuple[str, list]:
    """SQL selecting ``r.run_id`` from ``runs r`` matching the filter, ordered, limited.

    :param experiment_ids: experiments to search; None searches all.
    :param filter_string: a filter in the grammar of this module; "" matches every run.
    :param order_by: clauses ``name [ASC|DESC]``; default start_time DESC. Runs lacking the
        key come last; run_id breaks ties.
    :param max_results: at most this many run ids; None for no limit.
    :param offset: skip this many matching runs first.
    :param lifecycle_stage: "active", "deleted", or None for both.
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

    joins: list[str] = []
    join_params: list[Any] = []
    terms: list[str] = []
    for i, (kind, key, ascending) in enumerate(order):
        if kind == "attributes":
            column = f"r.{key}"
        else:
            # One LEFT JOIN per keyed clause, on the (run_id, key) primary key.
            alias = f"o{i}"
            joins.append(
                f" LEFT JOIN {_TABLES[kind]} {alias}"
                f" ON {alias}.run_id = r.run_id AND {alias}.key = ?"
            )
            join_params.append(key)
            column = f"{alias}.value"
        terms.append(f"{column} IS NULL, {column} {'ASC' if ascending else 'DESC'}")
    if not order_by:  # runs started in the same millisecond: the later insert first
        terms.append("r.rowid DESC")
    if ("attributes", "run_id") not in [(kind, key) for kind, key, _ in order]:
        terms.append("r.run_id ASC")

    where, where_params = _where(experiment_ids, filter_string, lifecycle_stage)
    sql = "SELECT r.run_id FROM runs r" + "".join(joins) + where + " ORDER BY " + ", ".join(terms)
    params = join_params + where_params
    if max_results is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        params += [-1 if max_results is None else max_results, offset]
    return sql, params


def count_search_sql(
    experiment_ids: list[int] | None,
    filter_string: str = "",
    lifecycle_stage: str | None = "active",
) -> tuple[str, list]:
    """SQL counting the runs that :func:`build_search_sql` would select without a limit.

    :return: the SQL text (one row, one column) and its parameters.
    :raises SearchSyntaxError: the filter is malformed.
    """
    where, params = _where(experiment_ids, filter_string, lifecycle_stage)
    return "SELECT COUNT(*) FROM runs r" + where, params
