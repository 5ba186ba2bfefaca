"""The runs of the search-scale benchmark, generated the same for every store (no dependencies:
the MLflow side imports this module in MLflow's own virtualenv).

Run i: 10 params p0..p9 (values v0..v9), 5 metrics m0..m4 (uniform in [0, 1), one point each),
3 tags t0..t2 (values t0..t99), start_time 1000 ms after run i-1. Run ids are random 32-hex ids
handed out in sorted order (inserts append to the primary-key B-trees: loading stays fast; the
ids still look like uuid4 hex to a query).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

PARAMS, METRICS, TAGS = 10, 5, 3
START = 1_700_000_000_000
FILTER = "metrics.m0 > 0.5 and params.p0 = 'v3'"  # about 5% of the runs
ORDER_BY = ["metrics.m1 DESC"]
MAX_RESULTS = 100


@dataclass
class Chunk:
    runs: list[tuple] = field(default_factory=list)  # (run_id, start_time)
    params: list[tuple] = field(default_factory=list)  # (run_id, key, value)
    metrics: list[tuple] = field(default_factory=list)  # (run_id, key, value, timestamp, step)
    tags: list[tuple] = field(default_factory=list)  # (run_id, key, value)


def run_ids(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return sorted(f"{rng.getrandbits(128):032x}" for _ in range(n))


def chunks(n: int, size: int = 20_000, seed: int = 7) -> Iterator[Chunk]:
    ids = run_ids(n, seed)
    rng = random.Random(seed + 1)
    for lo in range(0, n, size):
        c = Chunk()
        for i in range(lo, min(n, lo + size)):
            rid, start = ids[i], START + i * 1000
            c.runs.append((rid, start))
            c.params += [(rid, f"p{k}", f"v{rng.randrange(10)}") for k in range(PARAMS)]
            c.metrics += [(rid, f"m{k}", rng.random(), start, 0) for k in range(METRICS)]
            c.tags += [(rid, f"t{k}", f"t{rng.randrange(100)}") for k in range(TAGS)]
        yield c
