"""A million runs on PostgreSQL: every page a user asks for, the count, and the plans behind them.

    .venv/bin/python -m benchmarks.search_scale_pg [--runs 1000000] [--repeats 5]
        [--out benchmarks/search_scale.json] [--keep /tmp/pg-1m]

``--keep DIR`` keeps the cluster in DIR after the run and, when DIR already holds the same
number of runs, starts it again instead of loading them (the load of 1M runs takes 8-15 min on
the shared 2-core machine; starting the kept cluster, seconds).

Builds the store of :mod:`benchmarks.search_scale` (N runs, 10 params, 5 metrics, 3 tags each,
loaded by COPY into a throwaway cluster) and times through the store API (``search_runs`` with
full runs returned, ``count_runs``), medians of ``--repeats`` after a warm-up:

* ``filtered``: filter on a metric and a param, ordered by a metric, first 100;
* ``filtered_last_page``: the same search's last page (offset: its count rounded down to 100);
* ``newest``: the UI's default page, newest 100 of the experiment;
* ``newest_last_page``: the oldest 100 (offset N - 100), the end of the runs table;
* ``count``: how many runs match the filter (the UI's total); ``count_all``: the experiment's;
* ``*_last_page_token``: the two last pages read as a client paging with ``next_page_token``
  does: after the sort key of the run before them (store.sql.keyset), no offset counted.

Each statement the store sent is then run again under ``EXPLAIN (ANALYZE, BUFFERS)``; the plans
are kept; a sequential scan of a large table by a page's statement (one with a LIMIT) fails
the script (a count of every run of an experiment reads them all whatever the plan). The result goes under the
``"postgres"`` key of the output file (the other keys are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/services.py starts PostgreSQL

from benchmarks.search_scale import load_postgres  # noqa: E402
from benchmarks.search_scale_data import FILTER, MAX_RESULTS, ORDER_BY  # noqa: E402

_BIG = ("runs", "params", "tags", "metrics", "latest_metrics")


class Recorder:
    """The store's reader, keeping every statement (and its parameters) it runs."""

    def __init__(self, reader: Any):
        self.reader = reader
        self.statements: list[tuple[str, list]] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        self.statements.append((sql, list(params or [])))
        return self.reader.execute(sql, params)


