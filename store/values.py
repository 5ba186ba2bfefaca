"""Checks and conversions of the values a store keeps, shared by every backend."""

from __future__ import annotations

import math
import time
from typing import Any

from store.entities import Metric
from store.errors import InvalidValueError

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
MAX_KEY_LENGTH = 250


def now_ms() -> int:
    return int(time.time() * 1000)


def _to_db(value: float) -> float | None:
    return None if math.isnan(value) else value


def _from_db(value: float | None) -> float:
    return math.nan if value is None else float(value)


def check_key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidValueError(f"Invalid {what} key {key!r}: keys must be non-empty strings.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidValueError(
            f"Invalid {what} key {key[:40]!r}...: {len(key)} characters, at most {MAX_KEY_LENGTH}."
        )
    return key


def check_metric_value(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidValueError(
            f"Metric {key!r} got value {value!r} of type {type(value).__name__}; metrics must be "
            "numbers (log text with set_tag or log_param)."
        ) from None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict params become dotted keys: {'a': {'b': 1}} -> {'a.b': 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _metric(key: str, value: float, timestamp: int, step: int) -> Metric:
    """A Metric without the frozen dataclass's __init__ (half the cost, for long histories)."""
    m = object.__new__(Metric)
    m.__dict__.update(key=key, value=value, timestamp=timestamp, step=step)
    return m


def _latest_points(rows: list[tuple]) -> list[tuple]:
    """The last point per key of a batch (highest step, then timestamp, then position)."""
    best: dict[str, tuple] = {}
    for row in rows:
        cur = best.get(row[1])
        if cur is None or (row[4], row[3]) >= (cur[4], cur[3]):
            best[row[1]] = row
    return list(best.values())


def _param_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
