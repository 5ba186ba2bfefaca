"""The fluent API's reads: ``get_run``, ``get_metric_history``, ``search_runs``.

Re-exported by :mod:`autolog.tracking` (import them from there or from ``autolog``); split out
to keep that module under ~600 lines. They reach the store, the client and the active
experiment through :mod:`autolog.tracking` at call time, so its state (and a test's
monkeypatching of it) is the one in force.
"""

from __future__ import annotations

from collections.abc import Sequence

import autolog.tracking as _tracking
from autolog.errors import InvalidValueError
from autolog.tracking_client import before_read

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from store.entities import Metric, Run


def get_run(run_id: str) -> Run:
    """A run by id, with params, latest metrics, tags and inputs (``run.inputs.dataset_inputs``)."""
    before_read(run_id)
    return _tracking._store().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point of one metric, ordered by step then time."""
    before_read(run_id)
    return _tracking._store().get_metric_history(run_id, key)


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: str | int = "ACTIVE_ONLY",
    max_results: int = 100_000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Search runs with the filter grammar of store/search.py.

    :param experiment_ids: experiments to search (default: the active experiment).
    :param filter_string: e.g. ``"metrics.acc > 0.9 and (params.model = 'rf' or params.model = 'gb')"``.
    :param run_view_type: ``ACTIVE_ONLY``, ``DELETED_ONLY`` or ``ALL``.
    :param max_results: at most this many runs.
    :param order_by: e.g. ``["metrics.acc DESC", "start_time"]``.
    :param output_format: ``"pandas"`` (a DataFrame with run_id, status, start_time,
        metrics.*, params.*, tags.* columns) or ``"list"`` (Run objects).
    :param search_all_experiments: search every experiment.
    :param experiment_names: experiments to search, by name.
    """
    return _tracking.Client().search_runs(
        experiment_ids=_resolve_experiments(
            experiment_ids, experiment_names, search_all_experiments
        ),
        filter_string=filter_string,
        run_view_type=run_view_type,
        max_results=max_results,
        order_by=order_by,
        output_format=output_format,
    )


def _resolve_experiments(
    experiment_ids: Sequence[str] | None, experiment_names: Sequence[str] | None, search_all: bool
) -> list[str] | None:
    if search_all:
        return None
    ids = list(experiment_ids or [])
    for name in experiment_names or []:
        exp = _tracking._store().get_experiment_by_name(name)
        if exp is None:
            raise InvalidValueError(
                f"No experiment named {name!r}; known: "
                f"{', '.join(e.name for e in _tracking._store().list_experiments())}."
            )
        ids.append(exp.experiment_id)
    if not ids and experiment_ids is None and experiment_names is None:
        ids = [_tracking._active_experiment_id()]
    return ids
