"""Checks and conversions of the values a store keeps, shared by every backend.

SQLite stores integers as signed 64-bit and text as UTF-8: a step of 2**63 or a string with a
lone surrogate (half of a UTF-16 pair, e.g. from bytes decoded with errors='surrogateescape')
cannot be stored. Without the checks here sqlite3 raises a bare OverflowError or
UnicodeEncodeError that names neither the key nor the value.
"""

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
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_RANGE = f"from {INT64_MIN} to {INT64_MAX} (signed 64-bit, what SQLite stores)"


def now_ms() -> int:
    return int(time.time() * 1000)


def _to_db(value: float) -> float | None:
    return None if math.isnan(value) else value


def _from_db(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _surrogate(text: str) -> int | None:
    """The position of the first lone surrogate in text, or None (ASCII text is checked in O(1))."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return int(exc.start)
    return None


def _shown(value: Any) -> str:
    """repr(value), cut to 80 characters (a 400-digit int or a long text stays readable)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} characters)"


def _no_surrogate(text: str, label: str) -> str:
    """text, unless it holds a lone surrogate; label reads "<label> holds a lone surrogate"."""
    pos = _surrogate(text)
    if pos is not None:
        raise InvalidValueError(
            f"{label} holds a lone surrogate {text[pos]!r} at position {pos}, which UTF-8 (and "
            "so the store) cannot hold; decode the source bytes with errors='replace' or remove "
            "the character."
        )
    return text


def check_key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidValueError(f"Invalid {what} key {key!r}: keys must be non-empty strings.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidValueError(
            f"Invalid {what} key {key[:40]!r}...: {len(key)} characters, at most {MAX_KEY_LENGTH}."
        )
    return _no_surrogate(key, f"The {what} key {_shown(key)}")


def check_text(key: str, value: Any, what: str) -> str:
    """A param's or tag's value as stored text (str(value)), refusing lone surrogates."""
    text = value if isinstance(value, str) else str(value)
    return _no_surrogate(text, f"The value {_shown(text)} of {what} {key!r}")


def check_metric_value(key: str, value: Any) -> float:
    try:
        return float(value)
    except OverflowError:
        raise InvalidValueError(
            f"Metric {key!r} got value {_shown(value)}, beyond a 64-bit float (at most about "
            "1.8e308 either way); log a smaller number or its logarithm."
        ) from None
    except (TypeError, ValueError):
        raise InvalidValueError(
            f"Metric {key!r} got value {_shown(value)} of type {type(value).__name__}; metrics "
            "must be numbers (log text with set_tag or log_param)."
        ) from None


def check_int64(key: str, value: Any, what: str) -> int:
    """A metric's step or timestamp as an int SQLite can store (floats are truncated)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        unit = " (milliseconds since the epoch)" if what == "timestamp" else ""
        raise InvalidValueError(
            f"Metric {key!r} got {what} {_shown(value)}; a {what}{unit} must be an integer "
            f"{_RANGE}."
        )
    return number


def check_point(key: Any, value: Any, timestamp: Any, step: Any) -> tuple[str, float, int, int]:
    """One metric point as (key, value, timestamp, step), each checked; timestamp is required."""
    check_key(key, "metric")
    return (
        key,
        check_metric_value(key, value),
        check_int64(key, timestamp, "timestamp"),
        check_int64(key, step, "step"),
    )


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


def _text_rows(run_id: str, values: dict[str, Any], what: str) -> list[tuple[str, str, str]]:
    """(run_id, key, text) rows of params or tags, keys and values checked."""
    return [(run_id, check_key(k, what), check_text(k, v, what)) for k, v in values.items()]


def check_dataset_inputs(datasets: Any) -> list[Any]:
    """``log_inputs``' datasets as a list of DatasetInput, each field checked (every backend).

    :raises InvalidValueError: not DatasetInput objects, an empty name, digest, source type
        or source, a schema or profile that is not text, a tag that is not text.
    """
    from store.entities import Dataset, DatasetInput

    items = [datasets] if isinstance(datasets, DatasetInput) else list(datasets or ())
    for item in items:
        if not isinstance(item, DatasetInput) or not isinstance(item.dataset, Dataset):
            raise InvalidValueError(
                f"log_inputs takes DatasetInput(dataset=Dataset(...), tags=[...]) objects, not "
                f"{_shown(item)}; build one with autolog.data.from_pandas / from_numpy."
            )
        ds = item.dataset
        for field_name in ("name", "digest", "source_type", "source"):
            value = getattr(ds, field_name)
            if not isinstance(value, str) or not value:
                raise InvalidValueError(
                    f"Dataset {field_name} {value!r} is invalid: give a non-empty string."
                )
            _no_surrogate(value, f"The dataset {field_name} {_shown(value)}")
        for field_name in ("schema", "profile"):
            value = getattr(ds, field_name)
            if value is not None and not isinstance(value, str):
                raise InvalidValueError(
                    f"Dataset {field_name} {_shown(value)} is invalid: give JSON text or None."
                )
        for tag in item.tags:
            check_key(getattr(tag, "key", None), "input tag")
            if not isinstance(tag.value, str):
                raise InvalidValueError(
                    f"Input tag {tag.key!r} has value {_shown(tag.value)}: give a string."
                )
    return items
