"""Which metric columns a list of runs shows by default: shared by the CLI and the UI.

The metrics every listed run has, validation/test metrics first (they are what a search is
judged by), then the rest alphabetically; single-value summaries (best_*, training_*) last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_EVAL_MARKERS = ("val", "valid", "validation", "test", "eval")
_SUMMARY_PREFIXES = ("best_", "training_", "stopped_")


def _rank(key: str) -> tuple[int, str]:
    lowered = key.lower()
    parts = lowered.replace("-", "_").replace(".", "_").replace("/", "_").split("_")
    if lowered.startswith(_SUMMARY_PREFIXES) or lowered.startswith("system/"):
        return (2, lowered)
    if any(p in _EVAL_MARKERS for p in parts):
        return (0, lowered)
    return (1, lowered)


def order_metric_keys(keys: Iterable[str]) -> list[str]:
    """Metric keys in display order: validation/test first, summaries and system metrics last."""
    return sorted(set(keys), key=_rank)


def default_metric_columns(key_sets: Sequence[Iterable[str]], limit: int = 4) -> list[str]:
    """The metrics shared by every run (or, when none is shared, those most runs have)."""
    sets = [set(k) for k in key_sets]
    if not sets:
        return []
    shared = set.intersection(*sets)
    if not shared:
        counts: dict[str, int] = {}
        for s in sets:
            for k in s:
                counts[k] = counts.get(k, 0) + 1
        top = max(counts.values(), default=0)
        shared = {k for k, n in counts.items() if n == top}
    return [k for k in order_metric_keys(shared) if not k.startswith("system/")][:limit]


def is_single_value_metric(key: str) -> bool:
    """A metric logged once per run by design (best_score, training_score, stopped_iteration)."""
    return key.startswith(_SUMMARY_PREFIXES) or key == "stopped_iteration"
