"""MLflow's tracking endpoints (experiments, runs, params, metrics, tags) over a TrackingStore."""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

from autolog.server.endpoints import endpoint, listed, pairs, required, typed
from autolog.server.logged_models import model_points
from store import rest_json as j
from store.errors import ExperimentNotFoundError, InvalidValueError

_VIEW = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": None}
MAX_RESULTS = 50_000  # MLflow's cap for runs/search


def _view(args: dict[str, Any], name: str) -> str | None:
    view = typed(args, name, str, "ACTIVE_ONLY")
    if view not in _VIEW:
        raise InvalidValueError(f"Invalid {name} {view!r}: give ACTIVE_ONLY, DELETED_ONLY or ALL.")
    return _VIEW[view]


def _max_results(args: dict[str, Any], default: int, cap: int = MAX_RESULTS) -> int:
    n = typed(args, "max_results", int, default)
    if not 0 < n <= cap:
        raise InvalidValueError(f"Invalid max_results {n}: give a number from 1 to {cap}.")
    return n


# -- experiments -------------------------------------------------------------------------------


@endpoint("experiments/create", "POST", write=True)
def create_experiment(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"experiment_id": store.create_experiment(required(args, "name"), pairs(args, "tags"))}


@endpoint("experiments/get", "GET")
def get_experiment(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"experiment": j.dump_experiment(store.get_experiment(required(args, "experiment_id")))}


