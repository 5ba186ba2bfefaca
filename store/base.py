"""The store's interfaces, and the table of backends that :func:`open_store` picks from.

Everything outside ``store/`` (the fluent API and Client, the UI, the server, models, the
registry facade and the CLI) reaches data only through these three protocols:

* :class:`TrackingStore`: experiments, runs, params, metrics, tags, model lineage, plus the
  reads a UI needs without loading every point (downsampled histories, counts).
* :class:`ArtifactRepository`: a run's artifact files, by run id and relative path; no path
  given by a caller leaves the run's own artifact folder.
* :class:`RegistryStore`: registered models, numbered versions, tags, aliases, stages.

A backend is a class implementing them, registered for the URI schemes it serves with
:func:`register_backend`; ``open_store(uri)`` dispatches on the scheme. The SQLite store
(:mod:`store.sqlite`) serves folders, ``file://`` and ``sqlite:``; PostgreSQL
(``postgresql://``) and a tracking server (``http://``, ``https://``) plug in the same way.
The contract suite ``tests/store/test_contract.py`` holds what every backend promises.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from store.errors import InvalidValueError

if TYPE_CHECKING:
    from store.entities import Experiment, FileInfo, Metric, Run
    from store.registry import ModelVersion, RegisteredModel

__all__ = [
    "ArtifactRepository",
    "MetricSample",
    "RegistryStore",
    "TrackingStore",
    "open_store",
    "register_backend",
    "registered_schemes",
]

# A downsampled history, as sampled_metric_history returns it:
#   total: points in the step range; downsampled: whether buckets replaced the points;
#   bucket_width: steps per bucket (None when not downsampled); steps, values: the path
#   (values are floats, NaN kept); timestamps: one per point, None when downsampled.
MetricSample = dict[str, Any]


@runtime_checkable
class ArtifactRepository(Protocol):
    """A run's artifact files. Paths are relative to the run's artifact folder."""

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Path: ...

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Path: ...

    def write_artifact_bytes(self, run_id: str, artifact_file: str, data: bytes) -> Path: ...

    def artifact_writer(self, run_id: str, artifact_file: str) -> AbstractContextManager[Path]:
        """A local temporary path to write the file artifact_file into; it becomes the artifact
        when the block ends without an exception (a reader never sees a partial file)."""
        ...

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]: ...

    def walk_artifacts(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        """Every artifact as nested dicts (name, path, is_dir, children | file_size), folders
        first, at most ``limit`` entries; links and unfinished writes are skipped."""
        ...

    def download_artifacts(
        self, run_id: str, path: str | None, dst_path: str | os.PathLike[str]
    ) -> Path: ...

    def artifact_local_path(self, run_id: str, path: str | None = "") -> Path:
        """A local, readable path of an artifact (file or folder), inside the run's own folder.

        For a local repository, the file itself; a remote one gives a cached copy.
        """
        ...

    def staged_artifact_dir(
        self, run_id: str, artifact_path: str, replace: bool = True
    ) -> AbstractContextManager[Path]:
        """A fresh local folder to write a whole artifact folder into (a model directory);
        when the block ends without an exception it becomes ``artifact_path`` at once,
        otherwise it is removed and nothing changes. An existing ``artifact_path`` is replaced;
        with ``replace=False`` one that another writer filled meanwhile raises
        ArtifactExistsError instead. Never listed while it is being filled."""
        ...

    def artifact_dir(self, run_id: str, artifact_path: str | None = "") -> Path:
        """The local folder of artifact_path (local repositories only; prefer the methods)."""
        ...


@runtime_checkable
class TrackingStore(ArtifactRepository, Protocol):
    """Experiments, runs and their data; the artifact methods of :class:`ArtifactRepository`."""

    # -- experiments
    def create_experiment(self, name: str, tags: dict[str, Any] | None = None) -> str: ...
    def get_or_create_experiment(self, name: str) -> str: ...
    def get_experiment(self, experiment_id: str | int) -> Experiment: ...
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...
    def list_experiments(self, lifecycle_stage: str | None = "active") -> list[Experiment]: ...
    def set_experiment_tag(self, experiment_id: str | int, key: str, value: Any) -> None: ...
    def delete_experiment(self, experiment_id: str | int) -> None: ...

    def experiment_run_counts(self) -> dict[str, tuple[int, int | None]]:
        """experiment id -> (active runs, start_time of the newest), experiments with runs only."""
        ...

    # -- runs
    def create_run(
        self,
        experiment_id: str | int = 0,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
    ) -> Run: ...

    def create_finished_runs(
        self,
        experiment_id: str | int,
        runs: Iterable[tuple[str | None, dict[str, Any], dict[str, Any], list[tuple]]],
        parent_run_id: str | None = None,
        user_id: str | None = None,
    ) -> list[str]: ...

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> None: ...

    def set_terminated(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None
    ) -> None: ...
    def delete_run(self, run_id: str) -> None: ...
    def restore_run(self, run_id: str) -> None: ...
    def reap_dead_runs(self, force: bool = False) -> int: ...
    def get_run(self, run_id: str) -> Run: ...
    def get_runs(self, run_ids: Sequence[str]) -> list[Run]: ...

    def search_runs(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int | None = 1000,
        offset: int = 0,
        lifecycle_stage: str | None = "active",
    ) -> list[Run]: ...

    def count_runs(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str = "",
        lifecycle_stage: str | None = "active",
    ) -> int: ...

    def child_run_ids(self, run_id: str) -> list[str]: ...

    # -- params, tags, metrics
    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric | tuple[str, Any, Any, Any]] = (),
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
    ) -> None: ...

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int = 0
    ) -> None: ...
    def log_param(self, run_id: str, key: str, value: Any) -> None: ...
    def set_tag(self, run_id: str, key: str, value: Any) -> None: ...
    def delete_tag(self, run_id: str, key: str) -> None: ...
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...
    def metric_keys(self, run_id: str) -> list[str]: ...

    def sampled_metric_history(
        self,
        run_id: str,
        key: str,
        max_points: int,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> MetricSample:
        """A history of at most about max_points points: as logged when short enough, else
        per step range its min and max (an envelope), computed by the backend."""
        ...

    # -- models (lineage run <-> model)
    def record_model(
        self,
        model_uuid: str,
        run_id: str,
        artifact_path: str,
        flavors: list[str],
        created_time: int,
        signature: dict[str, Any] | None,
        files: dict[str, str] | None = None,
    ) -> None:
        """Record a logged model; ``files`` (relative path -> SHA-256 of each of its files)
        replaces, in the same transaction, the digests recorded at that run and path."""
        ...

    def model_file_digests(self, run_id: str, artifact_path: str) -> dict[str, str] | None:
        """The digests record_model recorded for ``runs:/<run_id>/<artifact_path>``, or None."""
        ...

    def list_models(self, run_id: str) -> list[dict[str, Any]]: ...

    def models_of_runs(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """run id -> artifact paths of its logged models, oldest first."""
        ...

    def logged_models(self, limit: int = 500) -> list[dict[str, Any]]:
        """Models of active runs, newest first, with run_name and experiment_id."""
        ...

    # -- the store itself
    @property
    def location(self) -> str:
        """Where the store lives, for people (a path or a URI without credentials)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RegistryStore(Protocol):
    """The model registry: names, numbered versions, tags, aliases, stages."""

    def get_registered_model(self, name: str) -> RegisteredModel: ...
    def get_model_version(self, name: str, version: int | str) -> ModelVersion: ...
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...
    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]: ...
    def latest_version_number(self, name: str) -> int | None: ...
    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = 100,
        order_by: Sequence[str] | None = None,
    ) -> list[RegisteredModel]: ...
    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = 10_000,
        order_by: Sequence[str] | None = None,
    ) -> list[ModelVersion]: ...
    def model_versions_of_run(self, run_id: str) -> list[ModelVersion]: ...
    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel: ...
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...
    def delete_registered_model(self, name: str) -> None: ...
    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None: ...
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        storage_location: str | None = None,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        user_id: str | None = None,
        run_link: str | None = None,
        create_model: bool = False,
    ) -> ModelVersion: ...
    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion: ...
    def set_model_version_tag(
        self, name: str, version: int | str, key: str, value: Any
    ) -> None: ...
    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None: ...
    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion: ...
    def delete_model_version(self, name: str, version: int | str) -> None: ...
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None: ...
    def delete_registered_model_alias(self, name: str, alias: str) -> None: ...
    def registry_summary(self, name: str) -> str:
        """The versions (with stages) of a model, for error messages."""
        ...


