"""System metrics: what the machine did during a run (CPU, memory, disk, network, NVIDIA GPUs).

A run started with ``start_run(log_system_metrics=True)`` (or while ``autolog(
log_system_metrics=True)``, ``AUTOLOG_ENABLE_SYSTEM_METRICS_LOGGING`` or MLflow's
``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` says so) gets one daemon thread that samples psutil
(and NVML through nvidia-ml-py, when an NVIDIA GPU answers) every ``sampling_interval`` seconds
and, every ``samples_before_logging`` samples, logs their average under MLflow's key names
(``system/cpu_utilization_percentage``, ...) at steps 0, 1, 2, ... (a resumed run continues
after its last system step). Like MLflow, a window not yet complete when the run ends is
dropped, so a run shorter than one interval has no system metrics.

Points go through a MetricBatcher (written by the batching writer thread); the sampler is
stopped by an end-run hook and never keeps a process alive (a daemon that waits on an Event).
A failure (psutil missing, the store refusing the points) stops that sampler and becomes one
warning when its run ends (raised under AUTOLOG_TESTING); training is never affected.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from autolog import batching, patching, tracking

if TYPE_CHECKING:
    from store.sqlite import Store

NAME = "system metrics"
PREFIX = "system/"
DEFAULT_SAMPLING_INTERVAL_S = 10.0
DEFAULT_SAMPLES_BEFORE_LOGGING = 1
# autolog's variable first, then MLflow's (same meaning, so MLflow users need change nothing)
ENV_ENABLE = ("AUTOLOG_ENABLE_SYSTEM_METRICS_LOGGING", "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")
ENV_INTERVAL = (
    "AUTOLOG_SYSTEM_METRICS_SAMPLING_INTERVAL",
    "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL",
)
ENV_SAMPLES = (
    "AUTOLOG_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING",
    "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING",
)
ENV_NODE_ID = ("AUTOLOG_SYSTEM_METRICS_NODE_ID", "MLFLOW_SYSTEM_METRICS_NODE_ID")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")

_autolog_default: bool | None = None  # set by autolog(log_system_metrics=...)
_samplers: dict[str, Sampler] = {}
_lock = threading.Lock()


# -- settings ---------------------------------------------------------------------------------


def _env(names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = os.environ.get(name)
        if value is not None:
            return name, value
    return None


def _env_enabled() -> bool:
    found = _env(ENV_ENABLE)
    if found is None:
        return False
    name, value = found
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean; set it to 'true' or 'false'.")


def sampling_interval() -> float:
    """Seconds between two samples (environment, else 10)."""
    found = _env(ENV_INTERVAL)
    if found is None:
        return DEFAULT_SAMPLING_INTERVAL_S
    name, value = found
    try:
        interval = float(value)
    except ValueError:
        interval = -1.0
    if not interval > 0 or interval == float("inf"):
        raise ValueError(f"{name}={value!r} is not a positive number of seconds, e.g. 10.")
    return interval


def samples_before_logging() -> int:
    """Samples averaged into one logged point (environment, else 1)."""
    found = _env(ENV_SAMPLES)
    if found is None:
        return DEFAULT_SAMPLES_BEFORE_LOGGING
    name, value = found
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r} is not a positive whole number, e.g. 1.")
    return int(value)


def set_default_for_autolog_runs(enabled: bool | None) -> None:
    """autolog(log_system_metrics=...): the default for runs started from now on (None: the
    environment variables decide)."""
    global _autolog_default
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"log_system_metrics={enabled!r}; pass True, False or None.")
    _autolog_default = enabled


def enable_system_metrics_logging() -> None:
    """Log system metrics in every run started from now on (MLflow's function)."""
    os.environ[ENV_ENABLE[0]] = "true"


def disable_system_metrics_logging() -> None:
    """Log no system metrics unless a run asks (``start_run(log_system_metrics=True)``)."""
    os.environ[ENV_ENABLE[0]] = "false"


def set_system_metrics_sampling_interval(interval: float | None) -> None:
    """Seconds between two samples for samplers started from now on (None: back to 10)."""
    _set_env(ENV_INTERVAL[0], interval)
    sampling_interval()  # a bad value raises here, naming itself


def set_system_metrics_samples_before_logging(samples: int | None) -> None:
    """Samples averaged into each logged point for samplers started from now on (None: 1)."""
    _set_env(ENV_SAMPLES[0], samples)
    samples_before_logging()


def set_system_metrics_node_id(node_id: str | None) -> None:
    """Log keys as ``system/<node_id>/...`` (to tell machines of one job apart)."""
    _set_env(ENV_NODE_ID[0], node_id)


def _set_env(name: str, value: Any) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def wanted(log_system_metrics: bool | None, nested: bool) -> bool:
    """Whether a run starting now samples: its own flag, else (top-level runs only) the
    autolog() flag, else the environment."""
    if log_system_metrics is not None:
        return bool(log_system_metrics)
    if nested:
        return False  # a child run (a grid-search candidate) shares its parent's machine
    if _autolog_default is not None:
        return _autolog_default
    return _env_enabled()


# -- the hooks tracking calls -------------------------------------------------------------------


def on_start_run(run_id: str, log_system_metrics: bool | None, nested: bool, resumed: bool) -> None:
    """Called by tracking.start_run for every run it makes active."""
    try:
        if not wanted(log_system_metrics, nested):
            return
        node_id = _env(ENV_NODE_ID)
        start(run_id, node_id=node_id[1] if node_id else None, resume=resumed)
    except Exception as exc:
        patching.report_error(NAME, exc)


def start(
    run_id: str,
    interval: float | None = None,
    samples: int | None = None,
    node_id: str | None = None,
    resume: bool = False,
    store: Store | None = None,
) -> Sampler:
    """Start sampling into a run (one sampler per run; a second call returns the first)."""
    with _lock:
        existing = _samplers.get(run_id)
        if existing is not None and existing.alive:
            return existing
        sampler = Sampler(
            run_id,
            interval if interval is not None else sampling_interval(),
            samples if samples is not None else samples_before_logging(),
            node_id,
            store if store is not None else tracking._store(),
            resume,
        )
        _samplers[run_id] = sampler
    sampler.start()
    return sampler


def stop(run_id: str, status: str = "FINISHED") -> None:
    """End-run hook: stop the run's sampler, write its points; a failure is one warning."""
    with _lock:
        sampler = _samplers.pop(run_id, None)
    if sampler is None:
        return
    error = sampler.stop()
    if error is not None:
        patching.report_error(NAME, error)


def running() -> list[str]:
    """Ids of the runs being sampled."""
    with _lock:
        return [rid for rid, s in _samplers.items() if s.alive]


# -- the sampler --------------------------------------------------------------------------------


class _Batcher(batching.MetricBatcher):
    """The sampler's buffer. batching.flush_run (an end-run hook registered before ``stop``)
    leaves it alone: the sampler may add a point until ``stop`` has joined it."""

    def close(self) -> None:
        pass

    def close_now(self) -> None:
        batching.MetricBatcher.close(self)


class Sampler:
    """One daemon thread sampling the machine into one run."""

    def __init__(
        self,
        run_id: str,
        interval: float,
        samples: int,
        node_id: str | None,
        store: Store,
        resume: bool = False,
    ):
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise ValueError(
                f"sampling interval {interval!r} must be a positive number of seconds."
            )
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples_before_logging {samples!r} must be a whole number >= 1.")
        self.run_id = run_id
        self.interval = float(interval)
        self.samples = samples
        self.prefix = PREFIX + (f"{node_id}/" if node_id else "")
        self.resume = resume
        self.error: BaseException | None = None
        self._event = threading.Event()
        self._batcher = _Batcher(run_id, store, max_delay_s=0.0, owner=NAME)
        self._thread = threading.Thread(
            target=self._loop, name=f"autolog-system-metrics-{run_id[:8]}", daemon=True
        )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> BaseException | None:
        """Stop sampling (an incomplete window is dropped, as MLflow does), write what was
        logged; the first failure is returned."""
        self._event.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        try:
            self._batcher.close_now()
        except Exception as exc:
            self.error = self.error or exc
        return self.error

    def _loop(self) -> None:
        probes = None
        try:
            probes = _Probes()
            step = self._next_step() if self.resume else 0
            window: list[dict[str, float]] = []
            while not self._event.wait(self.interval):
                window.append(probes.sample())
                if len(window) >= self.samples:
                    self._batcher.record_many(_aggregate(window, self.prefix), step=step)
                    step += 1
                    window = []
        except Exception as exc:
            self.error = exc
        finally:
            if probes is not None:
                probes.close()

    def _next_step(self) -> int:
        """A resumed run continues after the last step its system metrics reached."""
        key = self.prefix + "cpu_utilization_percentage"
        history = self._batcher.store.get_metric_history(self.run_id, key)
        return max((m.step for m in history), default=-1) + 1


# Keys whose value is a total since the sampler started: the window's last value, not its mean.
_CUMULATIVE = ("network_receive_megabytes", "network_transmit_megabytes")


def _aggregate(window: list[dict[str, float]], prefix: str) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for sample in window:
        for key, value in sample.items():
            sums.setdefault(key, []).append(value)
    out = {}
    for key, values in sums.items():
        if key in _CUMULATIVE:
            out[prefix + key] = values[-1]
        else:
            out[prefix + key] = round(sum(values) / len(values), 1)  # MLflow rounds so
    return out


class _Probes:
    """psutil (CPU, memory, disk of the root folder, network since start) and NVML per GPU."""

    def __init__(self) -> None:
        try:
            import psutil
        except ImportError as exc:
            raise ImportError(
                "System metrics need psutil, which autolog depends on: pip install psutil."
            ) from exc
        self.psutil = psutil
        psutil.cpu_percent(interval=None)  # primes: the next call reports use since now
        net = psutil.net_io_counters()
        self.net0 = (net.bytes_recv, net.bytes_sent) if net is not None else (0, 0)
        self.nvml: Any = None
        self.gpus: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.gpus = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
            self.nvml = pynvml
        except Exception:
            pass  # no nvidia-ml-py or no NVIDIA driver/GPU: no GPU keys, as in MLflow

    def sample(self) -> dict[str, float]:
        ps = self.psutil
        mem = ps.virtual_memory()
        disk = ps.disk_usage(os.sep)
        out = {
            "cpu_utilization_percentage": ps.cpu_percent(interval=None),
            "system_memory_usage_megabytes": mem.used / 1e6,
            "system_memory_usage_percentage": mem.used / mem.total * 100,
            "disk_usage_percentage": disk.percent,
            "disk_usage_megabytes": disk.used / 1e6,
            "disk_available_megabytes": disk.free / 1e6,
        }
        net = ps.net_io_counters()
        if net is not None:
            out["network_receive_megabytes"] = (net.bytes_recv - self.net0[0]) / 1e6
            out["network_transmit_megabytes"] = (net.bytes_sent - self.net0[1]) / 1e6
        for i, handle in enumerate(self.gpus):
            out.update(_gpu_sample(self.nvml, i, handle))
        return out

    def close(self) -> None:
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass


def _gpu_sample(nvml: Any, i: int, handle: Any) -> dict[str, float]:
    """One GPU's keys; a query the device does not support leaves its keys out."""
    out: dict[str, float] = {}
    try:
        util = nvml.nvmlDeviceGetUtilizationRates(handle)
        out[f"gpu_{i}_utilization_percentage"] = float(util.gpu)
    except nvml.NVMLError:
        pass
    try:
        mem = nvml.nvmlDeviceGetMemoryInfo(handle)
        out[f"gpu_{i}_memory_usage_megabytes"] = mem.used / 1e6
        out[f"gpu_{i}_memory_usage_percentage"] = mem.used / mem.total * 100
    except nvml.NVMLError:
        pass
    try:
        milliwatts = nvml.nvmlDeviceGetPowerUsage(handle)
        limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle)
        out[f"gpu_{i}_power_usage_watts"] = milliwatts / 1000
        out[f"gpu_{i}_power_usage_percentage"] = milliwatts / limit * 100
    except (nvml.NVMLError, ZeroDivisionError):
        pass
    return out


tracking.register_end_run_hook(stop)
