"""The digest budget: digesting a 1,000,000 x 20 float64 frame (and array) adds under 5 ms.

    python -m benchmarks.datasets_bench [--repeats 50]

Prints the median and the spread of ``autolog.data.compute_digest`` (what every autologged fit
computes on the training thread) for a DataFrame and an ndarray of that size, and of the whole
``from_pandas`` (digest + schema + profile) the first time and again on the same frame (the
schema is inferred once per object and content).
"""

from __future__ import annotations

import argparse
import statistics
import time


def _times(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    from autolog import data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    arr = np.random.default_rng(0).random((1_000_000, 20))
    df = pd.DataFrame(arr, columns=[f"f{i}" for i in range(20)])
    data.compute_digest([df])  # warm-up: pandas' hashing code paths
    results: dict[str, float] = {}
    for label, fn in (
        ("digest DataFrame 1,000,000x20 float64", lambda: data.compute_digest([df])),
        ("digest ndarray 1,000,000x20 float64", lambda: data.compute_digest([arr])),
        ("from_pandas again on the same frame", lambda: data.from_pandas(df)),
    ):
        ms = _times(fn, args.repeats)
        results[label] = statistics.median(ms)
        print(
            f"{label}: median {statistics.median(ms):.3f} ms (min {min(ms):.3f}, max {max(ms):.3f})"
        )
    fresh = [df.copy() for _ in range(3)]  # new objects: the schema is inferred again
    first = _times(lambda: data.from_pandas(fresh.pop()), 3)
    print(f"from_pandas on a new frame (schema inferred): median {statistics.median(first):.1f} ms")
    return results


if __name__ == "__main__":
    main()
