"""The compare page: runs side by side (params, metrics, differences), overlaid histories,
parallel coordinates and a scatter of one param against one metric."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from autolog.run_columns import default_metric_columns
from autolog.ui import api, data

COLORS = [
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#d97706",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#4d7c0f",
    "#9a3412",
    "#475569",
]


def charted_keys(store: Any, runs: list[Any], metric_keys: list[str]) -> list[str]:
    """The metrics some run logged more than once: a metric every run logged once (best_*, a
    search's mean_test_score) is compared in the table; its chart would hold one dot per run."""
    from autolog.ui.pages_run import history_lengths

    lengths = [history_lengths(store, r.info.run_id, list(r.data.metrics)) for r in runs]
    return [k for k in metric_keys if any(n.get(k, 0) > 1 for n in lengths)]


def page_compare(request: Request) -> HTMLResponse:
    store = api.store_of(request)
    ids = api.run_ids_arg(request)
    runs = []
    for rid in ids:
        runs.append(data.check_run(store, rid))
    param_keys = sorted({k for r in runs for k in r.data.params})
    metric_keys = sorted({k for r in runs for k in r.data.metrics})

    def differs(values: list[Any]) -> bool:
        return len({repr(v) for v in values}) > 1

    params = []
    for k in param_keys:
        values = [r.data.params.get(k) for r in runs]
        params.append({"key": k, "values": values, "differs": differs(values)})
    metrics = []
    for k in metric_keys:
        mvalues = [r.data.metrics.get(k) for r in runs]
        metrics.append({"key": k, "values": mvalues, "differs": differs(mvalues)})
    entries = [
        {
            "run_id": r.info.run_id,
            "name": r.info.run_name or r.info.run_id[:8],
            "color": COLORS[i % len(COLORS)],
            "params": dict(r.data.params),
            "metrics": {k: data.number(v) for k, v in r.data.metrics.items()},
        }
        for i, r in enumerate(runs)
    ]
    # the experiment's main metric (validation/test first, shared by these runs) is the plots'
    main = default_metric_columns([r.data.metrics.keys() for r in runs], limit=1)
    default_metric = main[0] if main else None
    varying = [p["key"] for p in params if p["differs"]]
    from autolog.ui.app import render

    return render(
        request,
        "compare.html",
        default_metric=default_metric,
        scatter_params=varying + [k for k in param_keys if k not in varying],
        title=f"Compare {len(runs)} runs",
        nav="runs",
        runs=runs,
        entries=entries,
        params=params,
        metrics=metrics,
        n_differ=sum(p["differs"] for p in params),
        metric_keys=metric_keys,
        charted=charted_keys(store, runs, metric_keys),
        now_ms=int(time.time() * 1000),
        duration=data.duration_ms,
        integration_tag=data.INTEGRATION_TAG,
        page_data={
            "runs": entries,
            "metrics": metric_keys,
            "varying_params": varying,
            "params": param_keys,
        },
    )
