"""The background writer of ``integrations.pyspark_ml``: what a fit records after training.

MLlib's model save, the training summary's metrics and a search's child runs are Spark jobs and
store writes that took 1-6 s per fit on the training thread (docs/spark.md, "Cost"). A fit now
hands them to one daemon thread, in order, and returns; the run the fit started is ended by
that thread once its last job is done.

Nothing written late is seen late: every store access of the process (``tracking._store()``,
under every read of the fluent API, the Client and ``load_model``) first waits until the
writer is idle, through ``tracking.register_barrier``. So are ``flush()``, stopping the
SparkContext (a save needs it) and the interpreter's exit. A job that fails does not stop the
next (the run is still ended); its error is reported when the writer is next waited for, on
the waiting thread: one AutologWarning (raised under AUTOLOG_TESTING).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import Any

from autolog import patching, tracking


class Writer:
    """One daemon thread running submitted jobs in order; errors are kept for ``flush``."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._jobs: list[tuple[Callable[[], Any], bool]] = []
        self._errors: list[tuple[BaseException, bool]] = []
        self._busy = 0  # jobs submitted and not yet done
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def idle(self) -> bool:
        return self._busy == 0

    def submit(self, job: Callable[[], Any], silent: bool = False) -> None:
        """Run ``job()`` on the writer thread after the jobs submitted before it."""
        with self._cond:
            self._jobs.append((job, silent))
            self._busy += 1
            self._cond.notify_all()
            if self._thread is None or not self._thread.is_alive():
                if self._thread is None:  # after pyspark's own exit hook, which stops the JVM
                    atexit.register(_flush_at_exit, self)
                self._thread = threading.Thread(
                    target=self._loop, name=f"autolog-{self.owner}-writer", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        tracking.no_barrier()  # this thread's own store calls must not wait for it
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                job, silent = self._jobs.pop(0)
            try:
                job()
            except BaseException as exc:  # kept for the thread that waits for it
                with self._cond:
                    self._errors.append((exc, silent))
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted is done; False when ``timeout`` passed first."""
        if self._busy == 0 or threading.current_thread() is self._thread:
            return self._busy == 0
        with self._cond:
            return self._cond.wait_for(lambda: self._busy == 0, timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the jobs, then report the first error kept (one AutologWarning)."""
        done = self.wait(timeout)
        with self._cond:
            errors, self._errors = self._errors, []
        if errors:
            exc, silent = errors[0]
            patching.report_error(self.owner, exc, silent)
        return done

    def barrier(self) -> None:
        """``flush`` for ``tracking._store()``: a no-op when idle and nothing failed."""
        if self._busy or self._errors:
            self.flush()


def start(owner: str) -> Writer:
    """The writer of ``owner``, waited for by every store access and at exit."""
    writer = Writer(owner)
    tracking.register_barrier(writer.barrier)
    return writer


def _flush_at_exit(writer: Writer) -> None:
    try:
        writer.flush(timeout=600.0)
    except Exception:
        pass
