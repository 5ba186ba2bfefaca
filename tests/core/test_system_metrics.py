"""System metrics: the sampler's keys and values, its switches, its steps, its end, its faults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import psutil
import pytest
from core import fakes

import autolog
from autolog import integration, patching, system_metrics, tracking
from autolog.errors import AutologWarning

REPO = Path(__file__).resolve().parents[2]
BASE_KEYS = {
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_available_megabytes",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
}
GPU_KEYS = (
    "utilization_percentage",
    "memory_usage_megabytes",
    "memory_usage_percentage",
    "power_usage_watts",
    "power_usage_percentage",
)


def gpu_count() -> int:
    """NVIDIA GPUs that NVML reports on this machine (0 without a driver)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetCount()
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return 0


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    """Sample every 0.1 s; no enabling variable from the environment; autolog's default reset."""
    for name in system_metrics.ENV_ENABLE + system_metrics.ENV_SAMPLES + system_metrics.ENV_NODE_ID:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(system_metrics.ENV_INTERVAL[1], raising=False)
    monkeypatch.setenv(system_metrics.ENV_INTERVAL[0], "0.1")
    monkeypatch.setattr(system_metrics, "_autolog_default", None)
    yield
    assert system_metrics.running() == []


def sampler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("autolog-system-metrics")]


