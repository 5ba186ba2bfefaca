"""Downsampled metric histories from the SQLite store, for charts (mixed into the Store).

A long history is cut into step ranges and each range gives its min and max, so a chart of a
million points reads two numbers per range from the metrics table, whose key (run_key, key,
step, timestamp, seq) keeps each history in step order with the value beside it. The ranges are
scanned by a few threads, each on its own read-only connection with the file memory-mapped:
SQLite releases the GIL while it reads (docs/ui.md has the numbers).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.sqlite_points import HISTORY_ORDER, RUN_KEY

_WHERE = f"{RUN_KEY} AND key = ?"
# MIN(step)/MAX(step) here would cost a third more than the two index seeks below
_BUCKET_SQL = f"SELECT MIN(value), MAX(value), COUNT(*) FROM metrics WHERE {_WHERE} AND step >= ? AND step < ?"
_FIRST_STEP_SQL = (
    f"SELECT step FROM metrics WHERE {_WHERE} AND step >= ? AND step < ? ORDER BY step LIMIT 1"
)
_LAST_STEP_SQL = (
    f"SELECT step FROM metrics WHERE {_WHERE} AND step >= ? AND step < ? ORDER BY step DESC LIMIT 1"
)
_cache_lock = threading.Lock()
_cache: OrderedDict[tuple, tuple[tuple, dict[str, Any]]] = OrderedDict()
_CACHE_SIZE = 128
_pool: ThreadPoolExecutor | None = None
_pool_local = threading.local()
_PARALLEL_MIN_BUCKETS = 64
_MMAP_BYTES = 256 * 1024 * 1024


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _reader(db_path: Path) -> sqlite3.Connection:
    """This thread's read-only connection to the store's database, pages memory-mapped."""
    conns = getattr(_pool_local, "conns", None)
    if conns is None:
        conns = _pool_local.conns = {}
    conn = conns.get(db_path)
    if conn is None:
        conn = sqlite3.connect(
            f"{db_path.as_uri()}?mode=ro", uri=True, timeout=30, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
        conns[db_path] = conn
    return conn


def _scan_buckets(db_path: Path, run_id: str, key: str, bounds: list[tuple[int, int]]) -> list:
    conn = _reader(db_path)
    out = []
    for lo, hi in bounds:
        args = [run_id, key, lo, hi]
        low, high, n = conn.execute(_BUCKET_SQL, args).fetchone()
        if not n:
            continue
        first = conn.execute(_FIRST_STEP_SQL, args).fetchone()[0]
        last = first if n == 1 else conn.execute(_LAST_STEP_SQL, args).fetchone()[0]
        out.append((low, high, n, first, last))
    return out


def _bucket_rows(db_path: Path, run_id: str, key: str, bounds: list[tuple[int, int]]) -> list:
    """(min, max, count, first step, last step) per step range, scanned in parallel threads
    (the calling thread takes the first share)."""
    global _pool
    workers = _workers()
    if workers == 1 or len(bounds) < _PARALLEL_MIN_BUCKETS:
        return _scan_buckets(db_path, run_id, key, bounds)
    if _pool is None:
        with _cache_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="autolog-history")
    size = math.ceil(len(bounds) / workers)
    chunks = [bounds[i : i + size] for i in range(0, len(bounds), size)]
    futures = [_pool.submit(_scan_buckets, db_path, run_id, key, c) for c in chunks[1:]]
    rows = _scan_buckets(db_path, run_id, key, chunks[0])
    return rows + [row for f in futures for row in f.result()]


def _envelope(rows: list) -> tuple[list[int], list[float]]:
    """Turn per-bucket (min, max, count, first step, last step) into a path keeping the shape.

    A bucket of one point is that point; otherwise its min and max, at its first and last
    step, in the order that continues the line from the previous bucket (so a falling curve
    stays falling). Buckets holding only NaN are left out.
    """
    steps: list[int] = []
    values: list[float] = []
    prev: float | None = None
    for lo_v, hi_v, n, s0, s1 in rows:
        if not n or lo_v is None:
            continue
        if n == 1 or lo_v == hi_v:
            steps.append(s0)
            values.append(lo_v)
            if n > 1 and s1 != s0:
                steps.append(s1)
                values.append(lo_v)
            prev = lo_v
            continue
        if prev is not None and abs(prev - hi_v) < abs(prev - lo_v):
            first, second = hi_v, lo_v
        else:
            first, second = lo_v, hi_v
        steps += [s0, s1]
        values += [first, second]
        prev = second
    return steps, values


class SampledHistory:
    """sampled_metric_history of :class:`store.base.TrackingStore`."""

    if TYPE_CHECKING:
        db_path: Path

        @property
        def conn(self) -> sqlite3.Connection: ...

        def run_artifact_base(self, run_id: str) -> Path: ...

    def sampled_metric_history(
        self,
        run_id: str,
        key: str,
        max_points: int,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> dict[str, Any]:
        """At most about ``max_points`` points of a history, downsampled in SQL when longer.

        Up to ``max_points`` points come back as logged (with timestamps). A longer history is
        cut into ``max_points // 2`` step ranges and each gives its min and max (NaN skipped),
        so spikes and the envelope survive. Results of long histories are cached until the
        metric's latest point changes.
        """
        where = _WHERE
        args: list[Any] = [run_id, key]
        if min_step is not None:
            where += " AND step >= ?"
            args.append(int(min_step))
        if max_step is not None:
            where += " AND step <= ?"
            args.append(int(max_step))
        conn = self.conn
        n = conn.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM metrics WHERE {where} LIMIT ?) AS points",
            [*args, max_points + 1],
        ).fetchone()[0]
        if n == 0:
            self.run_artifact_base(run_id)  # RunNotFoundError for an unknown run
        if n <= max_points:
            rows = conn.execute(
                f"SELECT step, value, timestamp FROM metrics WHERE {where} {HISTORY_ORDER}",
                args,
            ).fetchall()
            return {
                "total": len(rows),
                "downsampled": False,
                "bucket_width": None,
                "steps": [r[0] for r in rows],
                "values": [math.nan if r[1] is None else r[1] for r in rows],
                "timestamps": [r[2] for r in rows],
            }
        return self._downsampled(run_id, key, where, args, max_points, (min_step, max_step))

    def _bucket_rows(
        self, run_id: str, key: str, bounds: list[tuple[int, int]], where: str, args: list[Any]
    ) -> list:
        """(min, max, count, first step, last step) per step range of bounds."""
        return _bucket_rows(self.db_path, run_id, key, bounds)

    def _downsampled(
        self, run_id: str, key: str, where: str, args: list[Any], max_points: int, span: tuple
    ) -> dict[str, Any]:
        conn = self.conn
        latest = conn.execute(
            "SELECT step, timestamp FROM latest_metrics WHERE run_id = ? AND key = ?",
            [run_id, key],
        ).fetchone()
        cache_key = (repr(self), run_id, key, max_points, *span)
        with _cache_lock:
            hit = _cache.get(cache_key)
            if hit is not None and hit[0] == tuple(latest or ()):
                _cache.move_to_end(cache_key)
                return dict(hit[1])
        lo = conn.execute(f"SELECT step FROM metrics WHERE {where} ORDER BY step LIMIT 1", args)
        hi = conn.execute(
            f"SELECT step FROM metrics WHERE {where} ORDER BY step DESC LIMIT 1", args
        )
        first, last = lo.fetchone()[0], hi.fetchone()[0]
        n_buckets = max(1, max_points // 2)
        width = max(1, math.ceil((last - first + 1) / n_buckets))
        bounds = [(s, s + width) for s in range(first, last + 1, width)]
        rows = self._bucket_rows(run_id, key, bounds, where, args)
        steps, values = _envelope(rows)
        result = {
            "total": sum(r[2] for r in rows),
            "downsampled": True,
            "bucket_width": width,
            "steps": steps,
            "values": values,
            "timestamps": None,
        }
        with _cache_lock:
            _cache[cache_key] = (tuple(latest or ()), dict(result))
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return result
