"""Per-iteration metrics at microsecond cost: buffered on the training thread, written in batches.

``MetricBatcher.record`` appends a tuple to a list. When the list reaches ``max_points`` or
``max_delay_s`` has passed since the last hand-off, the list is handed to one background
writer thread that calls ``Store.log_batch``. ``flush()`` hands off what is left and waits
until it is written; it runs at the end of every run (end_run hook), at interpreter exit and
when a fit fails, so a crash keeps every point up to the last hand-off plus the final flush.

``defer(run_id, owner, fn, *args)`` moves other work of a run off the training thread
(scikit-learn's training metrics, charts and HTML diagram; pyspark.ml's params, data sources,
summary metrics, search child runs and model save): one background thread runs it, in order.
``end_deferred(run_id, owner)`` hands the end of the active run to that thread too: the fit
returns at once and the run ends ``FINISHED`` once its work is written. ``flush_deferred(run_id)``
waits for the work and reports its failures (one warning per integration, raised under
AUTOLOG_TESTING). It runs when the run ends (except for a run the deferring fit ends itself:
``wait_at_end=False``), before a read through the tracking API (get_run, search_runs,
list_artifacts, ``load_model("runs:/...")``, the registry's reads, ...), at ``set_tracking_uri``
(work goes to the store it was meant for) and at interpreter exit.
"""

from __future__ import annotations

import atexit
import queue
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from autolog import tracking
from store import gate
from store.errors import InvalidValueError
from store.values import check_point

if TYPE_CHECKING:
    from store.sqlite import Store

DEFAULT_MAX_POINTS = 5000
DEFAULT_MAX_DELAY_S = 2.0
_INT64 = 2**63  # steps and timestamps lie in [-2**63, 2**63): checked on the caller's thread