def wait_for_points(run_id: str, n: int, key: str = "system/cpu_utilization_percentage") -> None:
    """Wait (at most 20 s) until the sampler has handed n points of key to the store."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if len(autolog.get_metric_history(run_id, key)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} points of {key} after 20 s")


def test_keys_are_mlflows_and_values_plausible_then_no_thread_is_left(store):
    with autolog.start_run(log_system_metrics=True) as run:
        assert len(sampler_threads()) == 1
        wait_for_points(run.info.run_id, 3)
    assert sampler_threads() == []
    got = store.get_run(run.info.run_id).data.metrics
    gpu = {f"system/gpu_{i}_{k}" for i in range(gpu_count()) for k in GPU_KEYS}
    assert set(got) == BASE_KEYS | gpu
    for key, value in got.items():
        if key.endswith("_percentage"):
            assert 0.0 <= value <= 100.0, (key, value)
    assert got["system/system_memory_usage_megabytes"] > 0
    total_mb = psutil.virtual_memory().total / 1e6
    assert got["system/system_memory_usage_megabytes"] < total_mb
    disk_total_mb = psutil.disk_usage(os.sep).total / 1e6
    disk_sum = got["system/disk_usage_megabytes"] + got["system/disk_available_megabytes"]
    assert 0 < disk_sum <= disk_total_mb + 0.2  # used + free <= total (reserved blocks aside)
    assert got["system/network_receive_megabytes"] >= 0
    assert got["system/network_transmit_megabytes"] >= 0
    history = autolog.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    steps = [m.step for m in history]
    assert steps == list(range(len(steps)))  # MLflow's steps: 0, 1, 2, ... one per average
    assert len(steps) >= 3


def test_off_by_default_and_each_switch(store, monkeypatch):
    with autolog.start_run():
        assert sampler_threads() == []
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    with autolog.start_run():
        assert len(sampler_threads()) == 1
        with autolog.start_run(nested=True):  # a child run shares its parent's machine
            assert len(sampler_threads()) == 1
        with autolog.start_run(nested=True, log_system_metrics=True):
            assert len(sampler_threads()) == 2
    assert sampler_threads() == []
    monkeypatch.setenv("AUTOLOG_ENABLE_SYSTEM_METRICS_LOGGING", "false")  # ours wins
    with autolog.start_run():
        assert sampler_threads() == []
    autolog.autolog(log_system_metrics=True)  # beats the environment
    with autolog.start_run():
        assert len(sampler_threads()) == 1
    with autolog.start_run(log_system_metrics=False):  # the run's own flag beats both
        assert sampler_threads() == []
    autolog.autolog(disable=True)  # back to the environment (false)
    with autolog.start_run():
        assert sampler_threads() == []


@pytest.fixture
def fakelib(tmp_path):
    fakes.install(tmp_path)
    import fakelib as lib

    yield lib
    autolog.autolog(disable=True)
    for name in ("fakelib", "integrations.fakelib"):
        sys.modules.pop(name, None)
    integration.INTEGRATIONS.pop("fakelib", None)
    integration._hooked.discard("fakelib")


class SlowData(list):
    """Training data whose len() takes 0.35 s (the fit's work) and notes the sampler threads."""

    seen: list[list[str]] = []

    def __len__(self):
        SlowData.seen.append(sampler_threads())
        time.sleep(0.35)
        return super().__len__()


def test_a_run_autolog_starts_samples_only_when_autolog_says_so(store, fakelib):
    autolog.autolog()
    fakelib.Model().fit(SlowData([1, 2]))
    autolog.autolog(log_system_metrics=True)
    fakelib.Model().fit(SlowData([1, 2]))
    quiet, sampled = sorted(store.search_runs(None), key=lambda r: r.info.start_time)
    assert not any(k.startswith("system/") for k in quiet.data.metrics)
    assert set(sampled.data.metrics) >= BASE_KEYS | {"loss"}
    assert sampled.info.status == "FINISHED"
    thread = f"autolog-system-metrics-{sampled.info.run_id[:8]}"
    assert SlowData.seen == [[], [], [thread], [thread]]  # len() runs twice per fit
    assert sampler_threads() == []


def test_window_average_rounds_like_mlflow_and_network_is_the_last_total():
    window = [
        {"cpu_utilization_percentage": 10.0, "network_receive_megabytes": 1.25},
        {"cpu_utilization_percentage": 20.25, "network_receive_megabytes": 2.5},
    ]
    assert system_metrics._aggregate(window, "system/node_3/") == {
        "system/node_3/cpu_utilization_percentage": 15.1,
        "system/node_3/network_receive_megabytes": 2.5,
    }


def test_samples_before_logging_and_node_id(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "3")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_NODE_ID", "node_3")
    with autolog.start_run(log_system_metrics=True) as run:
        [sampler] = system_metrics._samplers.values()
        assert (sampler.interval, sampler.samples) == (0.1, 3)
        wait_for_points(run.info.run_id, 1, "system/node_3/cpu_utilization_percentage")
    keys = set(store.get_run(run.info.run_id).data.metrics)
    assert keys >= {k.replace("system/", "system/node_3/") for k in BASE_KEYS}
    assert not keys & BASE_KEYS


def test_a_resumed_run_continues_the_steps(store):
    with autolog.start_run(log_system_metrics=True) as run:
        wait_for_points(run.info.run_id, 2)
    first = autolog.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    n = len(first)
    with autolog.start_run(run_id=run.info.run_id, log_system_metrics=True):
        wait_for_points(run.info.run_id, n + 2)
    steps = [
        m.step for m in autolog.get_metric_history(run.info.run_id, "system/disk_usage_percentage")
    ]
    assert sorted(steps) == list(range(len(steps)))
    assert len(steps) >= n + 2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AUTOLOG_SYSTEM_METRICS_SAMPLING_INTERVAL", "ten", "'ten' is not a positive number"),
        ("AUTOLOG_SYSTEM_METRICS_SAMPLING_INTERVAL", "-1", "'-1' is not a positive number"),
        ("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "0", "'0' is not a positive whole"),
        ("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "maybe", "'maybe' is not a boolean"),
    ],
)
def test_a_bad_setting_names_itself(store, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    flag = None if "ENABLE" in name else True
    with pytest.raises(ValueError, match=f"{name}={message}"):
        autolog.start_run(log_system_metrics=flag)
    autolog.end_run()
    with pytest.raises(ValueError, match="log_system_metrics='yes'; pass True, False or None"):
        autolog.autolog(log_system_metrics="yes")  # type: ignore[arg-type]


def test_a_failing_store_is_one_warning_and_the_run_still_ends(store, monkeypatch):
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.setattr(patching, "_last_warning", {})
    monkeypatch.setattr(patching, "_suppressed", {})

    def refuse(*args, **kwargs):
        raise ConnectionError("store is down")

    run = autolog.start_run(log_system_metrics=True)
    monkeypatch.setattr(store, "log_batch", refuse)
    time.sleep(0.35)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autolog.end_run()
    ours = [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]
    assert ours == [
        "autolog: logging for system metrics failed and was skipped; training is unaffected: "
        "ConnectionError: store is down"
    ]
    assert store.get_run(run.info.run_id).info.status == "FINISHED"
    assert sampler_threads() == []


def test_a_process_exits_promptly_with_the_sampler_running(tmp_path):
    script = textwrap.dedent(
        f"""
        import autolog
        autolog.set_tracking_uri({str(tmp_path / "runs")!r})
        autolog.start_run(log_system_metrics=True)  # never ended: the exit ends it
        print("started", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "AUTOLOG_SYSTEM_METRICS_SAMPLING_INTERVAL": "600"}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert done.stdout == "started\n"
    assert elapsed < 60  # a sampler keeping the process alive would wait out its 600 s interval
    tracking.set_tracking_uri(str(tmp_path / "runs"))
    [run] = tracking._store().search_runs(None)
    assert run.info.status == "FINISHED"
