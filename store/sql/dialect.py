"""What differs between the SQL databases a store runs on, for the SQL the search compiles.

The search compiler (:mod:`store.sql.search`) writes only standard SQL and asks its dialect for
the rest: the parameter mark, case-sensitive and case-insensitive pattern matching, "no limit",
and the column that orders rows by insertion.
"""

from __future__ import annotations

from typing import Any


def like_to_glob(pattern: str) -> str:
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


class Dialect:
    """Standard SQL; subclasses say what their database does differently."""

    name = "standard"
    mark = "?"  # the parameter placeholder
    # a column giving insertion order ("runs started in the same millisecond"), if any
    insertion_order: str | None = None
    # whether a search counts how many rows its comparisons match to pick the table it reads
    # first (store.sql.plan): for planners that keep no statistics on values
    counts_selectivity = False

    def marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def like(self, column: str, negated: bool, pattern: str, params: list[Any]) -> str:
        """Case-sensitive match; % and _ are the only wildcards (no escape character)."""
        params.append(pattern)
        return f"{column} {'NOT ' if negated else ''}LIKE {self.mark} ESCAPE ''"

    def ilike(self, column: str, negated: bool, pattern: str, params: list[Any]) -> str:
        """Match ignoring the case of ASCII letters."""
        params.append(pattern)
        return f"lower({column}) {'NOT ' if negated else ''}LIKE lower({self.mark}) ESCAPE ''"

    def leading_join(self, first: str, second: str, on: str) -> str:
        """``first JOIN second ON on``, read in that order where the database lets SQL say so
        (the first table's index gives the order of a search: see store.sql.search)."""
        return f"{first} JOIN {second} ON {on}"

    def limit(self, max_results: int | None, offset: int, params: list[Any]) -> str:
        if max_results is None and not offset:
            return ""
        if max_results is None:
            params.append(offset)
            return f" OFFSET {self.mark}"
        params += [max_results, offset]
        return f" LIMIT {self.mark} OFFSET {self.mark}"


class SQLiteDialect(Dialect):
    name = "sqlite"
    insertion_order = "rowid"
    counts_selectivity = True

    def like(self, column: str, negated: bool, pattern: str, params: list[Any]) -> str:
        # SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive matcher.
        params.append(like_to_glob(pattern))
        return f"{column} {'NOT ' if negated else ''}GLOB {self.mark}"

    def ilike(self, column: str, negated: bool, pattern: str, params: list[Any]) -> str:
        params.append(pattern)
        return f"lower({column}) {'NOT ' if negated else ''}LIKE lower({self.mark})"

    def leading_join(self, first: str, second: str, on: str) -> str:
        # SQLite's planner keeps the tables of a CROSS JOIN in the order written; left alone
        # it scans every run and sorts (100,000 runs: 500 ms against a few ms)
        return f"{first} CROSS JOIN {second} ON {on}"

    def limit(self, max_results: int | None, offset: int, params: list[Any]) -> str:
        if max_results is None and not offset:
            return ""
        params += [-1 if max_results is None else max_results, offset]  # -1: no limit
        return f" LIMIT {self.mark} OFFSET {self.mark}"


class PostgreSQLDialect(Dialect):
    name = "postgresql"
    mark = "%s"

    def ilike(self, column: str, negated: bool, pattern: str, params: list[Any]) -> str:
        params.append(pattern)
        return f"{column} {'NOT ' if negated else ''}ILIKE {self.mark} ESCAPE ''"


SQLITE = SQLiteDialect()
POSTGRESQL = PostgreSQLDialect()
