"""The gate autolog's background threads pass before each piece of work: held while an
autologged fit is in autolog's wrapper, for at most ``HOLD_S``.

The background work (the REST store's lane, autolog's deferred work) is Python; while it runs,
the training thread gets the GIL back only every switch interval (5 ms), so a tiny fit that
queued its writes took 8 to 10 ms longer to return than its own CPU time (statsmodels and
scikit-learn fits through ``autolog server``, benchmarks/server_fits.py). Held, the fit returns
first and the work then runs while the user's code goes on; a fit longer than ``HOLD_S`` lets it
through from then on, so a long training's writes are late by ``HOLD_S`` at most. A flush opens
the gate: whoever flushes waits for that work.
"""

from __future__ import annotations

import threading
import time

HOLD_S = 0.1
_open = threading.Event()
_open.set()
_lock = threading.Lock()
_fits = 0  # autologged fits in their wrapper now, any thread
_deadline = 0.0


def hold() -> None:
    """A fit entered autolog's wrapper (pair with :func:`release`)."""
    global _fits, _deadline
    with _lock:
        _fits += 1
        if _fits == 1:
            _deadline = time.monotonic() + HOLD_S
            _open.clear()


def release() -> None:
    """A fit left autolog's wrapper."""
    global _fits
    with _lock:
        _fits = max(0, _fits - 1)
        if _fits == 0:
            _open.set()


def open_now() -> None:
    """Let the background work through now (a flush waits for it)."""
    _open.set()


def wait() -> None:
    """Called by a background thread before each piece of work."""
    if _open.is_set():
        return
    left = _deadline - time.monotonic()
    if left > 0:
        _open.wait(left)
