"""Store reads and writes autolog's client needs that MLflow's REST API has no call for.

Served under ``/api/2.0/autolog/``; MLflow's clients never call them. Each is one store method.
"""

from __future__ import annotations

from typing import Any

from autolog.server.endpoints import endpoint, listed, pairs, required, typed
from store import rest_json as j
from store.errors import InvalidValueError

_BASE = "/api/2.0/autolog/"
_VIEWS = {"active", "deleted", "all"}


def _stage(args: dict[str, Any]) -> str | None:
    stage = typed(args, "lifecycle_stage", str, "active")
    if stage not in _VIEWS:
        raise InvalidValueError(f"Invalid lifecycle_stage {stage!r}: give active, deleted or all.")
    return None if stage == "all" else stage


@endpoint(_BASE + "experiments/get-or-create", "POST", write=True)
def get_or_create_experiment(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"experiment_id": store.get_or_create_experiment(required(args, "name"))}


@endpoint(_BASE + "experiments/run-counts", "GET")
def run_counts(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"counts": {k: list(v) for k, v in store.experiment_run_counts().items()}}


@endpoint(_BASE + "runs/create-finished", "POST", write=True)
def create_finished_runs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for r in listed(args, "runs"):
        if not isinstance(r, dict):
            raise InvalidValueError(
                f"Invalid run {r!r}: give objects with run_name, tags, params, metrics."
            )
        metrics = [
            (m.get("key"), j.load_float(m.get("value")), m.get("timestamp"), m.get("step", 0))
            for m in listed(r, "metrics")
        ]
        runs.append((r.get("run_name"), pairs(r, "tags"), pairs(r, "params"), metrics))
    ids = store.create_finished_runs(
        required(args, "experiment_id"),
        runs,
        parent_run_id=typed(args, "parent_run_id", str),
        user_id=typed(args, "user_id", str),
    )
    return {"run_ids": ids}


@endpoint(_BASE + "runs/count", "POST")
def count_runs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    ids = [str(e) for e in listed(args, "experiment_ids")] or None
    return {"count": store.count_runs(ids, typed(args, "filter", str, ""), _stage(args))}


@endpoint(_BASE + "runs/search", "POST")
def search_runs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    """search_runs with the store's offset and lifecycle stage (no page token round trips)."""
    ids = [str(e) for e in listed(args, "experiment_ids")] or None
    runs = store.search_runs(
        ids,
        typed(args, "filter", str, ""),
        [str(o) for o in listed(args, "order_by")] or None,
        typed(args, "max_results", int),
        typed(args, "offset", int, 0),
        _stage(args),
    )
    return _runs_answer(runs, args)


def _runs_answer(runs: list[Any], args: dict[str, Any]) -> dict[str, Any]:
    """Rows when the client asks for them (autolog's does), else MLflow's run objects."""
    if args.get("format") == "rows":
        return {"run_rows": [j.dump_run_row(r) for r in runs]}
    return {"runs": [j.dump_run(r) for r in runs]}


@endpoint(_BASE + "runs/get-many", "POST")
def get_runs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return _runs_answer(store.get_runs([str(r) for r in listed(args, "run_ids")]), args)


@endpoint(_BASE + "runs/children", "GET")
def child_run_ids(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"run_ids": store.child_run_ids(required(args, "run_id"))}


@endpoint(_BASE + "runs/reap", "POST", write=True)
def reap(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"reaped": store.reap_dead_runs(typed(args, "force", bool, False))}


@endpoint(_BASE + "metrics/keys", "GET")
def metric_keys(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"keys": store.metric_keys(required(args, "run_id"))}


@endpoint(_BASE + "metrics/sampled-history", "GET")
def sampled_history(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    sample = store.sampled_metric_history(
        required(args, "run_id"),
        required(args, "metric_key"),
        required(args, "max_points", int),
        typed(args, "min_step", int),
        typed(args, "max_step", int),
    )
    return {**sample, "values": [j.dump_float(v) for v in sample["values"]]}


@endpoint(_BASE + "models/record", "POST", write=True)
def record_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.record_model(
        required(args, "model_uuid"),
        required(args, "run_id"),
        required(args, "artifact_path"),
        [str(f) for f in listed(args, "flavors")],
        required(args, "created_time", int),
        typed(args, "signature", dict),
        typed(args, "files", dict),
        model_id=typed(args, "model_id", str),
    )
    return {}


@endpoint(_BASE + "models/digests", "GET")
def model_digests(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "files": store.model_file_digests(required(args, "run_id"), required(args, "artifact_path"))
    }


@endpoint(_BASE + "models/of-run", "GET")
def list_models(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"models": store.list_models(required(args, "run_id"))}


@endpoint(_BASE + "models/of-runs", "POST")
def models_of_runs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"models": store.models_of_runs([str(r) for r in listed(args, "run_ids")])}


@endpoint(_BASE + "models/logged", "GET")
def logged_models(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"models": store.logged_models(typed(args, "limit", int, 500))}


@endpoint(_BASE + "metrics/latest", "GET")
def latest_metrics(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "metrics": [j.dump_metric(m) for m in store.get_latest_metrics(required(args, "run_id"))]
    }


@endpoint(_BASE + "datasets/search", "POST")
def search_datasets(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    ids = listed(args, "experiment_ids") if args.get("experiment_ids") is not None else None
    found = store.search_datasets(
        None if ids is None else [str(e) for e in ids],
        typed(args, "digest", str),
        typed(args, "name", str),
        typed(args, "max_results", int, 1000),
    )
    return {
        "datasets": [
            {"experiment_id": r.experiment_id, "dataset": r.dataset.to_dict(),
             "run_count": r.run_count}
            for r in found
        ]
    }  # fmt: skip
