"""On SQLite the server runs a small run write on its event loop (no thread hop); a large body
and every other write go to a worker thread (autolog/server/app.py, INLINE_WRITES)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from autolog.server.app import INLINE_MAX_BYTES, create_app
from store.base import open_store

API = "/api/2.0/mlflow/"


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_small_run_writes_run_on_the_loop_and_large_ones_in_a_thread(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    seen: list[tuple[str, bool]] = []
    for name in ("log_batch", "set_experiment_tag"):
        real = getattr(store, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            seen.append((_name, _on_loop()))
            return _real(*args, **kw)

        setattr(store, name, spy)
    with TestClient(create_app(store, ui=False)) as http:
        rid = http.post(API + "runs/create", json={"experiment_id": "0"}).json()["run"]["info"][
            "run_id"
        ]
        small = [{"key": "m", "value": float(i), "timestamp": i, "step": i} for i in range(1000)]
        assert (
            http.post(API + "runs/log-batch", json={"run_id": rid, "metrics": small}).json() == {}
        )
        large = [
            {"key": "big", "value": float(i), "timestamp": i, "step": i} for i in range(25_000)
        ]
        r = http.post(API + "runs/log-batch", json={"run_id": rid, "metrics": large})
        assert len(r.request.content) > INLINE_MAX_BYTES and r.json() == {}
        body = {"experiment_id": "0", "key": "k", "value": "v"}
        assert http.post(API + "experiments/set-experiment-tag", json=body).json() == {}
    assert seen == [("log_batch", True), ("log_batch", False), ("set_experiment_tag", False)]
    assert [m.step for m in store.get_metric_history(rid, "m")] == list(range(1000))
    assert len(store.get_metric_history(rid, "big")) == 25_000
    assert store.get_experiment("0").tags == {"k": "v"}


def _hold_lock(path: str, held: Any, release: Any) -> None:
    import fcntl
    import os

    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.set()
    release.wait(30)
    os.close(fd)


def test_a_write_that_would_wait_goes_to_a_thread_and_the_loop_serves_on(tmp_path: Path) -> None:
    """Another process (a second worker, a training process) holds the write lock: the write
    waits in a worker thread while the event loop answers other requests."""
    import multiprocessing
    import threading

    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    rid = store.create_run("0").info.run_id
    seen: list[bool] = []
    real = store.log_batch

    def spy(*args: Any, **kw: Any) -> Any:
        seen.append(_on_loop())
        return real(*args, **kw)

    store.log_batch = spy  # type: ignore[method-assign]
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_lock, args=(str(tmp_path / "a.db.write-lock"), held, release))
    other.start()
    answers: list[Any] = []
    try:
        assert held.wait(30)
        with TestClient(create_app(store, ui=False)) as http:
            point = {"key": "m", "value": 1.5, "timestamp": 7, "step": 3}
            body = {"run_id": rid, "metrics": [point]}
            writer = threading.Thread(
                target=lambda: answers.append(http.post(API + "runs/log-batch", json=body).json())
            )
            writer.start()
            writer.join(0.5)
            assert writer.is_alive() and seen == [False]  # waiting, in a worker thread
            got = http.get(API + "runs/get", params={"run_id": rid}).json()  # the loop answers
            assert got["run"]["data"]["metrics"] == []
            release.set()
            writer.join(10)
    finally:
        release.set()
        other.join(10)
    assert answers == [{}]
    assert [(m.value, m.step) for m in store.get_metric_history(rid, "m")] == [(1.5, 3)]
