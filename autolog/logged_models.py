"""Logged models as records (MLflow 3's ``LoggedModel``): ``models:/m-<hex>`` and
:func:`last_logged_model`.

Every :func:`autolog.models.log_model` (autologged fits included) creates a record with an id
``m-`` + 32 hex digits, before the files are written so that the MLmodel file carries it as
``model_id`` (as MLflow 3 writes it). The record holds the run's params and the run's latest
metrics at logging time (each with the dataset it was computed on, when the run recorded
one), the model's name (its artifact path), status (PENDING while the files are written, then
READY, or FAILED) and tags. The files stay in the run's artifacts, so
``runs:/<run_id>/<artifact_path>`` and ``models:/<model_id>`` load the same directory, through
the same digest check (:mod:`autolog.model_trust`).
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.base import TrackingStore
    from store.entities import LoggedModel

__all__ = ["is_logged_model_uri", "last_logged_model", "resolve_logged_model_uri"]

_URI = re.compile(r"models:/(m-[0-9a-f]{32})(?:/(.*))?")
_lock = threading.Lock()
# (tracking URI, model id) of the model this process logged last
_last: tuple[str, str] | None = None


def is_logged_model_uri(uri: str) -> bool:
    """Whether uri names a logged model by id (``models:/m-<hex>[/<path>]``)."""
    return _URI.fullmatch(uri.rstrip("/")) is not None


def resolve_logged_model_uri(store: TrackingStore, uri: str) -> tuple[str, str]:
    """(owner, artifact path) of the files of ``models:/m-<hex>[/<sub path>]``: the source run
    and the model's path in its artifacts when autolog logged it, else the model's own id and
    the sub path (MLflow 3's ``<experiment>/models/<model_id>/artifacts``, which the store's
    artifact methods take a model id for).

    :raises LoggedModelNotFoundError: no model has that id.
    """
    from autolog.errors import ModelError

    match = _URI.fullmatch(uri.rstrip("/"))
    if match is None:
        raise ModelError(f"Malformed model URI {uri!r}; expected models:/m-<32 hex digits>")
    model = store.get_logged_model(match.group(1))
    if model.source_run_id is None or model.artifact_path is None:
        return model.model_id, match.group(2) or ""
    path = model.artifact_path
    if match.group(2):
        path = f"{path}/{match.group(2)}"
    return model.source_run_id, path


def in_own_folder(owner: str) -> bool:
    """Whether an owner resolve_logged_model_uri gave is a model's own folder (no run: no
    recorded digests vouch for its files)."""
    return owner.startswith("m-")


def create(store: TrackingStore, run_id: str, artifact_path: str) -> str:
    """A PENDING logged model for the files about to be written at run_id/artifact_path,
    with the run's params; returns its id. On a REST store during an autologged fit the id is
    chosen here and the record is written by the store's background lane."""
    from store.base import defers, run_or_defer

    if defers(store) and not getattr(store, "mlflow_server", False):  # MLflow's picks ids
        model_id = "m-" + uuid.uuid4().hex
        run_or_defer(store, _create, store, run_id, artifact_path, model_id)
        return model_id
    return _create(store, run_id, artifact_path)


def _create(
    store: TrackingStore, run_id: str, artifact_path: str, model_id: str | None = None
) -> str:
    run = store.get_run(run_id)
    model = store.create_logged_model(
        run.info.experiment_id,
        name=artifact_path,
        source_run_id=run_id,
        params=dict(run.data.params),
        artifact_path=artifact_path,
        model_id=model_id,
    )
    return model.model_id


def finish(store: TrackingStore, model_id: str, run_id: str) -> None:
    """Copy the run's latest metrics onto the model and mark it READY (on a REST store's
    background lane during an autologged fit)."""
    global _last
    from autolog import batching, tracking
    from store.base import run_or_defer

    batching.write_pending(run_id)
    run_or_defer(store, _finish, store, model_id, run_id)
    with _lock:
        _last = (tracking.get_tracking_uri(), model_id)


def _finish(store: TrackingStore, model_id: str, run_id: str) -> None:
    failed = getattr(store, "upload_failed", None)  # a REST store's background upload
    if (
        failed is not None
        and failed(run_id)
        and failed(run_id, store.get_logged_model(model_id).artifact_path or "")
    ):
        store.finalize_logged_model(model_id, "FAILED")
        return
    copy_run_metrics(store, model_id, run_id)
    store.finalize_logged_model(model_id, "READY")


def copy_run_metrics(store: TrackingStore, model_id: str, run_id: str) -> None:
    """Copy the run's latest metrics onto the model (again, after metrics an integration logged
    once the model was: the latest per key and dataset is kept)."""
    datasets = _datasets_of(store, run_id)
    metrics = [
        (m.key, m.value, m.timestamp, m.step, run_id, *_dataset_of_metric(m.key, datasets))
        for m in store.get_latest_metrics(run_id)
    ]
    if metrics:
        store.log_logged_model_metrics(model_id, metrics)


