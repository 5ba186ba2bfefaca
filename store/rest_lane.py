"""The REST store's background lane: writes an autologged fit does not wait for.

One daemon thread per store runs queued calls in order (``defer``). Any request another
thread makes first waits for the queue to drain (``flush``, called from the HTTP layer's
hook), so every read sees the writes queued before it, and a run's end, the artifacts and the
model record arrive in the order they were queued. Only ``runs/create`` skips that wait (a new
run depends on nothing queued), so the next fit starts while the previous one's writes are
still being sent. ``flush`` also runs at exit and when the store closes.

A failed call is logged and turns into one :class:`autolog.errors.AutologWarning` at the next
flush (re-raised there when ``AUTOLOG_TESTING`` is set, so tests see it); the calls queued after
it still run, so the run still ends and stays readable.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from store import gate

log = logging.getLogger("autolog.store.rest")
MAX_QUEUED = 256  # a fit loop faster than the network waits here rather than piling up memory
_lanes: weakref.WeakSet[Lane] = weakref.WeakSet()


class Lane:
    """Calls run one at a time, in order, on a thread of their own."""

    def __init__(self, name: str):
        self.name = name
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(
            MAX_QUEUED
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        _lanes.add(self)

    def on_lane(self) -> bool:
        return threading.current_thread() is self._thread

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) on the lane, after everything queued before (inline on the lane)."""
        if self.on_lane():
            fn(*args)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name=f"autolog-rest-lane {self.name}", daemon=True
                )
                self._thread.start()
        self._queue.put((fn, args))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                gate.wait()  # a fit under way returns first (store/gate.py)
                fn, args = item
                try:
                    fn(*args)
                except BaseException as exc:  # noqa: BLE001 - reported at the next flush
                    log.warning("background call to %s failed: %r", self.name, exc)
                    self._errors.append(exc)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued call has run; report a failure among them."""
        if self.on_lane():
            return
        if self._thread is not None:
            gate.open_now()
            self._queue.join()
        if self._errors:
            errors, self._errors = self._errors, []
            if os.environ.get("AUTOLOG_TESTING", "") not in ("", "0", "false", "False"):
                raise errors[0]
            from autolog.errors import AutologWarning

            more = f" ({len(errors) - 1} more)" if len(errors) > 1 else ""
            warnings.warn(
                f"autolog: sending to the tracking server at {self.name} in the background "
                f"failed{more}; training is unaffected: {type(errors[0]).__name__}: {errors[0]}",
                AutologWarning,
                stacklevel=3,
            )

    def pending(self) -> bool:
        return self._queue.unfinished_tasks > 0


@atexit.register
def _flush_all() -> None:
    for lane in list(_lanes):
        try:
            lane.flush()
        except Exception as exc:  # at exit: say so, never raise
            log.warning("autolog: background writes to %s were lost: %r", lane.name, exc)
