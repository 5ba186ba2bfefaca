"""Write transactions of the SQLite store across processes: the file lock that hands the write
over at once."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path

from store.base import open_store
from store.sqlite_writes import WriteLock


def _hold_lock(path: str, held: object, release: object) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.set()  # type: ignore[attr-defined]
    release.wait(30)  # type: ignore[attr-defined]
    os.close(fd)  # a process's lock goes with its descriptor


def test_a_write_waits_for_another_process_holding_the_lock_and_goes_on_at_its_release(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    rid = store.create_run("0").info.run_id
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_lock, args=(str(tmp_path / "a.db.write-lock"), held, release))
    other.start()
    try:
        assert held.wait(30)
        with store.writing_now() as free:
            assert not free  # held elsewhere: no wait
        writer = threading.Thread(target=store.log_batch, args=(rid, [("m", 1.5, 7, 3)]))
        writer.start()
        writer.join(0.3)
        assert writer.is_alive()  # waiting on the other process, not writing beside it
        assert [m.value for m in store.get_metric_history(rid, "m")] == []
        release.set()
        writer.join(10)
        assert not writer.is_alive()
    finally:
        release.set()
        other.join(10)
    assert [(m.value, m.timestamp, m.step) for m in store.get_metric_history(rid, "m")] == [
        (1.5, 7, 3)
    ]
    with store.writing_now() as free:  # free again; a write inside takes it once more
        assert free
        store.log_batch(rid, [("m", 2.5, 8, 4)])
    assert len(store.get_metric_history(rid, "m")) == 2


def test_the_lock_is_reentrant_in_a_thread_and_excludes_other_threads(tmp_path: Path) -> None:
    lock = WriteLock(tmp_path / "x.db")
    order: list[str] = []

    def other_thread() -> None:
        with lock:
            order.append("other")

    with lock:
        with lock:
            other = threading.Thread(target=other_thread)
            other.start()
            other.join(0.2)
            order.append("inner")
        order.append("outer")
    other.join(5)
    assert order == ["inner", "outer", "other"]
    assert (tmp_path / "x.db.write-lock").exists()


def test_a_lock_file_that_cannot_be_made_leaves_the_writes_to_sqlite(tmp_path: Path) -> None:
    lock = WriteLock(tmp_path / "missing-folder" / "x.db")
    with lock:
        pass
    assert not (tmp_path / "missing-folder").exists()


def test_inside_writing_now_sqlites_lock_held_elsewhere_raises_at_once_and_writes_nothing(
    tmp_path: Path,
) -> None:
    import sqlite3
    import time

    import pytest

    from store.sqlite_writes import BUSY_TIMEOUT_MS, WouldWait

    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    rid = store.create_run("0").info.run_id
    outside = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    outside.execute("BEGIN IMMEDIATE")  # SQLite's lock, without autolog's file lock
    try:
        with store.writing_now() as free:
            assert free
            started = time.monotonic()
            with pytest.raises(WouldWait, match="a.db is locked by another program"):
                store.log_batch(rid, [("m", 1.5, 7, 3)], params={"p": "1"})
            assert time.monotonic() - started < 0.5
        # outside the block the busy handler is back: a write waits for the lock
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
        writer = threading.Thread(target=store.log_batch, args=(rid, [("m", 2.5, 8, 4)]))
        writer.start()
        writer.join(0.3)
        assert writer.is_alive()
    finally:
        outside.execute("COMMIT")
        outside.close()
    writer.join(10)
    assert [(m.value, m.step) for m in store.get_metric_history(rid, "m")] == [(2.5, 4)]
    assert store.get_run(rid).data.params == {}
