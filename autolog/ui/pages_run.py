"""The page of one run: overview, models, metrics (histories charted, single values in a table),
its children ranked when it is a search's parent, datasets, params, tags, context, artifacts."""

from __future__ import annotations

import json
import time
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from autolog.run_columns import order_metric_keys
from autolog.ui import api, data, nesting
from store.errors import ExperimentNotFoundError

MAX_CHILD_ROWS = 500


def _context_rows(tags: dict[str, str]) -> list[tuple[str, str]]:
    labels = [
        ("mlflow.source.name", "Source"),
        ("mlflow.source.type", "Source type"),
        ("autolog.source.argv", "Command line"),
        ("mlflow.user", "User"),
        ("autolog.host", "Host"),
        ("autolog.python_version", "Python"),
        ("autolog.platform", "Platform"),
    ]
    return [(label, tags[key]) for key, label in labels if key in tags]


def split_tags(tags: dict[str, str]) -> dict[str, Any]:
    """The run's tags in the page's groups: git facts, the user's own, the other system tags."""
    git = {
        k.split(".source.git.", 1)[1]: v
        for k, v in tags.items()
        if k.startswith(data.GIT_TAG_PREFIXES)
    }
    user = {k: v for k, v in tags.items() if not k.startswith(data.SYSTEM_TAG_PREFIXES)}
    other = {
        k: v
        for k, v in tags.items()
        if k.startswith(data.SYSTEM_TAG_PREFIXES)
        and not k.startswith(data.GIT_TAG_PREFIXES)
        and k not in ("autolog.packages", data.NOTE_TAG)
    }
    packages: dict[str, str] = {}
    try:
        packages = dict(json.loads(tags.get("autolog.packages") or "{}"))
    except (ValueError, TypeError):
        packages = {}
    return {"git": git, "user_tags": user, "other_tags": other, "packages": packages}


def history_lengths(store: Any, run_id: str, keys: list[str]) -> dict[str, int]:
    """key -> number of points logged (a single value is charted as a table row instead).

    The store counts at most a few points of a short history; a long one is downsampled once
    (the same work its chart asks for) and cached by the store."""
    return {k: store.sampled_metric_history(run_id, k, 4)["total"] for k in keys}


def children_table(store: Any, run_id: str) -> dict[str, Any] | None:
    """A search's parent: its children best first by the metric they share, with the params
    that differ between them; None for a run without children."""
    ids = store.child_run_ids(run_id)
    if not ids:
        return None
    kids, metric = nesting.rank(store.get_runs(ids[:MAX_CHILD_ROWS]))
    keys = sorted({k for r in kids for k in r.data.params})
    varying = [k for k in keys if len({r.data.params.get(k) for r in kids}) > 1] or keys
    return {"runs": kids, "metric": metric, "params": varying[:12], "total": len(ids)}


def render_markdown(text: str | None) -> Markup | None:
    """A run description as HTML: Markdown with raw HTML escaped and unsafe links dropped."""
    if not text:
        return None
    from markdown_it import MarkdownIt

    # "html": False escapes any tag in the text; markdown-it refuses javascript:/vbscript:/data:
    # links by itself, and the page's CSP runs no inline script whatever gets through.
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return Markup(md.render(text))  # noqa: S704  (escaped by markdown-it, see above)


def page_run(request: Request) -> HTMLResponse:
    from autolog.ui.app import render

    store = api.store_of(request)
    run = data.check_run(store, request.path_params["run_id"])
    rid = run.info.run_id
    tags = run.data.tags
    parent = None
    if run.info.parent_run_id:
        found = store.get_runs([run.info.parent_run_id])
        parent = found[0] if found else None
    try:
        experiment = store.get_experiment(run.info.experiment_id)
    except ExperimentNotFoundError:
        experiment = None
    keys = order_metric_keys(run.data.metrics)
    lengths = history_lengths(store, rid, keys)
    charted = [k for k in keys if lengths[k] > 1]
    return render(
        request,
        "run.html",
        title=run.info.run_name or rid,
        nav="runs",
        run=run,
        experiment=experiment,
        duration=data.duration_ms(run, int(time.time() * 1000)),
        integration=tags.get(data.INTEGRATION_TAG),
        note=render_markdown(tags.get(data.NOTE_TAG)),
        parent=parent,
        children=children_table(store, rid),
        context_rows=_context_rows(tags),
        **split_tags(tags),
        metric_keys=keys,
        charted=charted,
        single=[k for k in keys if lengths[k] <= 1],
        lengths=lengths,
        models=data.run_models(store, rid),
        versions=data.run_model_versions(store, rid),
        tree=data.artifact_tree(store, rid),
        page_data={"run_id": rid, "metrics": charted},
    )
