"""Experiments in the SQLite store (mixed into the Store): create, read, tag, rename, delete.

Split out of :mod:`store.sqlite`, pure move.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from store.entities import Experiment
from store.errors import ExperimentNotFoundError, InvalidValueError
from store.values import check_key, check_text, now_ms

if TYPE_CHECKING:
    from store.artifacts import ArtifactRoot

T = TypeVar("T")


class Experiments:
    """create_experiment & co.: the ``experiments`` and ``experiment_tags`` tables."""

    if TYPE_CHECKING:
        artifacts: ArtifactRoot

        @property
        def conn(self) -> sqlite3.Connection: ...

        def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    def _experiment(self, row: sqlite3.Row | tuple) -> Experiment:
        eid, name, loc, stage, ctime, utime = row
        tags = dict(
            self.conn.execute(
                "SELECT key, value FROM experiment_tags WHERE experiment_id = ?", [eid]
            ).fetchall()
        )
        return Experiment(
            str(eid), name, str(self.artifacts.root / str(loc)), stage, ctime, utime, tags
        )

    _EXP_COLS = (
        "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time"
    )

    def create_experiment(self, name: str, tags: dict[str, Any] | None = None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise InvalidValueError(f"Invalid experiment name {name!r}: give a non-empty string.")

        def write(c: sqlite3.Connection) -> int:
            if c.execute("SELECT 1 FROM experiments WHERE name = ?", [name]).fetchone():
                raise InvalidValueError(
                    f"Experiment {name!r} already exists; use set_experiment({name!r}) to use it."
                )
            cur = c.execute(
                "INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time) "
                "VALUES (?, 'active', ?, ?)",
                [name, now_ms(), now_ms()],
            )
            eid = int(cur.lastrowid or 0)
            c.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                [str(eid), eid],
            )
            for k, v in (tags or {}).items():
                c.execute(
                    "INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)",
                    [eid, check_key(k, "tag"), check_text(k, v, "experiment tag")],
                )
            return eid

        return str(self._transaction(write))

    def get_or_create_experiment(self, name: str) -> str:
        exp = self.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.create_experiment(name)
        except InvalidValueError:  # another process created it between our read and write
            exp = self.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def get_experiment(self, experiment_id: str | int) -> Experiment:
        row = self.conn.execute(
            f"SELECT {self._EXP_COLS} FROM experiments WHERE experiment_id = ?",
            [int(experiment_id)],
        ).fetchone()
        if row is None:
            raise ExperimentNotFoundError(
                f"No experiment with id {experiment_id!r}; list them with `autolog experiments list`."
            )
        return self._experiment(row)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        row = self.conn.execute(
            f"SELECT {self._EXP_COLS} FROM experiments WHERE name = ?", [name]
        ).fetchone()
        return None if row is None else self._experiment(row)

    def list_experiments(self, lifecycle_stage: str | None = "active") -> list[Experiment]:
        sql = f"SELECT {self._EXP_COLS} FROM experiments"
        args: list[Any] = []
        if lifecycle_stage:
            sql += " WHERE lifecycle_stage = ?"
            args.append(lifecycle_stage)
        return [
            self._experiment(r) for r in self.conn.execute(sql + " ORDER BY experiment_id", args)
        ]

    def set_experiment_tag(self, experiment_id: str | int, key: str, value: Any) -> None:
        self.get_experiment(experiment_id)
        self._transaction(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)",
                [
                    int(experiment_id),
                    check_key(key, "tag"),
                    check_text(key, value, "experiment tag"),
                ],
            )
        )

    def rename_experiment(self, experiment_id: str | int, new_name: str) -> None:
        if not isinstance(new_name, str) or not new_name.strip():
            raise InvalidValueError(
                f"Invalid experiment name {new_name!r}: give a non-empty string."
            )
        self.get_experiment(experiment_id)

        def write(c: sqlite3.Connection) -> None:
            other = c.execute("SELECT experiment_id FROM experiments WHERE name = ?", [new_name])
            row = other.fetchone()
            if row is not None and str(row[0]) != str(experiment_id):
                raise InvalidValueError(
                    f"Experiment {new_name!r} already exists; pick another name."
                )
            c.execute(
                "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
                [new_name, now_ms(), int(experiment_id)],
            )

        self._transaction(write)

    def restore_experiment(self, experiment_id: str | int) -> None:
        self.get_experiment(experiment_id)
        self._transaction(
            lambda c: c.execute(
                "UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? "
                "WHERE experiment_id = ?",
                [now_ms(), int(experiment_id)],
            )
        )

    def experiment_run_counts(self) -> dict[str, tuple[int, int | None]]:
        """experiment id -> (active runs, start_time of the newest), for experiments with runs."""
        return {
            str(eid): (n, last)
            for eid, n, last in self.conn.execute(
                "SELECT experiment_id, COUNT(*), MAX(start_time) FROM runs "
                "WHERE lifecycle_stage = 'active' GROUP BY experiment_id"
            )
        }

    def delete_experiment(self, experiment_id: str | int) -> None:
        self.get_experiment(experiment_id)
        self._transaction(
            lambda c: c.execute(
                "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? "
                "WHERE experiment_id = ?",
                [now_ms(), int(experiment_id)],
            )
        )
