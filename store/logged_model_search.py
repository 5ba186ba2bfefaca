"""The search of logged models: MLflow 3's filter names over the grammar of :mod:`store.filters`.

Names (``attributes.`` may be left out)::

    name, model_id, model_type, status, source_run_id           strings
    creation_timestamp (creation_time), last_updated_timestamp   milliseconds since the epoch
    metrics.<key>   numbers: the model's metrics (any dataset, or those of ``datasets``)
    params.<key>, tags.<key>                                     strings

as in ``metrics.accuracy > 0.9 AND params.max_depth = '3' AND name = 'model'``. ``order_by``
takes clauses ``"metrics.accuracy DESC"`` or MLflow's dicts ``{"field_name":
"metrics.accuracy", "ascending": False}``; models lacking the key come last; the default is
newest first, model_id breaking ties. SQL comes only from fixed fragments; every key and value
is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from store.errors import InvalidValueError, SearchSyntaxError
from store.filters import Vocabulary, parse_filter, parse_order_by
from store.sql.dialect import SQLITE, Dialect
from store.sql.search import Target, compile_filter

ATTRIBUTES = {
    "name": ("name", "string"),
    "model_id": ("model_id", "string"),
    "model_type": ("model_type", "string"),
    "status": ("status", "model_status"),
    "source_run_id": ("source_run_id", "string"),
    "creation_timestamp": ("creation_timestamp", "number"),
    "last_updated_timestamp": ("last_updated_timestamp", "number"),
}
_ALIASES = {"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"}


def _check_status(value: str) -> str:
    from store.sqlite_logged_models import STATUSES

    status = value.upper()
    if status not in STATUSES:
        raise ValueError(f"unknown status {value!r}; use one of {', '.join(STATUSES)}")
    return status


def _unknown(name: str, prefixed: bool) -> str:
    return (
        f"unknown name '{name}'; allowed: {', '.join(ATTRIBUTES)}, metrics.<key>, params.<key>, "
        "tags.<key>"
    )


VOCABULARY = Vocabulary(
    prefixes={
        **dict.fromkeys(("metrics", "metric"), "metrics"),
        **dict.fromkeys(("params", "param", "parameters"), "params"),
        **dict.fromkeys(("tags", "tag"), "tags"),
        **dict.fromkeys(("attributes", "attribute", "attr"), "attributes"),
    },
    attributes=ATTRIBUTES,
    unknown_attribute=_unknown,
    aliases=_ALIASES,
    checks={"model_status": _check_status},
    example="a comparison such as metrics.accuracy > 0.9 or name = 'model'",
)


def _target(metrics_table: str) -> Target:
    return Target(
        alias="t",
        keyed={
            "metrics": (metrics_table, "{x}.model_id = t.model_id"),
            "params": ("logged_model_params", "{x}.model_id = t.model_id"),
            "tags": ("logged_model_tags", "{x}.model_id = t.model_id"),
        },
    )


def _datasets_cte(
    datasets: Sequence[Mapping[str, Any]], params: list[Any], dialect: Dialect
) -> str:
    """A WITH clause naming the metrics of the given datasets ``dm``."""
    terms = []
    for d in datasets:
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
            raise InvalidValueError(
                f"Invalid dataset {d!r} in datasets: give dicts such as {{'name': 'train'}} or "
                "{'name': 'train', 'digest': '3f2a...'}."
            )
        params.append(d["name"])
        term = f"dataset_name = {dialect.mark}"
        if d.get("digest"):
            params.append(str(d["digest"]))
            term += f" AND dataset_digest = {dialect.mark}"
        terms.append(f"({term})")
    return f"WITH dm AS (SELECT * FROM logged_model_metrics WHERE {' OR '.join(terms)}) "


def _order_clauses(order_by: Sequence[str | Mapping[str, Any]] | str | None) -> list[str]:
    """MLflow's order_by dicts as clauses of the grammar."""
    if order_by is None:
        return []
    out = []
    for clause in [order_by] if isinstance(order_by, (str, Mapping)) else order_by:
        if isinstance(clause, Mapping):
            field = clause.get("field_name")
            if not isinstance(field, str) or clause.get("dataset_name"):
                raise InvalidValueError(
                    f"Invalid order_by {dict(clause)!r}: give {{'field_name': 'metrics.acc', "
                    "'ascending': False}} (ordering by a dataset's metric is not supported; "
                    "pass datasets=[{'name': ...}] to the search instead)."
                )
            clause = f"{field} {'ASC' if clause.get('ascending', True) else 'DESC'}"
        out.append(clause)
    return out


def search_sql(
    experiment_ids: Sequence[str | int] | None,
    filter_string: str | None,
    datasets: Sequence[Mapping[str, Any]] | None,
    max_results: int | None,
    order_by: Sequence[str | Mapping[str, Any]] | str | None,
    dialect: Dialect = SQLITE,
) -> tuple[str, list[Any]]:
    """SQL selecting the ids of the active logged models that match, ordered and limited."""
    if filter_string is not None and not isinstance(filter_string, str):
        raise InvalidValueError(f"filter_string must be a string, not {filter_string!r}")
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0
    ):
        raise InvalidValueError(f"max_results must be an integer >= 0 or None, not {max_results!r}")
    params: list[Any] = []
    cte = _datasets_cte(datasets, params, dialect) if datasets else ""
    target = _target("dm" if datasets else "logged_model_metrics")
    conditions = ["t.lifecycle_stage = 'active'"]
    if experiment_ids is not None:
        try:
            ids = [int(e) for e in experiment_ids]
        except (TypeError, ValueError):
            raise InvalidValueError(
                f"experiment_ids {experiment_ids!r} are not integers; pass ids such as ['1']"
            ) from None
        conditions.append(f"t.experiment_id IN ({dialect.marks(len(ids))})" if ids else "0 = 1")
        params.extend(ids)
    node = parse_filter(filter_string or "", VOCABULARY, "logged model filter")
    if node is not None:
        conditions.append(compile_filter(node, target, params, dialect))
    terms = []
    order = parse_order_by(_order_clauses(order_by), VOCABULARY) or [
        ("attributes", "creation_timestamp", False)
    ]
    for kind, key, ascending in order:
        if kind == "attributes":
            column = f"t.{key}"
        else:
            table = target.keyed[kind][0]
            pick = "MAX" if kind == "metrics" and not ascending else "MIN"
            column = (
                f"(SELECT {pick}(o.value) FROM {table} o WHERE o.model_id = t.model_id "
                f"AND o.key = {dialect.mark})"
            )
            params.append(key)
        terms.append(f"{column} IS NULL, {column} {'ASC' if ascending else 'DESC'}")
        if kind != "attributes":
            params.append(key)  # the subquery appears twice
    if dialect.insertion_order:  # models logged in the same millisecond: by logging order
        terms.append(f"t.{dialect.insertion_order} {'ASC' if order_by else 'DESC'}")
    terms.append("t.model_id ASC")
    sql = f"{cte}SELECT t.model_id FROM logged_models t WHERE {' AND '.join(conditions)}"
    sql += f" ORDER BY {', '.join(terms)}"
    sql += dialect.limit(max_results, 0, params)
    return sql, params


__all__ = ["ATTRIBUTES", "VOCABULARY", "SearchSyntaxError", "search_sql"]