def _datasets_of(store: TrackingStore, run_id: str) -> list[tuple[str, str, str]]:
    """(name, digest, context) of the run's dataset inputs."""
    out = []
    for inp in store.get_run(run_id).inputs.dataset_inputs:
        context = next((t.value for t in inp.tags if t.key == "mlflow.data.context"), "")
        out.append((inp.dataset.name, inp.dataset.digest, context))
    return out


def _dataset_of_metric(key: str, datasets: list[tuple[str, str, str]]) -> tuple[Any, Any]:
    """The dataset a metric was computed on, by the names autologging gives them: a key that
    starts with a dataset's name (``valid-logloss``, ``val_loss``, ``train_loss``) is that
    dataset's, a ``training_*`` key the training set's; (None, None) when none says so."""
    for name, digest, _ in datasets:
        if key.startswith((f"{name}-", f"{name}_")):
            return name, digest
    if key.startswith("training_"):
        training = [(n, d) for n, d, context in datasets if context == "training"]
        if len(training) == 1:
            return training[0]
    return None, None


def fail(store: TrackingStore, model_id: str) -> None:
    """Mark the model FAILED (its files could not be written); the error that caused it is
    what the caller sees, not one from here."""
    with contextlib.suppress(Exception):
        store.finalize_logged_model(model_id, "FAILED")


def last_logged_model() -> LoggedModel | None:
    """The model this process logged last (by autolog or by a log_model call), as it is in
    the store now; None when none was logged.

    As ``mlflow.last_logged_model()``::

        model = autolog.last_logged_model()
        autolog.load_model(model.model_uri).predict(X)   # model_uri: models:/m-<hex>
    """
    from autolog import tracking

    tracking.before_read(None)  # a model (and metrics) an integration logs in the background
    with _lock:
        last = _last
    if last is None:
        return None
    uri, model_id = last
    return tracking._store(uri).get_logged_model(model_id, allow_deleted=True)


def model_id_of_source(store: TrackingStore, source: str) -> str | None:
    """The id of the logged model whose files ``runs:/<run_id>/<path>`` names, if any."""
    if not source.startswith("runs:/"):
        return None
    run_id, _, path = source[len("runs:/") :].strip("/").partition("/")
    for row in store.list_models(run_id):
        if row["artifact_path"] == path and row.get("model_id"):
            return str(row["model_id"])
    return None


def set_model_version_tag(store: Any, model_id: str, name: str, version: int | str) -> None:
    """Record on the logged model the registered version made from it (``mlflow.modelVersions``,
    a JSON list of {name, version}, as MLflow 3 does)."""
    import json

    from store import system_tags

    model = store.get_logged_model(model_id)
    versions = json.loads(model.tags.get(system_tags.MODEL_VERSIONS, "[]"))
    entry = {"name": name, "version": str(version)}
    if entry not in versions:
        versions.append(entry)
    store.set_logged_model_tags(model_id, {system_tags.MODEL_VERSIONS: json.dumps(versions)})


def _landed() -> None:
    """Wait for what integrations still log in the background (autolog.batching.defer)."""
    from autolog.tracking_client import before_read

    before_read(None)


class LoggedModelClientMixin:
    """The logged-model methods of :class:`autolog.Client` (MLflow 3's ``MlflowClient`` names)."""

    if TYPE_CHECKING:

        @property
        def store(self) -> TrackingStore: ...

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """The logged model ``m-<hex>``: name, source_run_id, status, params, metrics, tags.

        :raises LoggedModelNotFoundError: no model has this id.
        """
        _landed()
        return self.store.get_logged_model(model_id)

    def search_logged_models(
        self,
        experiment_ids: list[str] | None = None,
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[str | dict[str, Any]] | None = None,
    ) -> list[LoggedModel]:
        """Logged models matching ``filter_string``, newest first unless ``order_by`` says.

        :param experiment_ids: experiments to search; None for all.
        :param filter_string: e.g. ``"metrics.accuracy > 0.9 AND params.max_depth = '3'"``;
            names: name, model_id, model_type, status, source_run_id, creation_timestamp,
            last_updated_timestamp, metrics.<key>, params.<key>, tags.<key>.
        :param datasets: ``[{"name": ..., "digest": ...}]``: compare only metrics computed on
            these datasets.
        :param order_by: ``["metrics.accuracy DESC"]`` or MLflow's
            ``[{"field_name": "metrics.accuracy", "ascending": False}]``.
        :raises SearchSyntaxError: a malformed filter (the position is named).
        """
        _landed()
        return self.store.search_logged_models(
            experiment_ids, filter_string, datasets, max_results, order_by
        )

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        self.store.set_logged_model_tags(model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.store.delete_logged_model_tag(model_id, key)

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        """Set the final status, READY or FAILED."""
        return self.store.finalize_logged_model(model_id, status)

    def delete_logged_model(self, model_id: str) -> None:
        self.store.delete_logged_model(model_id)
