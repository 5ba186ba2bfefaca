"""MLflow's model registry endpoints (registered models, versions, tags, aliases, stages)."""

from __future__ import annotations

from typing import Any

from autolog.server.endpoints import endpoint, listed, pairs, required, typed
from store import rest_json as j
from store.errors import InvalidValueError


def _model(store: Any, name: str) -> dict[str, Any]:
    return {"registered_model": j.dump_model(store.get_registered_model(name))}


def _version(mv: Any) -> dict[str, Any]:
    return {"model_version": j.dump_version(mv)}


def _page(items: list[Any], offset: int, limit: int) -> tuple[list[Any], str | None]:
    more = len(items) > offset + limit
    return items[offset : offset + limit], j.page_token(offset + limit) if more else None


def _search_args(args: dict[str, Any], default: int) -> tuple[str, int, int, list[str] | None]:
    limit = typed(args, "max_results", int, default)
    if not 0 < limit <= 100_000:
        raise InvalidValueError(f"Invalid max_results {limit}: give a number from 1 to 100000.")
    order = [str(o) for o in listed(args, "order_by")] or None
    return typed(args, "filter", str, ""), limit, j.page_offset(args.get("page_token")), order


@endpoint("registered-models/create", "POST", write=True)
def create_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    m = store.create_registered_model(
        required(args, "name"), pairs(args, "tags"), typed(args, "description", str)
    )
    return {"registered_model": j.dump_model(m)}


@endpoint("registered-models/get", "GET")
def get_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return _model(store, required(args, "name"))


@endpoint("registered-models/rename", "POST", write=True)
def rename_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    m = store.rename_registered_model(required(args, "name"), required(args, "new_name"))
    return {"registered_model": j.dump_model(m)}


@endpoint("registered-models/update", "PATCH", write=True)
def update_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    m = store.update_registered_model(required(args, "name"), typed(args, "description", str))
    return {"registered_model": j.dump_model(m)}


@endpoint("registered-models/delete", "DELETE", write=True)
def delete_model(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_registered_model(required(args, "name"))
    return {}


@endpoint("registered-models/search", "GET", "POST")
def search_models(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    flt, limit, offset, order = _search_args(args, 100)
    found = store.search_registered_models(flt or None, offset + limit + 1, order)
    page, token = _page(found, offset, limit)
    out: dict[str, Any] = {"registered_models": [j.dump_model(m) for m in page]}
    if token:
        out["next_page_token"] = token
    return out


@endpoint("registered-models/get-latest-versions", "GET", "POST")
def latest_versions(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    stages = [str(s) for s in listed(args, "stages")] or None
    versions = store.get_latest_versions(required(args, "name"), stages)
    return {"model_versions": [j.dump_version(v) for v in versions]}


@endpoint("registered-models/set-tag", "POST", write=True)
def set_model_tag(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.set_registered_model_tag(required(args, "name"), args.get("key"), args.get("value"))
    return {}


@endpoint("registered-models/delete-tag", "DELETE", write=True)
def delete_model_tag(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_registered_model_tag(required(args, "name"), required(args, "key"))
    return {}


@endpoint("registered-models/alias", "POST", write=True)
def set_alias(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.set_registered_model_alias(
        required(args, "name"), required(args, "alias"), required(args, "version", (str, int))
    )
    return {}


@endpoint("registered-models/alias", "DELETE", write=True)
def delete_alias(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_registered_model_alias(required(args, "name"), required(args, "alias"))
    return {}


@endpoint("registered-models/alias", "GET")
def get_by_alias(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return _version(
        store.get_model_version_by_alias(required(args, "name"), required(args, "alias"))
    )


@endpoint("model-versions/create", "POST", write=True)
def create_version(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    mv = store.create_model_version(
        required(args, "name"),
        required(args, "source"),
        run_id=typed(args, "run_id", str) or None,
        tags=pairs(args, "tags"),
        description=typed(args, "description", str),
        user_id=typed(args, "user_id", str),
        run_link=typed(args, "run_link", str) or None,
        create_model=typed(args, "create_model", bool, False),  # autolog's client only
    )
    return _version(mv)


@endpoint("model-versions/get", "GET")
def get_version(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    return _version(
        store.get_model_version(required(args, "name"), required(args, "version", (str, int)))
    )


@endpoint("model-versions/update", "PATCH", write=True)
def update_version(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    mv = store.update_model_version(
        required(args, "name"),
        required(args, "version", (str, int)),
        typed(args, "description", str),
    )
    return _version(mv)


@endpoint("model-versions/delete", "DELETE", write=True)
def delete_version(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_model_version(required(args, "name"), required(args, "version", (str, int)))
    return {}


@endpoint("model-versions/search", "GET", "POST")
def search_versions(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    flt, limit, offset, order = _search_args(args, 10_000)
    found = store.search_model_versions(flt or None, offset + limit + 1, order)
    page, token = _page(found, offset, limit)
    out: dict[str, Any] = {"model_versions": [j.dump_version(v) for v in page]}
    if token:
        out["next_page_token"] = token
    return out


@endpoint("model-versions/transition-stage", "POST", write=True)
def transition(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    mv = store.transition_model_version_stage(
        required(args, "name"),
        required(args, "version", (str, int)),
        required(args, "stage"),
        archive_existing_versions=typed(args, "archive_existing_versions", bool, False),
    )
    return _version(mv)


@endpoint("model-versions/set-tag", "POST", write=True)
def set_version_tag(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.set_model_version_tag(
        required(args, "name"),
        required(args, "version", (str, int)),
        args.get("key"),
        args.get("value"),
    )
    return {}


@endpoint("model-versions/delete-tag", "DELETE", write=True)
def delete_version_tag(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    store.delete_model_version_tag(
        required(args, "name"), required(args, "version", (str, int)), required(args, "key")
    )
    return {}


@endpoint("model-versions/get-download-uri", "GET")
def download_uri(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    mv = store.get_model_version(required(args, "name"), required(args, "version", (str, int)))
    return {"artifact_uri": proxied_source(store, mv.source)}


def proxied_source(store: Any, source: str) -> str:
    """runs:/<id>/<path> as the artifact proxy's URI, which MLflow's clients download from."""
    if source.startswith("runs:/"):
        rid, _, path = source[len("runs:/") :].partition("/")
        run = store.get_run(rid)
        base = j.proxied_artifact_uri(run.info.experiment_id, rid)
        return f"{base}/{path}" if path else base
    return source


# -- the autolog client's reads that MLflow's API has no call for ------------------------------


@endpoint("/api/2.0/autolog/registry/versions-of-run", "GET")
def versions_of_run(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    versions = store.model_versions_of_run(required(args, "run_id"))
    return {"model_versions": [j.dump_version(v) for v in versions]}


@endpoint("/api/2.0/autolog/registry/summary", "GET")
def summary(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    name = required(args, "name")
    return {"summary": store.registry_summary(name), "latest": store.latest_version_number(name)}
