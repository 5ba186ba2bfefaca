"""Params, tags and metrics of runs in the SQLite store (mixed into :class:`store.sqlite.Store`)."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from store.entities import Metric
from store.errors import InvalidValueError, ParamOverwriteError, RunNotFoundError
from store.sqlite_points import HISTORY_ORDER, RUN_KEY, Point, latest_of, write_points
from store.values import (
    _from_db,
    _metric,
    _text_rows,
    _to_db,
    check_key,
    check_point,
    flatten,
    now_ms,
)

if TYPE_CHECKING:
    from store.entities import Run

T = TypeVar("T")

BATCH_KEY_TTL_MS = 24 * 3600 * 1000  # how long a log_batch idempotency key is remembered
_KEY_SWEEP_S = 60.0


class RunValues:
    """log_batch and the reads of one run's values."""

    if TYPE_CHECKING:

        @property
        def conn(self) -> sqlite3.Connection: ...

        integrity_errors: tuple[type[Exception], ...]

        def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        def get_run(self, run_id: str) -> Run: ...

        @staticmethod
        def _no_run(run_id: str) -> RunNotFoundError: ...

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric | tuple[str, Any, Any, Any]] = (),
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Write metrics (key, value, timestamp, step), params and tags in one transaction.

        Every key and value is checked first: a bad one raises InvalidValueError naming it, and
        nothing of the call is written. A batch given an ``idempotency_key`` already written
        is not written again (a client retrying after a lost answer).
        """
        points = [
            (m[0], m[3], m[2], None if (v := m[1]) != v else v)  # NaN is stored as NULL
            if type(m) is tuple and type(m[1]) is float and type(m[2]) is int and type(m[3]) is int
            else self._point(m)
            for m in metrics
        ]
        param_rows = _text_rows(run_id, flatten(params or {}), "param")
        tag_rows = _text_rows(run_id, tags or {}, "tag")
        latest = latest_of(points)
        for key in latest:  # the fast path above skipped the key checks
            check_key(key, "metric")

        def write(c: sqlite3.Connection) -> None:
            if idempotency_key is not None:
                cur = c.execute(
                    "INSERT INTO batch_keys VALUES (?, ?, ?) ON CONFLICT (batch_key) DO NOTHING",
                    [idempotency_key, run_id, now_ms()],
                )
                if cur.rowcount == 0:
                    return
                self._sweep_batch_keys(c)
            if points:
                found = c.execute("SELECT run_key FROM runs WHERE run_id = ?", [run_id]).fetchone()
                if found is None:
                    raise self._no_run(run_id)
                write_points(c, run_id, int(found[0]), points, latest)
            if param_rows:
                c.executemany("INSERT OR IGNORE INTO params VALUES (?, ?, ?)", param_rows)
                self._check_params(c, run_id, param_rows)
            if tag_rows:
                c.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", tag_rows)

        try:
            self._transaction(write)
        except self.integrity_errors:
            self.get_run(run_id)  # raises RunNotFoundError when that is the cause
            raise
        except InvalidValueError as exc:
            if isinstance(exc.__cause__, OverflowError):
                # the fast path leaves the 64-bit range to SQLite: name the point out of it
                for p in points:
                    check_point(p[0], _from_db(p[3]), p[2], p[1])
            raise

    def _sweep_batch_keys(self, c: sqlite3.Connection) -> None:
        """Forget batch keys older than BATCH_KEY_TTL_MS (a client retries within minutes), at
        most once a minute per store object and 1,000 keys at a time, so no write waits long."""
        now = time.monotonic()
        if now < getattr(self, "_next_key_sweep", 0.0):
            return
        self._next_key_sweep = now + _KEY_SWEEP_S
        c.execute(
            "DELETE FROM batch_keys WHERE rowid IN (SELECT rowid FROM batch_keys "
            "WHERE created_time < ? LIMIT 1000)",
            [now_ms() - BATCH_KEY_TTL_MS],
        )

    @staticmethod
    def _point(m: Metric | tuple[str, Any, Any, Any]) -> Point:
        """A metric as a write carries it (store.sqlite_points.Point), checked."""
        if isinstance(m, Metric):
            key, value, ts, step = m.key, m.value, m.timestamp, m.step
        else:
            key, value, ts, step = m
        key, v, ts, step = check_point(key, value, now_ms() if ts is None else ts, step or 0)
        return (key, step, ts, _to_db(v))

    @staticmethod
    def _check_params(c: sqlite3.Connection, run_id: str, rows: list[tuple[str, str, str]]) -> None:
        wanted = {k: v for _, k, v in rows}
        keys = list(wanted)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for k, old in c.execute(
                f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks})",
                [run_id, *chunk],
            ):
                if old != wanted[k]:
                    raise ParamOverwriteError(
                        f"Param {k!r} of run {run_id} is already {old[:80]!r}; cannot change it to "
                        f"{wanted[k][:80]!r}. Params are fixed per run: start a new run, or log the "
                        "new value as a tag or metric."
                    )

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int = 0
    ) -> None:
        self.log_batch(run_id, metrics=[(key, value, timestamp, step)])

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, params={key: value})

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags={key: value})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._transaction(
            lambda c: c.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", [run_id, key])
        )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        # The table's key (run_key, key, step, timestamp, seq) holds the points in this order;
        # points of the same step and timestamp come in the order they were logged.
        rows = self.conn.execute(
            f"SELECT value, timestamp, step FROM metrics WHERE {RUN_KEY} AND key = ? "
            + HISTORY_ORDER,
            [run_id, key],
        ).fetchall()
        if (
            not rows
            and not self.conn.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone()
        ):
            raise self._no_run(run_id)
        return [_metric(key, math.nan if v is None else v, ts, step) for v, ts, step in rows]

    def metric_keys(self, run_id: str) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT key FROM latest_metrics WHERE run_id = ? ORDER BY key", [run_id]
            )
        ]

    def get_latest_metrics(self, run_id: str) -> list[Metric]:
        """The latest point of each of the run's metrics, by key."""
        return [
            _metric(k, math.nan if v is None else v, ts, step)
            for k, v, ts, step in self.conn.execute(
                "SELECT key, value, timestamp, step FROM latest_metrics WHERE run_id = ? "
                "ORDER BY key",
                [run_id],
            )
        ]

    # -- artifacts ------------------------------------------------------------------------
