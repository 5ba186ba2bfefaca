"""Which table a run search reads first, where the database cannot tell (SQLite).

A search's plan walks the runs in their order (start time, or the ordering key's index) and
tests the filter run by run, stopping at the page's end. That is fast while matches are common
and slow when they are rare: ``tags.i = '777'`` over 100,000 runs tests every run (300 ms) to
find one. SQLite keeps no statistics on values, so it cannot see that the ``(key, value,
run_id)`` index would give that one run at once. PostgreSQL can, and its planner is left alone
(:attr:`store.sql.dialect.Dialect.counts_selectivity`).

Here, each positive comparison of the filter's top-level AND that such an index can answer
(``params.x = 'v'``, ``metrics.m > k``, ``IN``, ``LIKE``) is counted with a bounded probe
(``LIMIT cap + 1`` over the index, so a common value costs at most ``cap`` index steps), and
the rarest one *drives* the query: its rows are read first, joined to their runs, and the rest
of the filter is tested on those only. The driver
is chosen when reading its rows is cheaper than the walk it replaces: for a count, fewer than
half the runs in scope; for a page of ``wanted`` runs, ``candidates^2 < wanted * runs / 2``
(the walk visits about ``wanted * runs / matches`` runs, the driver reads and sorts its
``candidates``). The driving table's primary key is ``(run_id, key)``, so a run joins at most
once and the results are exactly those of the plain plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from store.filters import Comparison, Junction, Node
from store.sql.dialect import Dialect

__all__ = ["Driver", "choose_driver"]

# comparisons an index on (key, value, run_id) answers with a range; the negated ones,
# IS NULL and ILIKE (lower(value)) match by scanning
_DRIVING_OPS = frozenset({"=", "<", "<=", ">", ">=", "IN", "LIKE"})
PROBE_CAP = 50_000  # probes count no further: one costs at most this many index steps

Execute = Callable[[str, list[Any]], Any]
Condition = Callable[[str, str, tuple[Any, ...], list[Any], Dialect], str]


@dataclass(frozen=True)
class Driver:
    """The comparison a search reads first: ``table`` rows with ``key`` whose value matches."""

    table: str
    comparison: Comparison
    candidates: int  # how many rows of the table match (over every experiment)

    def rest(self, node: Node) -> Node | None:
        """The filter without the driver's comparison (its rows are the only ones read)."""
        if node is self.comparison:
            return None
        assert isinstance(node, Junction) and node.op == "AND"
        items = list(node.items)
        items.remove(self.comparison)
        return items[0] if len(items) == 1 else Junction("AND", tuple(items))

    def source(self, condition: Condition, params: list[Any], dialect: Dialect) -> str:
        """The FROM clause that reads the driver's rows, then their runs (aliased r)."""
        c = self.comparison
        params.append(c.name.key)
        matches = condition("d.value", c.op, c.values, params, dialect)
        return (
            f"{self.table} d CROSS JOIN runs r ON r.run_id = d.run_id "
            f"AND d.key = {dialect.mark} AND {matches}"
        )


def _comparisons(node: Node, keyed: dict[str, str]) -> list[Comparison]:
    """The comparisons an index can drive: the filter itself or its top-level AND's items."""
    if isinstance(node, Junction) and node.op != "AND":
        return []  # an OR: no one comparison holds for every match
    items = node.items if isinstance(node, Junction) else (node,)
    return [
        c
        for c in items
        if isinstance(c, Comparison) and c.name.kind in keyed and c.op in _DRIVING_OPS
    ]


def _probe(execute: Execute, sql: str, params: list[Any], cap: int) -> int:
    """How many rows ``sql`` selects, counted up to cap + 1."""
    limit = int(cap) + 1  # a number of ours, never user text
    return int(execute(f"SELECT COUNT(*) FROM ({sql} LIMIT {limit}) AS probe", params)[0][0])


def choose_driver(
    execute: Execute,
    node: Node | None,
    scope: tuple[str, list[Any]],
    keyed: dict[str, str],
    condition: Condition,
    dialect: Dialect,
    wanted: int | None,
) -> Driver | None:
    """The comparison to read first, or None to keep the plain plan.

    :param node: the parsed filter.
    :param scope: the WHERE clause (or "") and parameters selecting the runs searched,
        without the filter: experiments and lifecycle stage.
    :param keyed: kind (params, metrics, tags) -> its table.
    :param condition: writes ``column op values`` (see store.sql.search).
    :param wanted: rows the query needs (offset + page), or None for all (a count).
    """
    if not dialect.counts_selectivity or node is None:
        return None
    comparisons = _comparisons(node, keyed)
    if not comparisons:
        return None
    # more candidates than this cannot pay off even against PROBE_CAP runs in scope
    cap = PROBE_CAP // 2 if wanted is None else math.isqrt(max(1, wanted) * PROBE_CAP // 2)
    cap = min(cap, PROBE_CAP)
    best: Driver | None = None
    for c in comparisons:
        if cap < 0:
            break
        probe_params: list[Any] = [c.name.key]
        matches = condition("x.value", c.op, c.values, probe_params, dialect)
        table = keyed[c.name.kind]
        sql = f"SELECT 1 FROM {table} x WHERE x.key = {dialect.mark} AND {matches}"
        found = _probe(execute, sql, probe_params, cap)
        if found <= cap:
            best = Driver(table, c, found)
            cap = found - 1  # only a rarer one replaces it
    if best is None:
        return None
    # worth it only if the runs in scope outnumber what the driver reads; counted that far
    n = best.candidates
    need = 2 * n if wanted is None else 2 * n * n // max(1, wanted)
    where, params = scope
    runs = _probe(execute, f"SELECT 1 FROM runs r{where}", list(params), need)
    return best if runs > need else None
