"""The registry's pages: the models list (a search box, versions counted per stage), one
registered model, and one model version (signature, flavors, files, the source run and its
metrics, load/serve snippets)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from autolog.errors import AutologError
from autolog.run_columns import order_metric_keys
from autolog.ui import api, data

# a search box entry that uses the filter grammar is passed on as it is; plain text matches
# anywhere in the name, ignoring case
_FILTER_WORDS = ("=", "<", ">", " like ", " ilike ", " in ", "tags.", "name ")


def model_filter(query: str) -> str:
    """The registry filter for what was typed in the models page's search box."""
    text = query.strip()
    if not text:
        return ""
    if any(w in f" {text.lower()} " for w in _FILTER_WORDS):
        return text
    return "name ILIKE " + data._quote(f"%{text}%")


def stage_counts(store: Any, names: list[str]) -> dict[str, dict[str, list[str]]]:
    """model name -> stage -> every version in that stage (newest first), in one search."""
    out: dict[str, dict[str, list[str]]] = {n: {} for n in names}
    if not names:
        return out
    for v in store.search_model_versions(None, order_by=["version DESC"]):
        stage = getattr(v, "current_stage", None)
        if v.name in out and stage and stage != "None":
            out[v.name].setdefault(stage, []).append(str(v.version))
    return out


def page_models(request: Request) -> HTMLResponse:
    from autolog.ui.app import render

    store = api.store_of(request)
    registry = data.has_registry(store)
    query = request.query_params.get("q", "")
    error, registered = None, []
    if registry:
        try:
            registered = data.registered_models(store, model_filter(query))
        except AutologError as exc:  # a malformed filter: say so, keep the page
            error = str(exc)
    stages = stage_counts(store, [m["name"] for m in registered]) if registry else {}
    return render(
        request,
        "models.html",
        status_code=400 if error else 200,
        title="Models",
        nav="models",
        registry=registry,
        registered=registered,
        query=query,
        error=error,
        stages=stages,
        logged=data.logged_models(store),
    )


def page_model(request: Request) -> HTMLResponse:
    from autolog.ui.app import render

    store = api.store_of(request)
    if not data.has_registry(store):
        raise HTTPException(404, "This store has no model registry.")
    model = data.registered_model(store, request.path_params["name"])
    ids = [v["run_id"] for v in model["versions"] if v["run_id"]]
    runs = {r.info.run_id: r for r in store.get_runs(ids)}
    stages: dict[str, list[str]] = {}
    for v in model["versions"]:
        if v["current_stage"] and v["current_stage"] != "None":
            stages.setdefault(v["current_stage"], []).append(v["version"])
    return render(
        request, "model.html", title=model["name"], nav="models", model=model, runs=runs,
        stages=stages,
    )  # fmt: skip


def _source_model(store: Any, run_id: str | None, source: str) -> tuple[dict | None, list]:
    """The run's model entry (flavors, signature) that the version was registered from, and
    its files; (None, []) when the source lies outside any run of this store."""
    if not run_id:
        return None, []
    path = None
    if source.startswith(f"runs:/{run_id}/"):
        path = source[len(f"runs:/{run_id}/") :].strip("/")
    elif source.startswith("models:/m-"):
        try:
            path = store.get_logged_model(source[len("models:/") :]).artifact_path
        except AutologError:
            path = None
    models = data.run_models(store, run_id)
    entry = next((m for m in models if m["artifact_path"] == path), None)
    if entry is None:
        return None, []
    files = [f for f in store.list_artifacts(run_id, entry["artifact_path"]) if not f.is_dir]
    return entry, files


def page_model_version(request: Request) -> HTMLResponse:
    store = api.store_of(request)
    if not data.has_registry(store):
        raise HTTPException(404, "This store has no model registry.")
    name, version = request.path_params["name"], request.path_params["version"]
    mv = data._version_dict(store.get_model_version(name, version))  # type: ignore[attr-defined]
    entry, files = _source_model(store, mv["run_id"], mv["source"] or "")
    run = store.get_run(mv["run_id"]) if mv["run_id"] else None
    alias = "champion" if "champion" in mv["aliases"] else (mv["aliases"] or [None])[0]
    uri = f"models:/{name}@{alias}" if alias else f"models:/{name}/{version}"
    load = (
        f'import autolog\n\nmodel = autolog.load_model("{uri}")\npredictions = model.predict(data)'
    )
    serve = f'autolog models serve -m "{uri}" --port 5001'
    metrics = order_metric_keys(run.data.metrics) if run else []
    return render_version(request, mv, entry, files, run, metrics, load, serve)


def render_version(request: Request, mv: dict, entry: Any, files: list, run: Any,
                   metrics: list[str], load: str, serve: str) -> HTMLResponse:  # fmt: skip
    from autolog.ui.app import render

    return render(
        request,
        "model_version.html",
        title=f"{mv['name']} v{mv['version']}",
        nav="models",
        mv=mv,
        entry=entry,
        files=files,
        run=run,
        metric_keys=metrics,
        load_code=load,
        serve_code=serve,
    )
