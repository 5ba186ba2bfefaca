"""Search over runs: the grammar lives in :mod:`store.filters`, its SQL in :mod:`store.sql.search`.

Kept so that ``from store.search import build_search_sql`` goes on working.
"""

from store.filters import (
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_IN_VALUES,
    MAX_ORDER_BY,
)
from store.sql.search import (
    build_search_sql,
    count_run_ids,
    count_search_sql,
    parse_order_by,
    search_run_ids,
)

__all__ = [
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_FILTER_LENGTH",
    "MAX_IN_VALUES",
    "MAX_ORDER_BY",
    "build_search_sql",
    "count_run_ids",
    "count_search_sql",
    "parse_order_by",
    "search_run_ids",
]
