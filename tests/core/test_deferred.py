"""autolog.batching.defer: work moved off the training thread, in order, waited for by reads,
by end_run (unless the run is ended by the fit that deferred it) and by flush_deferred."""

from __future__ import annotations

import threading
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
