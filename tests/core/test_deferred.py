"""autolog.batching.defer: work moved off the training thread, in order, waited for by reads,
by end_run (unless the run is ended by the fit that deferred it) and by flush_deferred."""

from __future__ import annotations

import contextlib
import threading
import time
import warnings

import pytest

import autolog
from autolog import batching, patching, tracking
from autolog.errors import AutologWarning


def _gate() -> tuple[threading.Event, threading.Event]:
    """(started, opened): a task that sets ``started`` and waits for ``opened``."""
    return threading.Event(), threading.Event()


def _wait_for(started: threading.Event, opened: threading.Event) -> None:
    started.set()
    assert opened.wait(30)


def test_work_runs_in_order_and_a_flush_waits_for_its_run_only() -> None:
    done: list[int] = []
    started, opened = _gate()
    with autolog.start_run() as a, autolog.start_run(nested=True) as b:
        batching.defer(a.info.run_id, "test", _wait_for, started, opened)
        for i in range(3):
            batching.defer(a.info.run_id, "test", done.append, i)
        assert started.wait(30)
        batching.flush_deferred(b.info.run_id)  # nothing pending for b: returns at once
        assert done == []
        threading.Timer(0.1, opened.set).start()
        batching.flush_deferred(a.info.run_id)
        assert done == [0, 1, 2]
        assert not batching._deferred.pending


def test_reads_wait_and_the_work_may_read_its_own_run() -> None:
    seen: list[dict] = []

    def work(run_id: str) -> None:
        autolog.Client().log_metric(run_id, "late", 2.5)
        seen.append(autolog.get_run(run_id).data.metrics)  # no deadlock on its own read

    with autolog.start_run() as run:
        batching.defer(run.info.run_id, "test", work, run.info.run_id)
        assert autolog.get_run(run.info.run_id).data.metrics == {"late": 2.5}
    assert seen == [{"late": 2.5}]


def test_end_run_waits_unless_the_run_is_detached() -> None:
    started, opened = _gate()
    run = autolog.start_run()
    batching.defer(run.info.run_id, "test", _wait_for, started, opened, wait_at_end=False)
    assert started.wait(30)
    autolog.end_run()  # returns although the work waits
    assert tracking._store().get_run(run.info.run_id).info.status == "FINISHED"
    assert run.info.run_id in batching._deferred.pending
    threading.Timer(0.1, opened.set).start()
    assert autolog.get_run(run.info.run_id).info.status == "FINISHED"
    assert run.info.run_id not in batching._deferred.pending

    logged: list[str] = []
    with autolog.start_run() as user_run:
        batching.defer(user_run.info.run_id, "test", logged.append, "x")
    assert logged == ["x"]  # end_run of a run the caller started waited for it


