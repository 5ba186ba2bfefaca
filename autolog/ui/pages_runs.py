"""The runs table pages (all runs, one experiment's runs): filter, sort, pages, nested child
rows, the deleted-runs view with its restore action, and the chart view of a page of runs."""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from autolog.run_columns import default_metric_columns, order_metric_keys
from autolog.ui import api, data, nesting
from store.base import TrackingStore as Store
from store.errors import AutologError, ExperimentNotFoundError, InvalidValueError

# A parent unfolds its best children; all of them are ranked on its page. (Every child as a
# row made a page of 50 searches of 50 candidates 2,550 rows, 1.3 MB of HTML.)
CHILD_ROWS = 10
_DEFAULTS: dict[str, Any] = {
    "filter": "",
    "sort": "attributes.start_time",
    "dir": "desc",
    "per_page": data.DEFAULT_PAGE_SIZE,
    "page": 1,
    "deleted": "",
    "view": "",
}


class RunsTable:
    """The state of a runs table page (filter, sort, page, deleted or active runs, table or
    chart view) and the links that change it."""

    def __init__(self, request: Request, base: str):
        q = request.query_params
        self.base = base
        self.filter = q.get("filter", "")
        self.sort = q.get("sort", "attributes.start_time")
        self.dir = "asc" if q.get("dir") == "asc" else "desc"
        self.per_page = api.int_arg(request, "per_page", data.DEFAULT_PAGE_SIZE) or 1
        self.per_page = max(1, min(self.per_page, data.MAX_PAGE_SIZE))
        self.page = max(1, api.int_arg(request, "page", 1) or 1)
        self.deleted = "1" if q.get("deleted") == "1" else ""
        self.view = "chart" if q.get("view") == "chart" else ""

    def state(self, **changes: Any) -> dict[str, Any]:
        """The query parameters that differ from the defaults, with ``changes`` applied."""
        state = {k: getattr(self, k) for k in _DEFAULTS}
        state.update(changes)
        return {k: v for k, v in state.items() if v != _DEFAULTS[k]}

    def link(self, **changes: Any) -> str:
        query = self.state(**changes)
        return self.base + ("?" + urlencode(query) if query else "")

    def sort_link(self, column: str) -> str:
        if column == self.sort:
            return self.link(dir="asc" if self.dir == "desc" else "desc", page=1)
        first = "asc" if column.startswith(("params.", "tags.", "attributes.run_name")) else "desc"
        return self.link(sort=column, dir=first, page=1)

    def arrow(self, column: str) -> str:
        if column != self.sort:
            return ""
        return "\u25b2" if self.dir == "asc" else "\u25bc"


def _search(store: Store, eids: list[str] | None, table: RunsTable, nested: bool) -> Any:
    """The page of runs the table shows; a page past the last one shows the last one.

    A filtered search is not counted when more matches follow this page: the count reads every
    match (0.4 s of CPU over 100,000 runs) where the page needs 50, so the browser asks for it
    afterwards (/api/runs/count) and the page is shown without waiting."""
    stage = "deleted" if table.deleted else "active"
    filter_string = table.filter or (nesting.TOP_LEVEL if nested else "")
    args = (store, eids, filter_string, [data.sort_clause(table.sort, table.dir == "desc")])
    offset = (table.page - 1) * table.per_page
    page = data.runs_page(*args, offset, table.per_page, stage, count=not table.filter)
    if page.total is None and page.runs:
        return page
    total = page.total
    if total is None:  # past the end of a filtered search
        total = store.count_runs(eids, filter_string, stage)
    last = max(1, math.ceil(total / table.per_page))
    if table.page > last:
        table.page = last
        page = data.runs_page(*args, (last - 1) * table.per_page, table.per_page, stage)
    return page


def count_url(table: RunsTable, eids: list[str] | None) -> str:
    """Where the browser asks for the count of a filtered search's matches."""
    query = {"filter": table.filter, "deleted": table.deleted}
    if eids:
        query["experiment_id"] = eids[0]
    return "/api/runs/count?" + urlencode({k: v for k, v in query.items() if v})


def chart_entries(runs: list[Any]) -> list[dict[str, Any]]:
    """The runs of a page as the chart view draws them (name, params, metrics)."""
    return [
        {
            "run_id": r.info.run_id,
            "name": r.info.run_name or r.info.run_id[:8],
            "params": dict(r.data.params),
            "metrics": {k: data.number(v) for k, v in r.data.metrics.items()},
        }
        for r in runs
    ]


