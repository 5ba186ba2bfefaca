"""The per-fit benchmark through a tracking server (benchmarks/server_fits.py, issue 19): the
worker logs through `autolog server`, sees only runs/create on the training thread, reads the
run back through the server; the table judges as the local report does and lands between its
markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import server_fits_report
from benchmarks.server_fits import AutologServer
from benchmarks.worker import SERVER_STORE_VAR, SERVER_URL_VAR

ROOT = Path(__file__).resolve().parent.parent


def test_worker_fits_through_the_server_and_reads_the_run_back(tmp_path: Path) -> None:
    out = tmp_path / "fits.json"
    with AutologServer(tmp_path / "server") as server:
        env = {k: v for k, v in os.environ.items() if k != "AUTOLOG_TRACKING_URI"}
        env.update({SERVER_URL_VAR: server.url, SERVER_STORE_VAR: server.store_uri})
        env["PYTHONPATH"] = str(ROOT)
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.worker", "fits", "--module", "sklearn",
             "--only", "logistic_regression_iris", "--modes", "raw,autolog", "--repeats", "2",
             "--warmup", "1", "--small", "--out", str(out)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())["scenarios"]["logistic_regression_iris"]
    assert "error" not in res, res.get("error")
    assert res["runs_per_fit"]["autolog"] == [1, 1, 1]
    req = res["requests"]["autolog"]
    # the two timed fits: one request each on the training thread, runs/create
    assert req["fits"] == 2 and req["by_thread"]["MainThread"] == 2
    assert req["training_thread_other"] == [] and req["training_thread_per_fit"] == 1
    assert req["by_thread"]["autolog-rest-lane"] >= 2 * 10
    assert "raw" not in res["requests"]  # a raw fit sends nothing
    db, rest = res["logged"], res["read_back"]
    assert db["status"] == rest["status"] == "FINISHED"
    assert db["params"] == rest["params"] == 14  # LogisticRegression's get_params()
    assert db["metric_keys"] == rest["metrics"] > 0 and db["models"] == 1
    assert "model" in rest["artifacts"] and db["artifact_files"] > 0


def _scenario(raw: list[float], auto: list[float], thread_added: float = 0.002) -> dict:
    return {
        "times": {"raw": raw, "autolog": auto},
        "cpu": {"raw": raw, "autolog": [a + 0.01 for a in auto]},
        "thread": {"raw": raw, "autolog": [r + thread_added for r in raw]},
        "requests": {
            "autolog": {
                "fits": 3,
                "by_thread": {"MainThread": 3, "autolog-rest-lane": 42},
                "training_thread_other": [],
                "training_thread_per_fit": 1,
            }
        },
        "logged": {"run_id": "r1", "status": "FINISHED", "params": 3, "models": 1},
        "read_back": {"status": "FINISHED", "params": 3, "metrics": 2, "artifacts": ["model"]},
    }


def test_the_server_table_judges_like_the_local_report(tmp_path: Path) -> None:
    results = {
        "fits": {
            "sklearn": {
                "scenarios": {
                    "tiny": _scenario([0.010, 0.011, 0.012], [0.020, 0.021, 0.022]),
                    "forest": _scenario([1.0, 1.0, 1.0], [1.1, 1.1, 1.1]),
                }
            }
        },
        "icount": {
            "scenarios": {
                "sklearn:forest": {
                    "instructions": {"raw": 1_000_000_000, "autolog": 1_080_000_000},
                    "instructions_thread": {"raw": 1_000_000_000, "autolog": 1_030_000_000},
                }
            }
        },
        "runs": [
            {"date": "2026-12-05T17:00:00+00:00", "only": ["sklearn"], "repeats": 3,
             "nice": 19, "loadavg_start": [2.0], "loadavg_end": [3.0], "total_s": 600,
             "icount_wall_s": 300},
        ],
    }  # fmt: skip
    text = server_fits_report.table(results, None)
    assert (
        "| sklearn: forest | 1.000 G | +3.00% | +8.00% | - | - | - | < +5%: met | runs/create "
        "only (MainThread 1, autolog-rest-lane 14) | FINISHED, 3 params, 2 metrics, 1 model(s), "
        "artifacts: model | - |" in text
    )
    assert (
        "| sklearn: tiny | - | - | - | - | - | +10.0 ms wall to return, +2.0 ms training-thread "
        "CPU, +20.0 ms process CPU (local - process CPU) | < 30 ms: met |" in text
    )
    assert "load average [2.0] at the start, [3.0] at the end; 10 min in all" in text

    doc = tmp_path / "server.md"
    doc.write_text("# Server\n\nbefore\n")
    server_fits_report.write_doc(results, doc)
    server_fits_report.write_doc(results, doc)  # the second replaces the first
    written = doc.read_text()
    assert written.startswith("# Server\n\nbefore\n\n" + server_fits_report.HEAD)
    assert written.count("<!-- server-fit-table -->") == 1
    assert written.count("| sklearn: forest |") == 1


def _spark(full_added: float, training: float) -> dict:
    requests = {"fits": 3, "by_thread": {"MainThread": 3, "autolog-deferred": 45}}
    requests.update(training_thread_other=[], training_thread_per_fit=1)
    return {
        "requests": {"full": requests},
        "read_back": {"status": "FINISHED", "params": 15, "metrics": 5, "artifacts": ["model"]},
        "median_added_in_fit_s": {"raw": 0.004, "full": full_added, "no_models": 0.008},
        "median_training_s": training,
        "background_s": {"full": [1.0, 1.2, 0.9], "no_models": [0.5, 0.5, 0.5]},
    }


def test_spark_rows_are_judged_on_the_added_wall_time_and_merged_by_scenario() -> None:
    from benchmarks.server_fits import _merge

    run = {"date": "2026-12-06T23:19:06+00:00", "only": ["spark"], "repeats": 7, "nice": 0,
           "spark_repeats": 3, "loadavg_start": [3.8], "loadavg_end": [5.0], "total_s": 114}  # fmt: skip
    results = {
        "fits": {},
        "spark": {"lr": _spark(0.024, 3.1), "pipe": _spark(0.3, 4.5)},
        "runs": [run, {**run, "only": ["sklearn", "spark"]}],
    }
    text = server_fits_report.table(results, None)
    assert "(`--only spark`, 3 Spark fits per mode, nice 0)" in text
    assert "(`--only sklearn,spark`, 7 timed fits per mode, 3 Spark fits per mode, nice 0)" in text
    assert (
        "| spark: lr | 3.10 s | +24 ms (0.8%) | +8 ms | +4 ms | 1.00 s | < +5%: met | "
        "runs/create only (MainThread 1, autolog-deferred 15) | FINISHED, 15 params, 5 metrics, "
        "artifacts: model |" in text
    )
    assert "| spark: pipe | 4.50 s | +300 ms (6.7%) |" in text and "< +5%: NOT met" in text
    stored = {"fits": {}, "spark": {"lr": _spark(0.5, 3.0), "pipe": _spark(0.3, 4.5)}}
    merged = _merge(stored, {"fits": {}, "spark": {"lr": _spark(0.024, 3.1)}})
    assert merged["spark"]["lr"]["median_training_s"] == 3.1
    assert merged["spark"]["pipe"]["median_training_s"] == 4.5
    failed = _merge(merged, {"spark": {"error": "Traceback: no JVM"}})
    assert failed["spark"] == {"error": "Traceback: no JVM"}
    assert "Spark through the server failed: `Traceback: no JVM`" in server_fits_report.table(
        failed, None
    )
