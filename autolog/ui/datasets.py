"""The dataset page: one dataset (by digest) and the runs that used it, read through the store."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from autolog.ui import api


def from_json(text: str | None) -> dict[str, Any]:
    """A stored profile or schema as a dict ({} when absent or not a JSON object)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def digest_filter(digest: str) -> str:
    """The search filter selecting runs that used a dataset of this digest (quotes doubled)."""
    return "datasets.digest = '{}'".format(digest.replace("\\", "\\\\").replace("'", "''"))


def page_dataset(request: Request) -> HTMLResponse:
    from autolog.ui.app import render

    store = api.store_of(request)
    digest = request.path_params["digest"]
    records = store.search_datasets(digest=digest)
    if not records:
        raise HTTPException(404, f"No dataset with digest {digest!r} in this store.")
    runs = store.search_runs(None, digest_filter(digest), max_results=1000)
    experiments = {e.experiment_id: e.name for e in store.list_experiments(None)}
    return render(
        request,
        "dataset.html",
        title=f"Dataset {records[0].dataset.name}",
        nav="runs",
        digest=digest,
        records=records,
        runs=runs,
        experiments=experiments,
        schema=from_json(records[0].dataset.schema),
        profile=from_json(records[0].dataset.profile),
    )