def page_runs(request: Request, experiment: dict[str, Any] | None = None) -> HTMLResponse:
    from autolog.ui.app import render

    store = api.store_of(request)
    base = f"/experiments/{experiment['experiment_id']}" if experiment else "/runs"
    table = RunsTable(request, base)
    error = None
    page = None
    eids = [experiment["experiment_id"]] if experiment else None
    nested = not table.filter and not table.deleted and request.query_params.get("flat") != "1"
    try:
        page = _search(store, eids, table, nested)
    except AutologError as exc:  # a malformed filter or sort: say so, keep the page
        error = str(exc)
    runs = page.runs if page else []
    children = nesting.children_of(store, eids, runs) if nested else {}
    shown = runs + [c for kids in children.values() for c in kids[:CHILD_ROWS]]
    metric_keys = order_metric_keys({k for r in shown for k in r.data.metrics})
    total = (page.total if page else 0) or 0
    counted = page is None or page.total is not None
    return render(
        request,
        "runs.html",
        status_code=400 if error else 200,
        title=("Deleted runs of " if table.deleted else "")
        + (experiment["name"] if experiment else "All runs"),
        nav="runs" if experiment is None else "experiments",
        experiment=experiment,
        experiment_names={}
        if experiment
        else {e.experiment_id: e.name for e in store.list_experiments()},
        table=table,
        error=error,
        runs=runs,
        total=total,
        pages=max(1, math.ceil(total / table.per_page)),
        counted=counted,
        count_url=count_url(table, eids),
        first=(page.offset + 1) if page and runs else 0,
        last=(page.offset + len(runs)) if page else 0,
        param_keys=sorted({k for r in shown for k in r.data.params}),
        metric_keys=metric_keys,
        # the metrics the page's own rows share: children (folded, and often many more) have
        # a search's per-candidate metrics, which would otherwise hide their parents' columns
        default_metrics=default_metric_columns([r.data.metrics.keys() for r in runs], limit=8),
        children=children,
        child_rows=CHILD_ROWS,
        nested=nested,
        columns_key=experiment["experiment_id"] if experiment else "all",
        with_models=models_of(store, [r.info.run_id for r in shown]),
        now_ms=int(time.time() * 1000),
        duration=data.duration_ms,
        integration_tag=data.INTEGRATION_TAG,
        page_data={"chart_runs": chart_entries(shown), "metrics": metric_keys}
        if table.view == "chart"
        else {},
    )


def models_of(store: Store, run_ids: list[str]) -> dict[str, list[str]]:
    """run_id -> artifact paths of its logged models, for one page of runs (one query)."""
    return store.models_of_runs(run_ids) if run_ids else {}


def page_all_runs(request: Request) -> HTMLResponse:
    return page_runs(request, None)


def page_experiment(request: Request) -> HTMLResponse:
    eid = str(request.path_params["experiment_id"])
    e = api.store_of(request).get_experiment(int(eid))  # ExperimentNotFoundError when unknown
    if e.lifecycle_stage != "active":
        raise ExperimentNotFoundError(f"Experiment {eid} is deleted.")
    # the page needs no run counts (a GROUP BY over every run of the store)
    return page_runs(request, {"experiment_id": e.experiment_id, "name": e.name})


def _same_origin(request: Request) -> bool:
    """A write must come from this app's own pages: a header no form or simple cross-site
    request can send (another site's script would need a CORS preflight, never granted here),
    and an Origin, when the browser sends one, naming this host."""
    if request.headers.get("x-autolog-ui") != "1":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1].lower() == request.headers.get("host", "").lower()


async def api_restore_run(request: Request) -> JSONResponse:
    """POST: bring a deleted run back (the deleted-runs view's Restore button)."""
    from starlette.concurrency import run_in_threadpool

    if not _same_origin(request):
        return api.error(
            403, "PERMISSION_DENIED", "Restore is accepted only from this UI's own pages."
        )
    store = api.store_of(request)
    run = await run_in_threadpool(data.check_run, store, request.path_params["run_id"])
    if run.info.lifecycle_stage != "deleted":
        raise InvalidValueError(f"Run {run.info.run_id} is active; there is nothing to restore.")
    await run_in_threadpool(store.restore_run, run.info.run_id)
    return JSONResponse({"run_id": run.info.run_id, "lifecycle_stage": "active"})
