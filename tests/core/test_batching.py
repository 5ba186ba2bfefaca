"""Metric batching: exact histories, flush at run end, at failure and at interpreter exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import autolog
from autolog import batching


def test_points_arrive_in_order_with_size_and_time_flushes() -> None:
    with autolog.start_run() as run:
        b = batching.MetricBatcher(run.info.run_id, max_points=7, max_delay_s=0.0)
        for i in range(100):
            b.record("loss", i / 10, step=i)
        b.record_many({"a": 1, "b": 2.5}, step=100)
    history = autolog.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(i, i / 10) for i in range(100)]
    assert autolog.get_run(run.info.run_id).data.metrics == {"loss": 9.9, "a": 1.0, "b": 2.5}


def test_batcher_for_is_flushed_when_the_run_ends() -> None:
    with autolog.start_run() as run:
        b = batching.batcher_for(run.info.run_id)
        assert batching.batcher_for(run.info.run_id) is b
        for i in range(10):
            b.record("m", float(i), step=i)
        assert autolog.get_metric_history(run.info.run_id, "m") == []  # still buffered
    assert len(autolog.get_metric_history(run.info.run_id, "m")) == 10


def test_failure_keeps_every_recorded_point() -> None:
    try:
        with autolog.start_run() as run:
            b = batching.batcher_for(run.info.run_id)
            for i in range(25):
                b.record("m", float(i), step=i)
            raise RuntimeError("crash")
    except RuntimeError:
        pass
    got = autolog.get_run(run.info.run_id)
    assert got.info.status == "FAILED"
    assert [m.step for m in autolog.get_metric_history(run.info.run_id, "m")] == list(range(25))


def test_points_are_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import autolog
        from autolog import batching
        autolog.set_tracking_uri({str(tmp_path / "s")!r})
        run = autolog.start_run()
        print(run.info.run_id, flush=True)
        b = batching.MetricBatcher(run.info.run_id, max_points=10**9, max_delay_s=10**6)
        for i in range(1000):
            b.record("m", float(i), step=i)
        raise SystemExit(0)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    rid = out.stdout.strip()
    client = autolog.Client(str(tmp_path / "s"))
    assert len(client.get_metric_history(rid, "m")) == 1000
    assert client.get_run(rid).info.status == "FINISHED"