def cases(store: Any, eid: str, n: int) -> dict[str, Any]:
    """name -> a call of the store API (the offsets of the last pages counted once, here)."""
    matching = store.count_runs([eid], FILTER)
    last = max(0, (matching - 1) // MAX_RESULTS * MAX_RESULTS)
    find = {"filter_string": FILTER, "order_by": ORDER_BY, "max_results": MAX_RESULTS}
    calls = {
        "filtered": lambda: store.search_runs([eid], **find),
        "filtered_last_page": lambda: store.search_runs([eid], **find, offset=last),
        "newest": lambda: store.search_runs([eid], max_results=MAX_RESULTS),
        "newest_last_page": lambda: store.search_runs(
            [eid], max_results=MAX_RESULTS, offset=n - MAX_RESULTS
        ),
        "count": lambda: store.count_runs([eid], FILTER),
        "count_all": lambda: store.count_runs([eid]),
    }
    if hasattr(store, "search_runs_page"):  # the same last pages through a page token's cursor
        one = {**find, "max_results": 1}
        after = store.search_runs_page([eid], **one, offset=last - 1)[1][0]
        calls["filtered_last_page_token"] = lambda: store.search_runs_page(
            [eid], **find, after=after
        )[0]
        newest = store.search_runs_page([eid], max_results=1, offset=n - MAX_RESULTS - 1)[1][0]
        calls["newest_last_page_token"] = lambda: store.search_runs_page(
            [eid], max_results=MAX_RESULTS, after=newest
        )[0]
    return calls


def check(name: str, got: Any, n: int, matching: int) -> None:
    """The answer is right (sizes, order, filter), else AssertionError."""
    if name == "count":
        assert got == matching, (got, matching)
    elif name == "count_all":
        assert got == n, (got, n)
    elif name.startswith("filtered_last_page"):
        assert len(got) == matching - (matching - 1) // MAX_RESULTS * MAX_RESULTS, len(got)
    else:
        assert len(got) == MAX_RESULTS, (name, len(got))
    if name.startswith("filtered"):
        values = [r.data.metrics["m1"] for r in got]
        assert values == sorted(values, reverse=True), name
        assert all(r.data.metrics["m0"] > 0.5 and r.data.params["p0"] == "v3" for r in got)
    if name.startswith("newest"):
        starts = [r.info.start_time for r in got]
        assert starts == sorted(starts, reverse=True), name


def plans(store: Any, statements: list[tuple[str, list]]) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement; a sequential scan of a big table raises."""
    out = []
    for sql, params in statements:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        rows = store.conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
        text = "\n".join(r[0] for r in rows)
        scans = re.findall(r"Seq Scan on (\w+)", text)
        bad = [t for t in scans if t in _BIG]
        if bad and " LIMIT " in sql.upper():  # a page must not read the whole table
            raise AssertionError(f"sequential scan of {bad} in the plan of {sql}:\n{text}")
        ms = re.search(r"Execution Time: ([\d.]+) ms", text)
        out.append(
            {"sql": sql, "params": [str(p) for p in params], "seq_scans": bad,
             "execution_ms": float(ms.group(1)) if ms else None, "plan": text}
        )  # fmt: skip
    return out


def measure(uri: str, eid: str, n: int, repeats: int) -> dict[str, Any]:
    from store.base import open_store

    store = open_store(uri)
    matching = store.count_runs([eid], FILTER)
    out: dict[str, Any] = {"matching": matching}
    for name, call in cases(store, eid, n).items():
        times, cpu = [], []
        for i in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            got = call()
            if i:
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
        check(name, got, n, matching)
        out[name] = {
            "median_ms": round(statistics.median(times), 2),
            "all_ms": [round(t, 2) for t in times],
            "median_client_cpu_ms": round(statistics.median(cpu), 2),
            "plans": plans(store, _statements(store, call)),
        }
        print(name, out[name]["median_ms"], "ms", file=sys.stderr, flush=True)
    store.close()
    return out


def _statements(store: Any, call: Any) -> list[tuple[str, list]]:
    """The statements one call sends through the store's reader (get_runs' pipelined read
    aside: it reads by primary key)."""
    cls = type(store)
    original = cls.conn
    recorder = Recorder(store.conn)
    cls.conn = property(lambda self: recorder)  # type: ignore[assignment]
    try:
        call()
    finally:
        cls.conn = original  # type: ignore[assignment]
    return recorder.statements


def _loaded(pg: Any, keep: Path | None, runs: int, result: dict[str, Any]) -> tuple[str, str]:
    """The URI and experiment of the benchmark's runs: loaded now, or by an earlier run kept
    in ``keep`` (its ``loaded.json`` names the database)."""
    marker = keep / "loaded.json" if keep else None
    if marker is not None and marker.exists():
        kept = json.loads(marker.read_text())
        if kept["runs"] == runs:
            result["load_s"] = kept["load_s"]
            result["reused_cluster"] = True
            return pg.uri(kept["database"]) + kept["query"], kept["eid"]
    t0 = time.perf_counter()
    uri, eid = load_postgres(pg, runs)
    result["load_s"] = round(time.perf_counter() - t0, 1)
    print("loaded", result["load_s"], "s", file=sys.stderr, flush=True)
    if marker is not None:
        base, _, query = uri.partition("?")
        database = base.rsplit("/", 1)[1]
        info = {"runs": runs, "database": database, "query": "?" + query, "eid": eid}
        marker.write_text(json.dumps(info | {"load_s": result["load_s"]}))
    return uri, eid


def main(argv: list[str] | None = None) -> None:
    import services

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "search_scale.json"))
    p.add_argument("--keep", type=Path, help="keep the loaded cluster here; reuse it if there")
    args = p.parse_args(argv)
    result: dict[str, Any] = {"runs": args.runs, "load_before": os.getloadavg()}
    options = ["-c shared_buffers=1GB", "-c work_mem=64MB"]
    pg = services.start_postgres(options, data_dir=args.keep)
    try:
        uri, eid = _loaded(pg, args.keep, args.runs, result)
        result |= measure(uri, eid, args.runs, args.repeats)
    finally:
        pg.stop()
    result["load_after"] = os.getloadavg()
    path = Path(args.out)
    whole = json.loads(path.read_text()) if path.exists() else {}
    whole["postgres"] = result
    path.write_text(json.dumps(whole, indent=1) + "\n")
    for name, row in result.items():
        if isinstance(row, dict):
            print(f"{name}: {row['median_ms']} ms")


if __name__ == "__main__":
    main()