# -- backends by URI scheme ------------------------------------------------------------------

# scheme -> a function giving the store for a URI of that scheme
_BACKENDS: dict[str, Callable[[str], Any]] = {}


def register_backend(scheme: str, factory: Callable[[str], Any]) -> None:
    """Serve URIs ``<scheme>:...`` with ``factory(uri)`` (a later registration replaces one)."""
    if not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise InvalidValueError(
            f"Invalid URI scheme {scheme!r}: give letters such as 'postgresql'."
        )
    _BACKENDS[scheme.lower()] = factory


def registered_schemes() -> list[str]:
    _register_builtin()
    return sorted(_BACKENDS)


def _register_builtin() -> None:
    if "sqlite" not in _BACKENDS:
        from store import sqlite

        register_backend("sqlite", sqlite.store_for_uri)
        register_backend("file", sqlite.store_for_uri)
    if "postgresql" not in _BACKENDS:
        from store import postgres  # psycopg is imported when a store is opened, not here

        for scheme in postgres.SCHEMES:
            register_backend(scheme, postgres.store_for_uri)


def _scheme(uri: str) -> str:
    """The scheme of a tracking URI; "file" for a plain path (also a Windows drive path)."""
    head, sep, _ = uri.partition(":")
    if not sep or (len(head) == 1 and head.isalpha()):
        return "file"
    if "://" not in uri and head.lower() != "sqlite":
        return "file"  # a folder whose name holds a colon
    return head.lower()


def open_store(uri: str | os.PathLike[str]) -> Any:
    """The store for a tracking URI, by its scheme: a folder path or ``file://`` folder and
    ``sqlite:///path/file.db`` (SQLite), or any scheme a backend registered.

    :raises InvalidValueError: no backend serves the URI's scheme; the message lists those that do.
    """
    _register_builtin()
    uri = os.fspath(uri)
    scheme = _scheme(uri)
    factory = _BACKENDS.get(scheme)
    if factory is None:
        raise InvalidValueError(
            f"Tracking URI {uri!r} uses the scheme {scheme!r}, which no installed store serves; "
            f"give a folder path or sqlite:///path/file.db (schemes served: "
            f"{', '.join(sorted(_BACKENDS))})."
        )
    return factory(uri)