@endpoint("experiments/get-by-name", "GET")
def get_experiment_by_name(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    name = required(args, "experiment_name")
    exp = store.get_experiment_by_name(name)
    if exp is None:
        raise ExperimentNotFoundError(f"Could not find experiment with name '{name}'")
    return {"experiment": j.dump_experiment(exp)}


@endpoint("experiments/search", "GET", "POST")
def search_experiments(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    stage = _view(args, "view_type")
    limit = _max_results(args, 1000)
    offset = j.page_offset(args.get("page_token"))
    flt = typed(args, "filter", str, "")
    exps = store.list_experiments(stage)
    if flt:
        exps = _filter_experiments(exps, flt)
    page = exps[offset : offset + limit]
    out: dict[str, Any] = {"experiments": [j.dump_experiment(e) for e in page]}
    if offset + limit < len(exps):
        out["next_page_token"] = j.page_token(offset + limit)
    return out


_NAME_FILTER = re.compile(
    r"^\s*(?:attributes\.)?name\s+(=|!=|LIKE|ILIKE)\s+'((?:[^'\\]|\\.)*)'\s*$", re.I
)


def _filter_experiments(exps: list[Any], flt: str) -> list[Any]:
    """The name comparisons MLflow's clients send (=, !=, LIKE, ILIKE a quoted value)."""
    match = _NAME_FILTER.match(flt)
    if match is None:
        raise InvalidValueError(
            f"Unsupported experiment filter {flt!r}: give name = 'x', name LIKE 'x%' or "
            "name ILIKE 'x%'."
        )
    op, value = match.group(1).upper(), match.group(2)
    if op in ("=", "!="):
        return [e for e in exps if (e.name == value) == (op == "=")]
    pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value)
    flags = re.I | re.S if op == "ILIKE" else re.S
    return [e for e in exps if re.fullmatch(pattern, e.name, flags)]


@endpoint("experiments/delete", "POST", write=True)
def delete_experiment(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_experiment(required(args, "experiment_id"))
    return {}


@endpoint("experiments/restore", "POST", write=True)
def restore_experiment(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.restore_experiment(required(args, "experiment_id"))
    return {}


@endpoint("experiments/update", "POST", write=True)
def update_experiment(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.rename_experiment(required(args, "experiment_id"), typed(args, "new_name", str, ""))
    return {}


@endpoint("experiments/set-experiment-tag", "POST", write=True)
def set_experiment_tag(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.set_experiment_tag(
        required(args, "experiment_id"), required(args, "key"), typed(args, "value", str, "")
    )
    return {}


# -- runs --------------------------------------------------------------------------------------


@endpoint("runs/create", "POST", write=True)
def create_run(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    tags = pairs(args, "tags")
    parent = typed(args, "parent_run_id", str) or tags.get("mlflow.parentRunId")
    run = store.create_run(
        typed(args, "experiment_id", str, "0"),
        run_name=typed(args, "run_name", str) or tags.get("mlflow.runName"),
        start_time=typed(args, "start_time", int),
        tags=tags,
        parent_run_id=parent,
        user_id=typed(args, "user_id", str),
        run_id=typed(args, "run_id", str),  # autolog's client picks it, so a retry is safe
    )
    return {"run": j.dump_run(run)}


@endpoint("runs/update", "POST", write=True)
def update_run(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    rid = _run_id(args)
    store.update_run(
        rid,
        status=typed(args, "status", str),
        end_time=typed(args, "end_time", int),
        run_name=typed(args, "run_name", str),
    )
    return {"run_info": j.dump_run_info(store.get_run_info(rid))}


def _run_id(args: dict[str, Any]) -> str:
    rid = typed(args, "run_id", str) or typed(args, "run_uuid", str)
    if not rid:
        raise InvalidValueError("Missing value for required parameter 'run_id'.")
    return rid


@endpoint("runs/get", "GET")
def get_run(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"run": j.dump_run(store.get_run(_run_id(args)))}


@endpoint("runs/delete", "POST", write=True)
def delete_run(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_run(_run_id(args))
    return {}


@endpoint("runs/restore", "POST", write=True)
def restore_run(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.restore_run(_run_id(args))
    return {}


def _metrics(args: dict[str, Any]) -> list[tuple[Any, Any, Any, Any]]:
    items = listed(args, "metrics")
    try:  # the common shape in one pass; the store checks every key and value itself
        return [
            (m["key"], v if type(v := m["value"]) is float else j.load_float(v), m["timestamp"],
             m.get("step", 0))
            for m in items
        ]  # fmt: skip
    except (TypeError, KeyError):
        pass  # a point without timestamp or value, or not an object: the slow path names it
    out = []
    for m in items:
        if not isinstance(m, dict):
            raise InvalidValueError(f"Invalid metric {m!r}: give an object with key and value.")
        out.append(
            (m.get("key"), j.load_float(m.get("value")), m.get("timestamp"), m.get("step", 0))
        )
    return out


@endpoint("runs/log-batch", "POST", write=True)
def log_batch(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    rid = _run_id(args)
    metrics, params, tags = _metrics(args), pairs(args, "params"), pairs(args, "tags")
    key = typed(args, "idempotency_key", str)
    if key and _dedups(store):
        store.log_batch(rid, metrics=metrics, params=params, tags=tags, idempotency_key=key)
    else:
        store.log_batch(rid, metrics=metrics, params=params, tags=tags)
    _log_model_metrics(store, rid, listed(args, "metrics"))
    return {}


def _log_model_metrics(store: Any, run_id: str, points: list[Any]) -> None:
    """Points carrying a model_id (MLflow 3) are the logged model's metrics as well."""
    by_model: dict[str, list[Any]] = {}
    for m in points:
        if isinstance(m, dict) and m.get("model_id"):
            by_model.setdefault(str(m["model_id"]), []).append(m)
    for model_id, items in by_model.items():
        points_ = model_points({"metrics": items, "run_id": run_id})
        store.log_logged_model_metrics(model_id, points_)


@functools.cache
def _dedups_type(cls: Any) -> bool:
    return "idempotency_key" in inspect.signature(cls.log_batch).parameters


def _dedups(store: Any) -> bool:
    """Whether the store's log_batch takes an idempotency key (not every backend does yet)."""
    return _dedups_type(type(store))  # type: ignore[arg-type]


@endpoint("runs/log-metric", "POST", write=True)
def log_metric(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    point = (
        args.get("key"),
        j.load_float(args.get("value")),
        args.get("timestamp"),
        args.get("step", 0),
    )
    rid = _run_id(args)
    store.log_batch(rid, metrics=[point])
    _log_model_metrics(store, rid, [args])
    return {}


@endpoint("runs/log-parameter", "POST", write=True)
def log_param(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.log_param(_run_id(args), args.get("key"), args.get("value"))
    return {}


@endpoint("runs/set-tag", "POST", write=True)
def set_tag(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.set_tag(_run_id(args), args.get("key"), args.get("value"))
    return {}


@endpoint("runs/delete-tag", "POST", write=True)
def delete_tag(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_tag(_run_id(args), required(args, "key"))
    return {}


@endpoint("runs/search", "POST", "GET")
def search_runs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    """MLflow's SearchRuns. On a SQL store the page token carries the last run's sort key too:
    the next page starts there in the ordering's index instead of counting an offset."""
    ids = [str(e) for e in listed(args, "experiment_ids")] or None
    limit = _max_results(args, 1000)
    token = args.get("page_token")
    offset = j.page_offset(token)
    order_by = [str(o) for o in listed(args, "order_by")] or None
    query = (ids, typed(args, "filter", str, ""), order_by, _view(args, "run_view_type"))
    digest = j.search_digest(*query)
    keyset = getattr(store, "search_runs_page", None)
    keys: list[Any] = []
    if keyset is not None:  # one more run tells whether a next page exists
        runs, keys = keyset(*query[:3], limit + 1, offset, query[3], j.page_after(token, digest))
    else:
        runs = store.search_runs(*query[:3], limit + 1, offset, query[3])
    out: dict[str, Any] = {"runs": [j.dump_run(r) for r in runs[:limit]]}
    if len(runs) > limit:
        after = keys[limit - 1] if keys else None
        out["next_page_token"] = j.page_token(offset + limit, after, digest)
    return out


@endpoint("metrics/get-history", "GET")
def get_metric_history(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    history = store.get_metric_history(_run_id(args), required(args, "metric_key"))
    offset = j.page_offset(args.get("page_token"))
    limit = typed(args, "max_results", int, 25_000)
    if limit <= 0:
        raise InvalidValueError(f"Invalid max_results {limit}: give a positive number.")
    out: dict[str, Any] = {"metrics": [j.dump_metric(m) for m in history[offset : offset + limit]]}
    if offset + limit < len(history):
        out["next_page_token"] = j.page_token(offset + limit)
    return out


@endpoint("runs/outputs", "POST", write=True)
def log_outputs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    """MLflow 3's LogOutputs: the logged models a run produced, each with its step."""
    run_id = required(args, "run_id")
    store.log_outputs(run_id, [j.load_model_output(m) for m in listed(args, "models")])
    return {}


@endpoint("runs/log-inputs", "POST", write=True)
def log_inputs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    """Datasets a run used (MLflow's ``models`` inputs, logged-model links, are not kept)."""
    store.log_inputs(_run_id(args), j.load_dataset_inputs(listed(args, "datasets")))
    return {}
