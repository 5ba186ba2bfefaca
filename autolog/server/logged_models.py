"""MLflow 3's logged-model endpoints (``/api/2.0/mlflow/logged-models...``) over a
TrackingStore, with MLflow's paths, methods and JSON shapes (service.proto's LoggedModel).

The metrics of a logged model arrive as MLflow sends them, on ``runs/log-batch`` and
``runs/log-metric`` points carrying ``model_id`` (tracking.py); autolog's client, which copies a
run's latest metrics onto a model without logging them to the run again, uses the extension
endpoint here.
"""

from __future__ import annotations

from typing import Any

from autolog.server.endpoints import endpoint, listed, pairs, required, typed
from store import rest_json as j
from store.errors import InvalidValueError

_MODELS = "logged-models"
MAX_RESULTS = 1000


def artifact_uri(m: Any) -> str:
    """Where a client reaches the model's files through the proxy."""
    if m.source_run_id and m.artifact_path:
        run_uri = j.proxied_artifact_uri(str(m.experiment_id), m.source_run_id)
        return f"{run_uri}/{m.artifact_path.strip('/')}"
    return f"mlflow-artifacts:/{m.experiment_id}/models/{m.model_id}/artifacts"


def dumped(m: Any) -> dict[str, Any]:
    return {"model": j.dump_logged_model(m, artifact_uri(m))}


@endpoint(_MODELS, "POST", write=True)
def create_logged_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    model = store.create_logged_model(
        required(args, "experiment_id"),
        name=typed(args, "name", str) or None,
        source_run_id=typed(args, "source_run_id", str) or None,
        tags=pairs(args, "tags") or None,
        params=pairs(args, "params") or None,
        model_type=typed(args, "model_type", str) or None,
        artifact_path=typed(args, "artifact_path", str) or None,  # autolog's client only
        model_id=typed(args, "model_id", str) or None,  # autolog's client only
    )
    return dumped(model)


@endpoint(_MODELS + "/{model_id}", "GET")
def get_logged_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    allow = typed(args, "allow_deleted", bool, False)
    return dumped(store.get_logged_model(required(args, "model_id"), allow_deleted=allow))


@endpoint(_MODELS + "/{model_id}", "PATCH", write=True)
def finalize_logged_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    status = args.get("status")
    if status is None:
        raise InvalidValueError("Missing value for required parameter 'status'.")
    return dumped(store.finalize_logged_model(required(args, "model_id"), j.load_status(status)))


@endpoint(_MODELS + "/{model_id}", "DELETE", write=True)
def delete_logged_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_logged_model(required(args, "model_id"))
    return {}


@endpoint(_MODELS + "/{model_id}/tags", "PATCH", write=True)
def set_logged_model_tags(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.set_logged_model_tags(required(args, "model_id"), pairs(args, "tags"))
    return {}


@endpoint(_MODELS + "/{model_id}/tags/{tag_key:path}", "DELETE", write=True)
def delete_logged_model_tag(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_logged_model_tag(required(args, "model_id"), required(args, "tag_key"))
    return {}


@endpoint(_MODELS + "/{model_id}/params", "POST", write=True)
def log_logged_model_params(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.log_logged_model_params(required(args, "model_id"), pairs(args, "params"))
    return {}


def _datasets(args: dict[str, Any]) -> list[dict[str, Any]] | None:
    out = []
    for d in listed(args, "datasets"):
        if not isinstance(d, dict):
            raise InvalidValueError(
                f'Invalid dataset {d!r} in datasets: give {{"dataset_name": ..., '
                '"dataset_digest": ...}.'
            )
        out.append({"name": d.get("dataset_name"), "digest": d.get("dataset_digest") or None})
    return [{k: v for k, v in d.items() if v is not None} for d in out] or None


def _order_by(args: dict[str, Any]) -> list[Any] | None:
    out: list[Any] = []
    for o in listed(args, "order_by"):
        if isinstance(o, dict):  # MLflow's OrderBy; the store names a bad one
            o = {k: v for k, v in o.items() if v not in (None, "")}
        out.append(o)
    return out or None


@endpoint(_MODELS + "/search", "POST", write=False)
def search_logged_models(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    ids = [str(e) for e in listed(args, "experiment_ids")] or None
    limit = typed(args, "max_results", int, MAX_RESULTS)
    if not 0 < limit <= MAX_RESULTS:
        raise InvalidValueError(f"Invalid max_results {limit}: give a number from 1 to 1000.")
    offset = j.page_offset(args.get("page_token"))
    found = store.search_logged_models(
        ids, typed(args, "filter", str) or None, _datasets(args), offset + limit + 1,
        _order_by(args),
    )  # fmt: skip
    page = found[offset : offset + limit]
    out: dict[str, Any] = {"models": [dumped(m)["model"] for m in page]}
    if len(found) > offset + limit:
        out["next_page_token"] = j.page_token(offset + limit)
    return out


@endpoint("/api/2.0/autolog/logged-models/{model_id}/metrics", "POST", write=True)
def log_logged_model_metrics(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The model's metrics only (the run's history is not written again)."""
    store.log_logged_model_metrics(required(args, "model_id"), model_points(args))
    return {}


def model_points(args: dict[str, Any]) -> list[tuple[Any, ...]]:
    """MLflow's Metric objects (model_id, dataset_name, dataset_digest, run_id) as the store's
    (key, value, timestamp, step, run_id, dataset_name, dataset_digest) tuples."""
    out = []
    for m in listed(args, "metrics"):
        if not isinstance(m, dict):
            raise InvalidValueError(f"Invalid metric {m!r}: give an object with key and value.")
        out.append(
            (m.get("key"), j.load_float(m.get("value")), m.get("timestamp"), m.get("step", 0),
             m.get("run_id") or args.get("run_id") or None, m.get("dataset_name") or None,
             m.get("dataset_digest") or None)
        )  # fmt: skip
    return out


@endpoint(_MODELS + "/{model_id}/artifacts/directories", "GET")
def list_logged_model_artifacts(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    """MLflow 3's ListLoggedModelArtifacts: the files of a model's folder (one level)."""
    model = store.get_logged_model(required(args, "model_id"))
    path = typed(args, "artifact_directory_path", str) or None
    files = store.list_artifacts(model.model_id, path)
    return {
        "root_uri": artifact_uri(model),
        "files": [
            {"path": f.path, "is_dir": f.is_dir} | ({} if f.is_dir else {"file_size": f.file_size})
            for f in files
        ],
    }
