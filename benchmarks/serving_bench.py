"""Scoring servers side by side: `autolog models serve` and `mlflow models serve`, same model, same
machine, same client.

    python -m benchmarks.serving_bench [--requests 2000] [--seconds 5] [--rounds 3] [--no-mlflow]

For a LogisticRegression (4 features) and a 200-tree XGBoost classifier (20 features), saved
once by autolog (MLflow loads autolog's directories, see tests/interop), both servers are
started with one worker each on free loopback ports and measured, in alternating rounds, for:

- start-up: seconds from the process start to the first answered ``GET /ping``;
- latency: one-row ``dataframe_split`` requests one after another on a keep-alive connection
  (p50 / p99 in ms, after a warm-up);
- throughput: 8 concurrent clients, each with its own keep-alive connection, for ``--seconds``.

The client is one asyncio loop writing prepared HTTP/1.1 requests on raw streams (uvloop when
installed), so it costs a few tens of microseconds a request and is not the bottleneck; each
server's first answer is checked against the model's own prediction. Each number is the median
over ``--rounds`` (start-up: one per round, the server restarted). MLflow runs from
``.mlflow-venv`` (full ``mlflow`` installed there by benchmarks.harness when missing).
Results: a table on stdout and ``benchmarks/serving_results.json``. Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 8


def _models(where: Path) -> dict[str, tuple[Path, dict]]:
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    from autolog.signature import infer_signature
    from integrations import sklearn, xgboost

    rng = np.random.default_rng(0)
    X4 = pd.DataFrame(rng.normal(size=(500, 4)), columns=[f"f{i}" for i in range(4)])
    lr = LogisticRegression().fit(X4, (X4["f0"] > 0).astype(int))
    sklearn.save_model(lr, where / "logreg", signature=infer_signature(X4, lr.predict(X4)))
    X20 = pd.DataFrame(rng.normal(size=(2000, 20)), columns=[f"f{i}" for i in range(20)])
    xg = xgb.XGBClassifier(n_estimators=200, max_depth=6).fit(X20, (X20["f0"] > 0).astype(int))
    xgboost.save_model(xg, where / "xgb200", signature=infer_signature(X20, xg.predict(X20)))
    row = {
        "logreg": {"dataframe_split": X4.head(1).to_dict(orient="split")},
        "xgb200": {"dataframe_split": X20.head(1).to_dict(orient="split")},
    }
    for body in row.values():
        del body["dataframe_split"]["index"]
    return {name: (where / name, row[name]) for name in ("logreg", "xgb200")}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(
    tool: str, model: Path, mlflow_python: str | None
) -> tuple[subprocess.Popen, str, float]:
    import httpx

    port = _port()
    env = dict(os.environ, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true", PYTHONPATH=str(ROOT))
    if tool == "autolog":
        cmd = [sys.executable, "-m", "autolog", "models", "serve", "-m", str(model),
               "--port", str(port), "--allow-pickle"]  # fmt: skip
        env["AUTOLOG_SERVE_LOG_LEVEL"] = "warning"
    else:
        assert mlflow_python
        env.pop("PYTHONPATH")
        # MLflow starts `uvicorn` by name through bash: its environment's bin must come first.
        env["PATH"] = f"{Path(mlflow_python).parent}{os.pathsep}{env.get('PATH', '')}"
        cmd = [mlflow_python, "-m", "mlflow", "models", "serve", "-m", str(model),
               "--port", str(port), "--env-manager", "local"]  # fmt: skip
    t0 = time.perf_counter()
    # A file, not a pipe: a server logging to a pipe nobody reads would stall once it is full.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the process, by the GC)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{tool} server exited: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/ping", timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - t0
        except httpx.TransportError:
            time.sleep(0.02)


class _Client:
    """One keep-alive HTTP/1.1 connection that POSTs one prepared request and reads the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> _Client:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def post(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        at = head.lower().index(b"content-length:") + 15
        length = int(head[at : head.index(b"\r\n", at)])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _request(url: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    host = url.removeprefix("http://")
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _latency(url: str, body: dict, n: int, expected: list) -> dict[str, float]:
    request = _request(url, body)
    client = await _Client.open(url)
    times = []
    try:
        status, answer = await client.post(request)
        assert status == 200 and json.loads(answer) == {"predictions": expected}, answer
        for i in range(n + n // 10):
            t0 = time.perf_counter()
            status, answer = await client.post(request)
            dt = time.perf_counter() - t0
            assert status == 200, answer
            if i >= n // 10:  # the first tenth warms up
                times.append(dt * 1000)
    finally:
        client.close()
    times.sort()
    return {"p50_ms": statistics.median(times), "p99_ms": times[int(len(times) * 0.99) - 1]}


async def _throughput(url: str, body: dict, seconds: float) -> float:
    request = _request(url, body)
    clients = [await _Client.open(url) for _ in range(CLIENTS)]
    counts = [0] * CLIENTS
    stop_at = time.perf_counter() + seconds

    async def run(i: int) -> None:
        while time.perf_counter() < stop_at:
            status, answer = await clients[i].post(request)
            assert status == 200, answer
            counts[i] += 1

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(run(i) for i in range(CLIENTS)))
    finally:
        for c in clients:
            c.close()
    return sum(counts) / (time.perf_counter() - t0)


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _expected(path: Path, body: dict) -> list:
    import pandas as pd

    from autolog import serving

    split = body["dataframe_split"]
    model = serving.load(str(path), allow_pickle=True)
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    return json.loads(serving.predictions_json(model.predict(frame)))["predictions"]


def _measure_model(
    name: str, path: Path, body: dict, tools: list[str], mlflow_python: str | None, args: Any
) -> dict[str, dict]:
    """Median over rounds of start-up, latency and throughput for each tool on one model."""
    expected = _expected(path, body)
    samples: dict[str, list[dict]] = {tool: [] for tool in tools}
    for _ in range(args.rounds):
        for tool in tools:
            proc, url, startup = _start(tool, path, mlflow_python)
            try:
                res = {"startup_s": startup, **_run(_latency(url, body, args.requests, expected))}
                res["throughput_rps"] = _run(_throughput(url, body, args.seconds))
            finally:
                proc.terminate()
                proc.wait(30)
            samples[tool].append(res)
            print(f"{name:7} {tool:8} " + "  ".join(f"{k}={v:.3f}" for k, v in res.items()))
    return {
        tool: {k: statistics.median(r[k] for r in rs) for k in rs[0]} | {"rounds": rs}
        for tool, rs in samples.items()
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000, help="sequential requests for latency")
    p.add_argument("--seconds", type=float, default=5.0, help="throughput window")
    p.add_argument("--rounds", type=int, default=3, help="rounds; each number is their median")
    p.add_argument("--no-mlflow", action="store_true", help="measure autolog only")
    args = p.parse_args(argv)
    mlflow_python = None
    if not args.no_mlflow:
        from benchmarks.harness import ensure_mlflow_venv

        mlflow_python, why = ensure_mlflow_venv()
        print(f"MLflow: {why}", file=sys.stderr)
    tools = ["autolog"] + (["mlflow"] if mlflow_python else [])
    results: dict = {
        "machine": f"{os.cpu_count()} CPUs",
        "clients": CLIENTS,
        "rounds": args.rounds,
        "loadavg_before": _loadavg(),
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, body) in _models(Path(tmp)).items():
            for tool, res in _measure_model(name, path, body, tools, mlflow_python, args).items():
                results["runs"][f"{name}/{tool}"] = res
    results["loadavg_after"] = _loadavg()
    _report(results, tools)
    (ROOT / "benchmarks" / "serving_results.json").write_text(json.dumps(results, indent=2))
    return results


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _report(results: dict, tools: list[str]) -> None:
    print(f"\nload average before {results['loadavg_before']}, after {results['loadavg_after']}")
    print("\n| model | server | start-up to /ping, s | p50, ms | p99, ms | 8 clients, req/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for key, r in results["runs"].items():
        model, tool = key.split("/")
        print(
            f"| {model} | {tool} | {r['startup_s']:.2f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['throughput_rps']:.0f} |"
        )
    if "mlflow" in tools:
        for model in ("logreg", "xgb200"):
            a, m = results["runs"][f"{model}/autolog"], results["runs"][f"{model}/mlflow"]
            print(
                f"{model}: throughput x{a['throughput_rps'] / m['throughput_rps']:.1f} of MLflow's"
            )


if __name__ == "__main__":
    main()
