"""MLflow's entity names, so ``from mlflow.entities import RunStatus, ViewType`` becomes
``from autolog.entities import RunStatus, ViewType`` and code written against MLflow keeps working.

``RunStatus`` and ``ViewType`` hold MLflow's integer values (those of its protobuf enums:
RUNNING=1 ... KILLED=5; ACTIVE_ONLY=1, DELETED_ONLY=2, ALL=3) and its conversions. A run's
``info.status`` is a string, as in MLflow (``RunStatus.to_string(RunStatus.FINISHED)``), and
``search_runs(run_view_type=ViewType.ALL)`` takes either spelling. The records (Run, RunInfo,
Metric, ...) are the store's own.
"""

from __future__ import annotations

from store.entities import (
    Experiment,
    FileInfo,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunTag,
)
from store.errors import InvalidValueError

__all__ = [
    "Experiment",
    "FileInfo",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ViewType",
]


class RunStatus:
    """The status of a run: MLflow's values, names and conversions."""

    RUNNING = 1
    SCHEDULED = 2
    FINISHED = 3
    FAILED = 4
    KILLED = 5

    _STRING_TO_STATUS = {
        "RUNNING": RUNNING,
        "SCHEDULED": SCHEDULED,
        "FINISHED": FINISHED,
        "FAILED": FAILED,
        "KILLED": KILLED,
    }
    _STATUS_TO_STRING = {value: key for key, value in _STRING_TO_STATUS.items()}
    _TERMINATED_STATUSES = {FINISHED, FAILED, KILLED}

    @staticmethod
    def from_string(status_str: str) -> int:
        try:
            return RunStatus._STRING_TO_STATUS[status_str]
        except (KeyError, TypeError):
            raise InvalidValueError(
                f"run status {status_str!r} is not known; use one of "
                f"{list(RunStatus._STRING_TO_STATUS)}"
            ) from None

    @staticmethod
    def to_string(status: int) -> str:
        try:
            return RunStatus._STATUS_TO_STRING[status]
        except (KeyError, TypeError):
            raise InvalidValueError(
                f"run status {status!r} is not known; use one of "
                f"{list(RunStatus._STATUS_TO_STRING)} (RunStatus.RUNNING ... RunStatus.KILLED)"
            ) from None

    @staticmethod
    def is_terminated(status: int) -> bool:
        return status in RunStatus._TERMINATED_STATUSES

    @staticmethod
    def all_status() -> list[int]:
        return list(RunStatus._STATUS_TO_STRING)


class ViewType:
    """Which runs or experiments a search returns by lifecycle stage: MLflow's values."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3
    _VIEW_TO_STRING = {ACTIVE_ONLY: "active_only", DELETED_ONLY: "deleted_only", ALL: "all"}
    _STRING_TO_VIEW = {value: key for key, value in _VIEW_TO_STRING.items()}

    @classmethod
    def from_string(cls, view_str: str) -> int:
        try:
            return cls._STRING_TO_VIEW[view_str]
        except (KeyError, TypeError):
            raise InvalidValueError(
                f"view type {view_str!r} is not known; use one of {list(cls._STRING_TO_VIEW)}"
            ) from None

    @classmethod
    def to_string(cls, view_type: int) -> str:
        try:
            return cls._VIEW_TO_STRING[view_type]
        except (KeyError, TypeError):
            raise InvalidValueError(
                f"view type {view_type!r} is not known; use ViewType.ACTIVE_ONLY (1), "
                "ViewType.DELETED_ONLY (2) or ViewType.ALL (3)"
            ) from None
