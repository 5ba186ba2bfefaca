"""Search over runs: the grammar lives in :mod:`store.filters`, its SQL in :mod:`store.sql.search`.

Kept so that ``from store.search import build_search_sql`` goes on working.
"""

from store.sql.search import build_search_sql, count_search_sql, parse_order_by

__all__ = ["build_search_sql", "count_search_sql", "parse_order_by"]
