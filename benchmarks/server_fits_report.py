"""The table of benchmarks/server_fits.py (per-fit budgets through a tracking server), written
between markers in docs/server.md, next to the local store's numbers of benchmarks/results.json.

Verdicts are benchmarks/report.py's: a ratio budget (5%) is judged on the training thread's
instruction count where it was counted, a millisecond budget on the fastest logged fit minus
the fastest raw fit (CPU time of the client process, its drain of the lane included).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.harness import BENCH_DIR

HEAD = "## Per-fit budgets through the server (benchmarks/server_fits.py)"


def _pct(counts: dict[str, Any] | None) -> str:
    if not counts or not counts.get("raw") or "autolog" not in counts:
        return "-"
    return f"{(counts['autolog'] / counts['raw'] - 1) * 100:+.2f}%"


def _rows(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["module"], r["scenario"]): r for r in report.derive(results)["scenarios"]}


VERDICTS = {
    True: "met",
    False: "NOT met",
    "thread": "met on the training thread (not on the process's CPU)",
    "noise": "within noise",
}


def _min_added(res: dict[str, Any], what: str) -> float | None:
    """Fastest autolog fit minus fastest raw fit, ms: ``times`` (wall until the fit returned),
    ``thread`` (the training thread's CPU) or ``cpu`` (the process's, drain included)."""
    times = res.get(what) or {}
    if not times.get("raw") or not times.get("autolog"):
        return None
    return (min(times["autolog"]) - min(times["raw"])) * 1000


def _requests(res: dict[str, Any], mode: str = "autolog") -> str:
    req = (res.get("requests") or {}).get(mode)
    if not req:
        return "-"
    other = req.get("training_thread_other") or []
    per_fit = {k: round(v / req["fits"]) for k, v in sorted(req["by_thread"].items())}
    text = ", ".join(f"{k} {v}" for k, v in per_fit.items())
    return f"{'runs/create only' if not other else 'ALSO ' + '; '.join(other)} ({text})"


def _read_back(res: dict[str, Any]) -> str:
    db, rest = res.get("logged") or {}, res.get("read_back") or {}
    if not rest:
        return "-"
    same = rest.get("params") == db.get("params")
    return (
        f"{rest.get('status')}, {rest.get('params')} params{'' if same else ' (DB differs)'}, "
        f"{rest.get('metrics')} metrics, {db.get('models')} model(s), "
        f"artifacts: {' '.join(rest.get('artifacts') or []) or 'none'}"
    )


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f} ms"


def _line(key: tuple[str, str], r: dict, res: dict, local: dict | None, mlflow: dict) -> str:
    ic, ict = r.get("icount") or {}, r.get("icount_thread") or {}
    raw = ict.get("raw") or ic.get("raw")
    loc = local or {}
    tiny = "-"
    if "max_added_ms" in (r.get("budget") or {}):
        tiny = (
            f"{_ms(_min_added(res, 'times'))} wall to return, {_ms(_min_added(res, 'thread'))} "
            f"training-thread CPU, {_ms(r.get('added_min_ms'))} process CPU (local "
            f"{_ms(loc.get('added_min_ms'))} process CPU)"
        )
    verdict = VERDICTS.get(r.get("verdict"), str(r.get("verdict")))
    ml = (mlflow.get("scenarios") or {}).get(key[1]) or {}
    ml_added = None
    if (ml.get("times") or {}).get("raw") and (ml.get("times") or {}).get("mlflow"):
        t = ml["times"]
        ml_added = (min(t["mlflow"]) - min(t["raw"])) * 1000
    cells = [
        f"{key[0]}: {key[1]}",
        report._giga(raw) if raw else "-",
        _pct(ict),
        _pct(ic),
        _pct(loc.get("icount_thread")),
        _pct(loc.get("icount")),
        tiny,
        f"{report._budget_text(r['budget'])}: {verdict}" if r.get("budget") else "-",
        _requests(res),
        _read_back(res),
        _ms(ml_added) if ml else "-",
    ]
    return "| " + " | ".join(cells) + " |"


SPARK_BUDGET = 0.05  # DESIGN.md section 6: under 5% added to a fit of 0.5 s or more


def _spark_line(name: str, res: dict[str, Any]) -> str:
    added, training = res["median_added_in_fit_s"], res["median_training_s"]
    share = added["full"] / training
    back = res.get("read_back") or {}
    cells = [
        f"spark: {name}",
        f"{training:.2f} s",
        f"{added['full'] * 1000:+.0f} ms ({share * 100:.1f}%)",
        f"{added['no_models'] * 1000:+.0f} ms",
        f"{added['raw'] * 1000:+.0f} ms",
        f"{statistics.median(res['background_s']['full']):.2f} s",
        f"< +{SPARK_BUDGET * 100:.0f}%: {'met' if share < SPARK_BUDGET else 'NOT met'}",
        _requests(res, "full"),
        f"{back.get('status')}, {back.get('params')} params, {back.get('metrics')} metrics, "
        f"artifacts: {' '.join(back.get('artifacts') or []) or 'none'}",
    ]
    return "| " + " | ".join(cells) + " |"


def spark_table(spark: dict[str, Any]) -> list[str]:
    """benchmarks/spark_bench.py's fits through the server: wall time added around the outermost
    ``Estimator._fit`` (medians), judged with the floor of no logging left in."""
    if spark.get("error"):
        return ["", f"Spark through the server failed: `{spark['error'][-300:]}`"]
    out = [
        "",
        "Spark (benchmarks/spark_bench.py through the server; wall time a fit adds around its "
        "training, medians; the budget is judged on the full-logging time, the floor left in):",
        "",
        "| scenario | training | added, full logging | added, log_models=False | added, no "
        "logging (floor) | background work after the fit (full) | budget (DESIGN 6) | "
        "training-thread requests (requests per fit by thread) | read back through the server |",
        "|" + "---|" * 9,
    ]
    return out + [_spark_line(name, res) for name, res in spark.items()]


def table(results: dict[str, Any], local_results: dict[str, Any] | None) -> str:
    rows = _rows(results)
    local = _rows(local_results) if local_results else {}
    mfits = (results.get("mlflow") or {}).get("fits") or {}
    out = [
        "| scenario | raw fit, instructions | added, training thread (server) | added, all "
        "threads (server) | training thread (local) | all threads (local) | tiny fit added, "
        "fastest of each | budget (DESIGN 6) | training-thread requests (requests per fit "
        "by thread) | read back through the server after the fits | MLflow via mlflow server, "
        "wall added |",
        "|" + "---|" * 11,
    ]
    for key, r in rows.items():
        res = results["fits"][key[0]]["scenarios"][key[1]]
        out.append(_line(key, r, res, local.get(key), mfits.get(key[0]) or {}))
    if results.get("spark"):
        out += spark_table(results["spark"])
    for run in results.get("runs") or []:
        out.append("")
        spark = run.get("spark_repeats")
        spark_only = spark and all(o.split(":")[0] == "spark" for o in run["only"])
        fits = [] if spark_only else [f"{run['repeats']} timed fits per mode"]
        fits += [f"{spark} Spark fits per mode"] if spark else []
        out.append(
            f"Run {run['date']} (`--only {','.join(run['only'])}`, {', '.join(fits)}, "
            f"nice {run['nice']}): load average {run['loadavg_start']} at the "
            f"start, {run['loadavg_end']} at the end; {run['total_s'] / 60:.0f} min in all, of "
            f"which instruction counts {(run.get('icount_wall_s') or 0) / 60:.0f} min."
        )
    return "\n".join(out)


def write_doc(results: dict[str, Any], doc: Path) -> None:
    local_file = BENCH_DIR / "results.json"
    local = json.loads(local_file.read_text()) if local_file.exists() else None
    start, end = "<!-- server-fit-table -->", "<!-- /server-fit-table -->"
    section = f"{start}\n{table(results, local)}\n{end}"
    text = doc.read_text()
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{HEAD}\n\n{section}\n"
    doc.write_text(text)
