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
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from store.errors import InvalidValueError

if TYPE_CHECKING:
    from store.entities import (
        DatasetInput,
        DatasetRecord,
        Experiment,
        FileInfo,
        LoggedModel,
        LoggedModelMetric,
        Metric,
        Run,
        RunInfo,
    )
    from store.registry import ModelVersion, RegisteredModel

__all__ = [
    "ArtifactRepository",
    "AuthStore",
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
    def restore_experiment(self, experiment_id: str | int) -> None: ...
    def rename_experiment(self, experiment_id: str | int, new_name: str) -> None: ...

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
    def get_run_info(self, run_id: str) -> RunInfo: ...
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

    def get_latest_metrics(self, run_id: str) -> list[Metric]:
        """The latest point of each of the run's metrics, by key (no history is read)."""
        ...

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

    # -- datasets (run inputs)
    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None) -> None:
        """Record datasets a run used (MLflow's name). A dataset is stored once per experiment,
        name and digest; one already linked to the run stays linked once, with its first tags."""
        ...

    def log_outputs(self, run_id: str, models: Sequence[Any]) -> None:
        """Record logged models a run produced (MLflow 3's name): LoggedModelOutput(model_id,
        step) each; a run's ``outputs.model_outputs`` lists them in that order. A model
        already recorded for the run keeps its first step."""
        ...

    def search_datasets(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        digest: str | None = None,
        name: str | None = None,
        max_results: int = 1000,
    ) -> list[DatasetRecord]:
        """Stored datasets (of the experiments; all for None), optionally of one digest or
        name, each with how many active runs used it; by name, then digest."""
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
        model_id: str | None = None,
    ) -> None:
        """Record a logged model; ``files`` (relative path -> SHA-256 of each of its files)
        replaces, in the same transaction, the digests recorded at that run and path;
        ``model_id`` links the logged model record (``m-<hex>``) of these files."""
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

    # -- logged models (MLflow 3's records m-<hex>; MLflow's AbstractStore names and arguments)
    def create_logged_model(
        self,
        experiment_id: str | int,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        model_type: str | None = None,
        *,
        artifact_path: str | None = None,
        model_id: str | None = None,
    ) -> LoggedModel:
        """A new PENDING logged model whose files lie at ``artifact_path`` of the source run's
        artifacts (without one, under the experiment's ``models/<model_id>/artifacts``)."""
        ...

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel: ...

    def search_logged_models(
        self,
        experiment_ids: Sequence[str | int] | None = None,
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[str | Mapping[str, Any]] | str | None = None,
    ) -> list[LoggedModel]:
        """Active logged models matching the filter (store.logged_model_search), newest first."""
        ...

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel: ...
    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> None: ...
    def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...
    def log_logged_model_params(self, model_id: str, params: Mapping[str, Any]) -> None: ...

    def log_logged_model_metrics(
        self, model_id: str, metrics: Iterable[LoggedModelMetric | tuple]
    ) -> None:
        """The metrics MLflow's log_batch carries with a model_id: LoggedModelMetric or
        (key, value, timestamp, step, run_id, dataset_name, dataset_digest); the latest per
        key and dataset is kept."""
        ...

    def delete_logged_model(self, model_id: str) -> None: ...

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


@runtime_checkable
class AuthStore(Protocol):
    """A tracking server's users (a role each) and API tokens; only hashes are stored."""

    def add_user(self, name: str, role: str, password_hash: str | None) -> None: ...
    def remove_user(self, name: str) -> None: ...
    def list_users(self) -> list[dict[str, Any]]: ...
    def get_user(self, name: str) -> dict[str, Any] | None: ...
    def add_token(self, name: str, token_hash: str) -> None: ...
    def user_for_token(self, token_hash: str) -> dict[str, Any] | None: ...


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


def run_or_defer(store: Any, fn: Callable[..., Any], *args: Any) -> None:
    """fn(*args) now, or on the store's background lane when it has one and this thread is
    in its deferring block (a REST store during an autologged fit: store/rest_lane.py)."""
    defer = getattr(store, "defer", None)
    if defer is None:
        fn(*args)
    else:
        defer(fn, *args)


def defers(store: Any) -> bool:
    """Whether writes to store made now go to its background lane."""
    check = getattr(store, "defers", None)
    return bool(check is not None and check())


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
    if "http" not in _BACKENDS:
        register_backend("http", _rest_store)
        register_backend("https", _rest_store)


def _rest_store(uri: str) -> Any:
    from store import rest  # httpx is imported only when a server is used

    return rest.store_for_uri(uri)


def _scheme(uri: str) -> str:
    """The scheme of a tracking URI; "file" for a plain path (also a Windows drive path)."""
    head, sep, _ = uri.partition(":")
    if not sep or (len(head) == 1 and head.isalpha()):
        return "file"
    if "://" not in uri and head.lower() != "sqlite":
        return "file"  # a folder whose name holds a colon
    return head.lower()


def open_store(uri: str | os.PathLike[str], create: bool = True) -> Any:
    """The store for a tracking URI, by its scheme: a folder path or ``file://`` folder and
    ``sqlite:///path/file.db`` (SQLite), or any scheme a backend registered.

    :param create: False for readers (CLI, UI): a local store that does not exist yet raises
        instead of being created empty at a mistyped path.
    :raises InvalidValueError: no backend serves the URI's scheme; the message lists those that do.
    :raises StoreNotFoundError: ``create=False`` and no local store exists at the URI.
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
    if not create and scheme in ("file", "sqlite"):
        from store import locate, sqlite

        db = sqlite.db_path_for_uri(uri)
        if not db.is_file():
            raise locate.missing_store_error(uri, db)
    return factory(uri)
