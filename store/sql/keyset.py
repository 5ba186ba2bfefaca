"""Keyset pages: the condition selecting the rows that sort after a given row.

A search's page token can carry the sort key of the last run it returned (a *cursor*) instead
of only an offset. The next page then starts where the ordering's index holds that key
(``WHERE key < last ... LIMIT 100``) instead of reading and dropping every run before it
(``OFFSET 50000``): a page deep in a million runs costs what the first one costs.

A sort key is a list of terms ``(expression, ascending, missing_last)``; ``missing_last``
terms sort NULL after every value (``expr IS NULL, expr ASC|DESC``), the others hold no NULL
(the first ordering's half that has values, ``rowid``, ``run_id``). The last term is unique
(``run_id``), so the order is total and no run is skipped or repeated across pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.sql.dialect import Dialect

__all__ = ["Term", "Types", "after_condition", "valid_cursor"]

Term = tuple[str, bool, bool]  # (SQL expression, ascending, missing values sort last)

Types = tuple[type, ...]  # the JSON types a term's value may have (None: missing, always)


def valid_cursor(cursor: Any, halves: Sequence[Sequence[Types]]) -> bool:
    """Whether cursor is ``[half, *values]`` with one value of the right type per term of that
    half's key (``halves[half]``): a token from a client is data, not trusted, and a value of
    another type would fail in the database (PostgreSQL) instead of counting as an offset."""
    if not isinstance(cursor, list) or not cursor:
        return False
    half = cursor[0]
    if type(half) is not int or not 0 <= half < len(halves):
        return False
    values, types = cursor[1:], halves[half]
    if len(values) != len(types):
        return False
    return all(v is None or type(v) in t for v, t in zip(values, types))


def after_condition(
    terms: Sequence[Term], values: Sequence[Any], params: list[Any], dialect: Dialect
) -> str:
    """SQL true for the rows that sort strictly after the row whose key is values; its
    parameters are appended to params.

    ``(a, b, c) after (x, y, z)`` is ``a after x OR (a = x AND (b after y OR (b = y AND c
    after z)))``; written as a flat OR of ANDs. A first term without NULLs also gets the bound
    ``a >= x`` (or ``<=``) on its own, so the database starts its index walk there.
    """
    mark = dialect.mark
    ors: list[str] = []
    own: list[Any] = []  # the OR's parameters, in order
    equal: list[tuple[str, list[Any]]] = []  # (SQL, params) of "term = value" so far
    for (expr, ascending, missing_last), value in zip(terms, values):
        op = ">" if ascending else "<"
        if value is not None:  # after a value: a greater one, or (missing last) none
            after = f"{expr} {op} {mark}"
            if missing_last:
                after = f"({expr} IS NULL OR {after})"
            parts = [*equal, (after, [value])]
            ors.append("(" + " AND ".join(sql for sql, _ in parts) + ")")
            own += [v for _, p in parts for v in p]
            equal.append((f"{expr} = {mark}", [value]))
        else:  # nothing sorts after a missing value but another missing one
            equal.append((f"{expr} IS NULL", []))
    condition = "(" + " OR ".join(ors) + ")" if ors else "0 = 1"
    first, ascending, missing_last = terms[0]
    if not missing_last and values[0] is not None:
        condition = f"{first} {'>=' if ascending else '<='} {mark} AND {condition}"
        params.append(values[0])
    params.extend(own)
    return condition
