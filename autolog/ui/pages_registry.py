"""The page of one registered model version: signature, flavors, files, the source run and its
metrics, and load/serve snippets (the registry's other pages are in app.py)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from autolog.errors import AutologError
from autolog.run_columns import order_metric_keys
from autolog.ui import api, data


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
