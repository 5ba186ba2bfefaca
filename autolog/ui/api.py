"""The JSON API under ``/api/`` that the pages use; every route only reads.

Errors are ``{"error_code": ..., "message": ...}`` (MLflow's shape) with status 400 for a bad
argument or path, 404 for something that does not exist. Non-finite metric values are the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers).
See docs/ui.md for the reference.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from autolog.ui import data
from store.base import TrackingStore as Store
from store.errors import InvalidValueError

# Artifacts are user content: never run as part of this app. `sandbox` gives an HTML or SVG
# file an opaque origin with scripts, forms and popups disabled, even when opened directly.
ARTIFACT_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "font-src data:; frame-ancestors 'self'"
)


def store_of(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def int_arg(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidValueError(f"Query parameter {name}={raw!r} must be an integer.") from None


def list_arg(request: Request, name: str) -> list[str]:
    """A repeatable query parameter; each value may also be comma-separated."""
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out += [part.strip() for part in raw.split(",") if part.strip()]
    return out


def run_ids_arg(request: Request) -> list[str]:
    ids = list(dict.fromkeys(list_arg(request, "runs") + list_arg(request, "run_id")))
    if not 2 <= len(ids) <= data.MAX_COMPARE:
        raise InvalidValueError(
            f"Compare needs 2 to {data.MAX_COMPARE} distinct run ids in ?runs=; got {len(ids)}."
        )
    return ids


def order_by_arg(request: Request) -> list[str]:
    """``order_by`` entries of the search grammar, or one ``sort`` column id with ``dir``."""
    order_by = request.query_params.getlist("order_by")
    sort = request.query_params.get("sort")
    if sort:
        order_by = [data.sort_clause(sort, request.query_params.get("dir", "desc") != "asc")]
    return [o for o in order_by if o.strip()]


def experiment_ids_arg(request: Request) -> list[str] | None:
    ids = list_arg(request, "experiment_id")
    for eid in ids:
        if not eid.isdigit():
            raise InvalidValueError(f"experiment_id={eid!r} must be a number.")
    return ids or None


# -- endpoints --------------------------------------------------------------------------


def api_experiments(request: Request) -> JSONResponse:
    return JSONResponse({"experiments": data.experiments(store_of(request))})


def api_experiment(request: Request) -> JSONResponse:
    eid = str(request.path_params["experiment_id"])
    for e in data.experiments(store_of(request)):
        if e["experiment_id"] == eid:
            return JSONResponse({"experiment": e})
    store_of(request).get_experiment(int(eid))  # ExperimentNotFoundError (a deleted one too)
    return error(404, "RESOURCE_DOES_NOT_EXIST", f"Experiment {eid} is deleted.")


def api_runs(request: Request) -> JSONResponse:
    page = data.runs_page(
        store_of(request),
        experiment_ids_arg(request),
        request.query_params.get("filter", ""),
        order_by_arg(request),
        int_arg(request, "offset", 0) or 0,
        int_arg(request, "max_results", data.DEFAULT_PAGE_SIZE) or data.DEFAULT_PAGE_SIZE,
        "deleted" if request.query_params.get("deleted") == "1" else "active",
    )
    end = page.offset + len(page.runs)
    total = end if page.total is None else page.total  # counted: runs_page(count=True)
    return JSONResponse(
        {
            "runs": [data.run_dict(r, all_tags=False) for r in page.runs],
            "total": total,
            "offset": page.offset,
            "max_results": page.limit,
            "next_offset": end if end < total else None,
            "columns": {"params": page.param_keys, "metrics": page.metric_keys},
        }
    )


def api_runs_count(request: Request) -> JSONResponse:
    """How many runs match (the runs page asks after showing a filtered search's first page)."""
    deleted = request.query_params.get("deleted") == "1"
    total = store_of(request).count_runs(
        experiment_ids_arg(request),
        request.query_params.get("filter", ""),
        "deleted" if deleted else "active",
    )
    return JSONResponse({"total": total})


def api_run(request: Request) -> JSONResponse:
    store = store_of(request)
    run = data.check_run(store, request.path_params["run_id"])
    rid = run.info.run_id
    return JSONResponse(
        {
            "run": data.run_dict(run),
            "children": data.run_children(store, rid),
            "models": data.run_models(store, rid),
            "model_versions": data.run_model_versions(store, rid),
        }
    )


def api_metric_history(request: Request) -> JSONResponse:
    store = store_of(request)
    key = request.query_params.get("key")
    if not key:
        raise InvalidValueError("Give the metric with ?key=<metric key>.")
    rid = request.path_params["run_id"]
    data.check_run(store, rid)
    return JSONResponse(
        data.metric_history(
            store,
            rid,
            key,
            int_arg(request, "max_points", data.DEFAULT_MAX_POINTS) or data.DEFAULT_MAX_POINTS,
            int_arg(request, "min_step", None),
            int_arg(request, "max_step", None),
        )
    )


def api_artifacts(request: Request) -> JSONResponse:
    store = store_of(request)
    rid = request.path_params["run_id"]
    data.check_run(store, rid)
    path = request.query_params.get("path", "")
    return JSONResponse({"path": path, "files": data.artifact_listing(store, rid, path)})


def api_artifact_file(request: Request) -> Response:
    """The bytes of one artifact file, sandboxed; ``?download=1`` as an attachment."""
    store = store_of(request)
    rid = request.path_params["run_id"]
    path = request.path_params["path"]
    data.check_run(store, rid)
    file = data.artifact_file(store, rid, path)
    if file.is_dir():
        raise InvalidValueError(
            f"{path!r} is a folder; list it with /api/runs/{rid}/artifacts?path=."
        )
    if not file.is_file():
        raise FileNotFoundError(path)
    disposition = "attachment" if request.query_params.get("download") else "inline"
    name = quote(file.name)
    return FileResponse(
        file,
        media_type=data.content_type(path),
        headers={
            "Content-Security-Policy": ARTIFACT_CSP,
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{name}",
            "Cache-Control": "no-cache",
        },
    )


def api_artifact_preview(request: Request) -> JSONResponse:
    store = store_of(request)
    rid = request.path_params["run_id"]
    data.check_run(store, rid)
    path = request.query_params.get("path", "")
    if not path:
        raise InvalidValueError("Give the file with ?path=<artifact path>.")
    preview = data.artifact_preview(store, rid, path)
    preview["url"] = artifact_url(rid, path)
    return JSONResponse(preview)


def api_logged_models(request: Request) -> JSONResponse:
    return JSONResponse({"models": data.logged_models(store_of(request))})


def api_registered_models(request: Request) -> JSONResponse:
    store = store_of(request)
    if not data.has_registry(store):
        return error(404, "FEATURE_DISABLED", "This store has no model registry.")
    models = data.registered_models(store, request.query_params.get("filter", ""))
    return JSONResponse({"registered_models": models})


def api_registered_model(request: Request) -> JSONResponse:
    store = store_of(request)
    if not data.has_registry(store):
        return error(404, "FEATURE_DISABLED", "This store has no model registry.")
    return JSONResponse(
        {"registered_model": data.registered_model(store, request.path_params["name"])}
    )


def artifact_url(run_id: str, path: str) -> str:
    return f"/api/runs/{quote(run_id)}/artifacts/{quote(path)}"


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


routes = [
    Route("/api/experiments", api_experiments),
    Route("/api/experiments/{experiment_id:int}", api_experiment),
    Route("/api/runs", api_runs),
    Route("/api/runs/count", api_runs_count),
    Route("/api/runs/{run_id}", api_run),
    Route("/api/runs/{run_id}/metric-history", api_metric_history),
    Route("/api/runs/{run_id}/artifacts", api_artifacts),
    Route("/api/runs/{run_id}/artifacts/{path:path}", api_artifact_file),
    Route("/api/runs/{run_id}/artifact-preview", api_artifact_preview),
    Route("/api/models", api_logged_models),
    Route("/api/registered-models", api_registered_models),
    Route("/api/registered-models/{name}", api_registered_model),
]
