"""The tracking server's users and tokens in the SQLite store (mixed into :class:`store.sqlite.Store`).

Only hashes are stored; hashing and checking credentials is the server's (autolog/server/auth.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from store.errors import InvalidValueError
from store.values import now_ms

T = TypeVar("T")
ROLES = ("read", "write", "admin")


class AuthTables:
    if TYPE_CHECKING:

        @property
        def conn(self) -> sqlite3.Connection: ...

        def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    def add_user(self, name: str, role: str, password_hash: str | None) -> None:
        if not isinstance(name, str) or not name or ":" in name:
            raise InvalidValueError(
                f"Invalid user name {name!r}: give a non-empty name without ':'."
            )
        if role not in ROLES:
            raise InvalidValueError(f"Invalid role {role!r}: give one of {', '.join(ROLES)}.")

        def write(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM auth_users WHERE name = ?", [name]).fetchone():
                raise InvalidValueError(
                    f"User {name!r} exists already; remove it first to change it."
                )
            c.execute(
                "INSERT INTO auth_users VALUES (?, ?, ?, ?)", [name, role, password_hash, now_ms()]
            )

        self._transaction(write)

    def remove_user(self, name: str) -> None:
        def write(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM auth_tokens WHERE name = ?", [name])
            if c.execute("DELETE FROM auth_users WHERE name = ?", [name]).rowcount == 0:
                raise InvalidValueError(
                    f"No user {name!r}; `autolog server users list` shows them."
                )

        self._transaction(write)

    def list_users(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT u.name, u.role, u.created_time, COUNT(t.token_hash) FROM auth_users u "
            "LEFT JOIN auth_tokens t ON t.name = u.name GROUP BY u.name, u.role, u.created_time "
            "ORDER BY u.name"
        )
        return [{"name": n, "role": r, "created_time": c, "tokens": k} for n, r, c, k in rows]

    def get_user(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT name, role, password_hash FROM auth_users WHERE name = ?", [name]
        ).fetchone()
        return None if row is None else {"name": row[0], "role": row[1], "password_hash": row[2]}

    def add_token(self, name: str, token_hash: str) -> None:
        def write(c: sqlite3.Connection) -> None:
            if not c.execute("SELECT 1 FROM auth_users WHERE name = ?", [name]).fetchone():
                raise InvalidValueError(f"No user {name!r}; add it first.")
            c.execute("INSERT INTO auth_tokens VALUES (?, ?, ?)", [token_hash, name, now_ms()])

        self._transaction(write)

    def user_for_token(self, token_hash: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT u.name, u.role FROM auth_tokens t JOIN auth_users u ON u.name = t.name "
            "WHERE t.token_hash = ?",
            [token_hash],
        ).fetchone()
        return None if row is None else {"name": row[0], "role": row[1]}