class _Writer:
    """One daemon thread writing handed-off batches; errors become warnings, never raise."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, batcher: MetricBatcher, rows: list[tuple]) -> None:
        with batcher._cond:
            batcher._pending += 1
        self._queue.put((batcher, rows))
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._loop, name="autolog-metric-writer", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batcher, rows = item
            try:
                batcher.store.log_batch(batcher.run_id, metrics=rows)
            except Exception as exc:
                batcher.errors.append(exc)
            finally:
                with batcher._cond:
                    batcher._pending -= 1
                    batcher._cond.notify_all()


_writer = _Writer()
_live: weakref.WeakSet[MetricBatcher] = weakref.WeakSet()
_by_run: dict[str, list[MetricBatcher]] = {}
_by_run_lock = threading.Lock()


class MetricBatcher:
    """Buffer of metric points for one run.

    :param run_id: the run the points belong to.
    :param store: the store to write into (default: the tracking URI's store).
    :param max_points: hand off to the writer after this many points.
    :param max_delay_s: or after this many seconds since the last hand-off.
    :param owner: the integration whose points these are (default: the patched call in
        progress); a failure to write them is reported as that integration's.
    """

    def __init__(
        self,
        run_id: str,
        store: Store | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
        owner: str | None = None,
    ):
        if owner is None:
            from autolog import patching

            session = patching.current_session()
            owner = session.integration if session is not None else None
        self.owner = owner
        self.run_id = run_id
        self.store = store if store is not None else tracking._store()
        self.max_points = max_points
        self.max_delay_s = max_delay_s
        self._buf: list[tuple] = []
        self._delay_ms = int(max_delay_s * 1000)
        self._last_ms = int(time.time() * 1000)
        self._pending = 0
        self._cond = threading.Condition()
        self.errors: list[BaseException] = []
        self._keys: set[str] = set()  # keys already checked (empty, too long, lone surrogates)
        _live.add(self)
        with _by_run_lock:
            _by_run.setdefault(run_id, []).append(self)

    def record(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Buffer one point; costs a tuple and a list append on the calling thread."""
        ts = int(time.time() * 1000) if timestamp is None else timestamp
        buf = self._buf
        if (
            key in self._keys
            and type(step) is int
            and -_INT64 <= step < _INT64
            and timestamp is None
        ):
            try:
                buf.append((key, value if type(value) is float else float(value), ts, step))
            except (TypeError, ValueError, OverflowError):
                self._check(key, value, ts, step)  # raises InvalidValueError naming the value
        else:
            buf.append(self._check(key, value, ts, step))
        if len(buf) >= self.max_points or ts - self._last_ms >= self._delay_ms:
            self._hand_off()

    def _check(self, key: Any, value: Any, ts: Any, step: Any) -> tuple:
        """The point checked as the store checks it: a bad one raises here, not in the writer."""
        point = check_point(key, value, ts, step)
        self._keys.add(point[0])
        return point

    def _checked(self, points: Any) -> None:
        """Buffer each valid (key, value, ts, step); then raise for the first invalid one."""
        bad: InvalidValueError | None = None
        append = self._buf.append
        for point in points:
            try:
                append(self._check(*point))
            except InvalidValueError as exc:
                bad = bad or exc
        if len(self._buf) >= self.max_points or _now_ms() - self._last_ms >= self._delay_ms:
            self._hand_off()
        if bad is not None:
            raise bad

    def record_many(
        self, metrics: dict[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        """Buffer several points that share a step and timestamp (one per-iteration callback)."""
        ts = timestamp if timestamp is not None else int(time.time() * 1000)
        keys = self._keys
        points = None
        if _ints_fit(step, timestamp):
            try:
                points = [
                    (k, v if type(v) is float else float(v), ts, step)
                    for k, v in metrics.items()
                    if k in keys
                ]
            except (TypeError, ValueError, OverflowError):
                pass
        if points is None or len(points) != len(metrics):
            return self._checked((k, v, ts, step) for k, v in metrics.items())
        self._buf.extend(points)
        if len(self._buf) >= self.max_points or ts - self._last_ms >= self._delay_ms:
            self._hand_off()

    def record_series(
        self,
        key: str,
        steps: Sequence[int],
        values: Sequence[float],
        timestamp: int | None = None,
    ) -> None:
        """Buffer one metric's points at several steps (one read of a device-side buffer)."""
        ts = timestamp if timestamp is not None else int(time.time() * 1000)
        try:
            floats = list(map(float, values))
        except (TypeError, ValueError, OverflowError):
            floats = None
        if (
            floats is None
            or key not in self._keys
            or not _ints_fit(0, timestamp)
            or not all(type(s) is int and -_INT64 <= s < _INT64 for s in steps)
        ):
            return self._checked(zip(repeat(key), values, repeat(ts), steps))
        self._buf.extend(zip(repeat(key), floats, repeat(ts), steps))
        if len(self._buf) >= self.max_points or ts - self._last_ms >= self._delay_ms:
            self._hand_off()

    def _hand_off(self) -> None:
        rows, self._buf = self._buf, []
        self._last_ms = int(time.time() * 1000)
        if rows:
            _writer.submit(self, rows)

    def flush(self, timeout: float | None = 60.0) -> None:
        """Hand off what is buffered and wait until everything is written."""
        self._hand_off()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
        if self.errors:
            errors, self.errors = self.errors, []
            raise errors[0]

    def close(self) -> None:
        """Flush and stop tracking this batcher."""
        try:
            self.flush()
        finally:
            with _by_run_lock:
                batchers = _by_run.get(self.run_id, [])
                if self in batchers:
                    batchers.remove(self)
                if not batchers:
                    _by_run.pop(self.run_id, None)


def batcher_for(run_id: str, owner: str | None = None) -> MetricBatcher:
    """The batcher of this run (created on first use; flushed when the run ends)."""
    with _by_run_lock:
        existing = _by_run.get(run_id)
        if existing:
            return existing[0]
    return MetricBatcher(run_id, owner=owner)


def write_pending(run_id: str) -> None:
    """Write the points buffered for a run so far, leaving its batchers open (a model logged
    mid-run records the run's metrics as they are then)."""
    with _by_run_lock:
        batchers = list(_by_run.get(run_id, []))
    for b in batchers:
        b.flush()


def flush_run(run_id: str, status: str = "FINISHED") -> None:
    """Flush every batcher of a run (called just before the run ends).

    A batcher that failed to write its points is reported as its owner integration's failure
    (one warning, shared with that integration's other failures; raised under AUTOLOG_TESTING);
    the failure of a batcher without an owner is raised, after every batcher is closed.
    """
    with _by_run_lock:
        batchers = list(_by_run.get(run_id, []))
    failures: list[tuple[Exception, str | None]] = []
    for b in batchers:
        try:
            b.close()
        except Exception as exc:
            failures.append((exc, b.owner))
    unowned = [error for error, owner in failures if owner is None]
    for error, owner in failures:
        if owner is not None:
            tracking.report_own_error(error, owner)
    if unowned:
        raise unowned[0]


def _ints_fit(step: Any, timestamp: Any) -> bool:
    """Whether step and timestamp (None: now) are ints SQLite stores, without a closer look."""
    return (
        type(step) is int
        and -_INT64 <= step < _INT64
        and (timestamp is None or type(timestamp) is int and -_INT64 <= timestamp < _INT64)
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Deferred:
    """One daemon thread running deferred work in order; failures are kept per run."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, str, Any, tuple]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self.pending: dict[str, int] = {}
        self.errors: dict[str, list[tuple[Exception, str]]] = {}
        self.detached: set[str] = set()  # runs whose end does not wait for their work

    def submit(self, run_id: str, owner: str, fn: Any, args: tuple, wait_at_end: bool) -> None:
        with self._cond:
            self.pending[run_id] = self.pending.get(run_id, 0) + 1
            if not wait_at_end:
                self.detached.add(run_id)
        self._queue.put((run_id, owner, fn, args))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="autolog-deferred", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            run_id, owner, fn, args = self._queue.get()
            try:
                gate.wait()  # a fit under way returns first (store/gate.py)
                fn(*args)
            except Exception as exc:
                with self._cond:
                    self.errors.setdefault(run_id, []).append((exc, owner))
            finally:
                with self._cond:
                    left = self.pending[run_id] - 1
                    if left:
                        self.pending[run_id] = left
                    else:
                        del self.pending[run_id]
                        self.detached.discard(run_id)
                    self._cond.notify_all()

    def wait(
        self, run_id: str | None, timeout: float | None
    ) -> tuple[bool, list[tuple[Exception, str]]]:
        """Wait for the work of one run (None: of every run): (whether it is all done, its
        failures, taken out)."""
        if threading.current_thread() is self._thread:
            return False, []  # the deferred work's own reads wait for nothing
        gate.open_now()
        deadline = None if timeout is None else time.monotonic() + timeout

        def busy() -> bool:
            return bool(self.pending) if run_id is None else run_id in self.pending

        with self._cond:
            while busy():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            done = not busy()
            if run_id is None:
                failed = [e for errors in self.errors.values() for e in errors]
                self.errors.clear()
                return done, failed
            return done, self.errors.pop(run_id, [])


_deferred = _Deferred()


def defer(run_id: str, owner: str, fn: Any, *args: Any, wait_at_end: bool = True) -> None:
    """Run fn(*args) on the background thread, after the work deferred before it.

    :param owner: the integration a failure of fn is reported as (one warning).
    :param wait_at_end: whether ending the run waits for it; False for a run that the calling
        fit ends itself, so the fit returns at once (reads of the run still wait for it).

    In a multiprocessing worker fn runs at once, on the caller's thread: a pool's worker is
    terminated as soon as its tasks are done (``with Pool() as pool`` ends with ``terminate()``),
    which would kill the background thread with the work unwritten.
    """
    if _in_worker_process():
        try:
            fn(*args)
        except Exception as exc:
            tracking.report_own_error(exc, owner)
        return
    _deferred.submit(run_id, owner, fn, args, wait_at_end)


def _in_worker_process() -> bool:
    mp = sys.modules.get("multiprocessing")  # a multiprocessing child has imported it
    return mp is not None and mp.parent_process() is not None


def end_deferred(run_id: str, owner: str, status: str = "FINISHED") -> None:
    """End the calling thread's active run ``run_id`` on the background thread, after the work
    deferred for it: the caller returns at once (the run is no longer its active run), and the
    run's end (end-run hooks, status) is written once the rest is. A failure to end it is
    reported as ``owner``'s, like the run's other deferred work."""
    defer(run_id, owner, tracking.detach_run(run_id), status, wait_at_end=False)


def flush_deferred(run_id: str | None = None, timeout: float | None = 60.0) -> bool:
    """Wait for the work deferred for a run (None: every run); report its failures.

    :returns: False when ``timeout`` passed first (or when called from the background thread
        itself with work pending), True when that work is all done.
    """
    if not _deferred.pending and not _deferred.errors:
        return True
    done, failures = _deferred.wait(run_id, timeout)
    for error, owner in failures:
        tracking.report_own_error(error, owner)
    return done


def _flush_deferred_at_end(run_id: str, status: str) -> None:
    if run_id not in _deferred.detached:
        flush_deferred(run_id)


def _flush_deferred_before_read(run_id: str | None) -> None:
    flush_deferred(run_id)


@atexit.register
def _flush_all_at_exit() -> None:
    try:
        flush_deferred(None, timeout=60.0)
    except Exception:
        pass
    for b in list(_live):
        try:
            b.flush(timeout=30.0)
        except Exception:
            pass


tracking.register_end_run_hook(_flush_deferred_at_end)
tracking.register_end_run_hook(flush_run)
tracking.register_read_hook(_flush_deferred_before_read)