def test_failures_raise_under_testing_and_are_one_warning_otherwise(monkeypatch) -> None:
    def broken(message: str) -> None:
        raise OSError(message)

    with autolog.start_run() as run:
        batching.defer(run.info.run_id, "sklearn", broken, "first")
        with pytest.raises(OSError, match="first"):
            batching.flush_deferred(run.info.run_id)
        batching.flush_deferred(run.info.run_id)  # reported once
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.setattr(patching, "_last_warning", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autolog.start_run() as run:
            for message in ("one", "two"):
                batching.defer(run.info.run_id, "sklearn", broken, message)
        assert autolog.get_run(run.info.run_id).info.status == "FINISHED"
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1
    assert "one" in str(ours[0].message)


def test_end_deferred_ends_the_run_after_its_work_and_flush_says_when_done(tmp_path) -> None:
    started, opened = _gate()
    run = autolog.start_run()
    run_id = run.info.run_id
    batching.defer(run_id, "test", _wait_for, started, opened)
    batching.defer(run_id, "test", autolog.Client().log_metric, run_id, "late", 1.5)
    batching.end_deferred(run_id, "test")
    assert tracking.active_run() is None  # the caller's thread goes on at once
    assert started.wait(30)
    assert batching.flush_deferred(run_id, timeout=0.1) is False
    assert tracking._store().get_run(run_id).info.status == "RUNNING"
    opened.set()
    # set_tracking_uri waits: the work and the run's end land in the store they were meant for
    first = tracking._store()
    autolog.set_tracking_uri(tmp_path / "elsewhere")
    finished = first.get_run(run_id)
    assert (finished.info.status, finished.data.metrics) == ("FINISHED", {"late": 1.5})
    assert batching.flush_deferred(run_id, timeout=0) is True
    assert autolog.search_runs(output_format="list") == []


READS_OF_A_MODEL = {
    "load_model runs:/": lambda run_id: autolog.load_model(f"runs:/{run_id}/model").predict([1]),
    "load_model models:/": lambda run_id: autolog.load_model("models:/deferred/1").predict([1]),
    "get_latest_versions": lambda run_id: (
        autolog.Client().get_latest_versions("deferred")[0].run_id
    ),
    "search_model_versions": lambda run_id: autolog.Client().search_model_versions()[0].run_id,
    "register_model": lambda run_id: autolog.register_model(f"runs:/{run_id}/model", "x").version,
    "last_logged_model": lambda run_id: autolog.last_logged_model().source_run_id,
    "search_logged_models": lambda run_id: autolog.Client().search_logged_models()[0].source_run_id,
}


@pytest.mark.parametrize("read", sorted(READS_OF_A_MODEL))
def test_reads_of_a_model_wait_for_a_deferred_model_log(read: str) -> None:
    started, opened = _gate()
    with autolog.start_run() as run:
        run_id = run.info.run_id
    batching.defer(run_id, "test", _wait_for, started, opened)
    batching.defer(run_id, "test", _log_and_register, run_id)
    assert started.wait(30)
    threading.Timer(0.2, opened.set).start()
    expected = {"load_model runs:/": [2], "load_model models:/": [2], "register_model": "1"}
    assert READS_OF_A_MODEL[read](run_id) == expected.get(read, run_id)


class Doubler:
    def predict(self, rows):
        return [2 * r for r in rows]


def _log_and_register(run_id: str) -> None:
    from autolog import models

    models.log_model(
        "python_function", Doubler(), "model", registered_model_name="deferred", run_id=run_id
    )


# -- the gate (store/gate.py): background work waits while a fit is in autolog's wrapper -------


@contextlib.contextmanager
def _in_a_fit(monkeypatch, hold_s: float):
    """A run, and a fit in autolog's wrapper (the gate held, for at most hold_s) inside it."""
    from store import gate

    monkeypatch.setattr(gate, "HOLD_S", hold_s)
    with autolog.start_run() as run:
        gate.hold()
        try:
            yield run.info.run_id
        finally:
            gate.release()


def test_work_waits_until_the_fit_in_autologs_wrapper_returns(monkeypatch) -> None:
    ran = threading.Event()
    with _in_a_fit(monkeypatch, 30.0) as run_id:
        batching.defer(run_id, "test", ran.set)
        assert not ran.wait(0.3)
    assert ran.wait(10)


def test_a_fit_longer_than_the_hold_lets_the_work_through(monkeypatch) -> None:
    ran: list[float] = []
    with _in_a_fit(monkeypatch, 0.2) as run_id:
        start = time.monotonic()
        batching.defer(run_id, "test", lambda: ran.append(time.monotonic()))
        deadline = time.monotonic() + 10
        while not ran and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(ran) == 1 and 0.15 <= ran[0] - start < 5


def test_a_flush_inside_the_fit_opens_the_gate(monkeypatch) -> None:
    ran = threading.Event()
    with _in_a_fit(monkeypatch, 30.0) as run_id:
        start = time.monotonic()
        batching.defer(run_id, "test", ran.set)
        assert batching.flush_deferred(run_id) is True
        assert ran.is_set() and time.monotonic() - start < 10


def test_a_patched_fit_holds_the_gate_until_it_returns() -> None:
    from autolog import integration
    from store import gate

    seen: list[bool] = []

    def patch_fn(call, instance, args, kwargs):
        seen.append(gate._open.is_set())
        return call(*args, **kwargs)

    wrapper = patching._make_wrapper("probe", patch_fn, lambda: integration.Config())
    assert wrapper(lambda: 1, None, (), {}) == 1
    assert seen == [False] and gate._open.is_set() and gate._fits == 0


def _defer_in_worker(_: int) -> list[str]:
    names: list[str] = []
    batching.defer("a-run", "test", lambda: names.append(threading.current_thread().name))
    return names


def test_in_a_multiprocessing_worker_deferred_work_runs_at_once() -> None:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map(_defer_in_worker, [0]) == [["MainThread"]]
