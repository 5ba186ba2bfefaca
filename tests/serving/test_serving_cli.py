"""`autolog models serve | predict | generate-dockerfile` as processes: batch scoring, memory,
SIGTERM, the virtualenv env manager and the Docker build context."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from serving_helpers import cli_env, free_port, start_cli_server, stop

import autolog
from autolog import serving, serving_env
from autolog.errors import AutologError
from autolog.signature import infer_signature


def _logreg(n_features: int = 4):
    from sklearn.linear_model import LogisticRegression

    from integrations import sklearn

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(200, n_features)), columns=[f"f{i}" for i in range(n_features)]
    )
    y = (X["f0"] > 0).astype(int)
    m = LogisticRegression().fit(X, y)
    info = sklearn.log_model(m, name="model", signature=infer_signature(X, m.predict(X)))
    autolog.end_run()
    return info.model_uri, X


def _cli(args, tracking_dir, stdin=None, wrapper=None):
    cmd = [sys.executable, "-m", "autolog", *args]
    if wrapper:
        cmd = [sys.executable, "-c", wrapper, *args]
    return subprocess.run(
        cmd, env=cli_env(tracking_dir), input=stdin, capture_output=True, timeout=600
    )


def test_predict_csv_json_jsonl_and_stdin(tmp_path, tracking_dir):
    uri, X = _logreg()
    expected = autolog.load_model(uri).predict(X).tolist()
    X.to_csv(tmp_path / "in.csv", index=False)
    X.to_json(tmp_path / "in.jsonl", orient="records", lines=True)
    (tmp_path / "in.json").write_text(json.dumps({"dataframe_split": X.to_dict(orient="split")}))
    for src in ("in.csv", "in.jsonl", "in.json"):
        out = tmp_path / f"out-{src}.csv"
        r = _cli(["models", "predict", "-m", uri, "-i", str(tmp_path / src), "-o", str(out),
                  "--chunk-rows", "64"], tracking_dir)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert pd.read_csv(out)["prediction"].tolist() == expected, src
    r = _cli(["models", "predict", "-m", uri, "-i", "-", "-o", "-", "--output-format", "json"],
             tracking_dir, stdin=X.to_csv(index=False).encode())  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"predictions": expected}


def test_serve_and_predict_resolve_models_uris_through_a_tracking_server(tmp_path):
    """`models:/name@alias` and `models:/m-<id>` resolved against `autolog server` (the
    tracking URI an http:// one): the served and the batch predictions are load_model's."""
    from sklearn.linear_model import LogisticRegression

    from autolog.server.testing import LocalServer
    from integrations import sklearn

    with LocalServer(tmp_path / "srv") as server:
        autolog.set_tracking_uri(server.url)
        rng = np.random.default_rng(1)
        X = pd.DataFrame(rng.normal(size=(50, 3)), columns=["a", "b", "c"])
        m = LogisticRegression().fit(X, (X["a"] + X["c"] > 0).astype(int))
        info = sklearn.log_model(m, name="model", signature=infer_signature(X, m.predict(X)))
        autolog.end_run()
        version = autolog.register_model(info.model_uri, "churn").version
        autolog.MlflowClient().set_registered_model_alias("churn", "champion", version)
        expected = m.predict(X).tolist()
        assert autolog.load_model("models:/churn@champion").predict(X).tolist() == expected
        split = X.to_dict(orient="split")
        for uri in ("models:/churn@champion", f"models:/{info.model_id}"):
            proc, url = start_cli_server(["-m", uri], cli_env(server.url))
            try:
                r = httpx.post(url + "/invocations", json={"dataframe_split": split})
                assert r.json() == {"predictions": expected}, uri
            finally:
                stop(proc)
        r = _cli(["models", "predict", "-m", "models:/churn@champion", "-i", "-", "-o", "-",
                  "--output-format", "json"], server.url, stdin=X.to_csv(index=False).encode())  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"predictions": expected}


def test_predict_names_the_bad_column_and_rows(tmp_path, tracking_dir):
    uri, X = _logreg()
    bad = X.astype({"f2": object})
    bad.loc[150, "f2"] = "oops"
    bad.to_csv(tmp_path / "in.csv", index=False)
    r = _cli(["models", "predict", "-m", uri, "-i", str(tmp_path / "in.csv"), "-o",
              str(tmp_path / "out.csv"), "--chunk-rows", "100"], tracking_dir)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "Error: Rows 100-199: Incompatible input type for column 'f2': expected double, found "
        "str. Only safe widening casts are applied (int32->int64, float32->float64, int->double)."
    )
    r = _cli(["models", "predict", "-m", uri, "-i", "x.txt"], tracking_dir)
    assert r.returncode == 2
    assert "Cannot tell the input format of 'x.txt'" in r.stderr.decode()


# VmHWM, the peak RSS of this process image: ru_maxrss would carry over pytest's own peak
# through fork and exec.
_MAXRSS = (
    "import atexit, re, sys\n"
    "def hwm():\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
    "atexit.register(hwm)\n"
    "sys.argv[0] = 'autolog'\n"
    "from autolog.cli import main\n"
    "main()\n"
)


def _peak_mb(args, tracking_dir) -> float:
    r = _cli(args, tracking_dir, wrapper=_MAXRSS)
    assert r.returncode == 0, r.stderr
    kb = re.search(rb"MAXRSS (\d+)", r.stderr)
    assert kb is not None, r.stderr
    return int(kb.group(1)) / 1024


def test_predict_on_a_million_rows_stays_within_a_memory_bound(tmp_path, tracking_dir):
    uri, _ = _logreg()
    rng = np.random.default_rng(3)
    big = pd.DataFrame(rng.normal(size=(1_000_000, 4)), columns=["f0", "f1", "f2", "f3"])
    big.to_csv(tmp_path / "big.csv", index=False, float_format="%.4f")
    big.head(10_000).to_csv(tmp_path / "small.csv", index=False, float_format="%.4f")
    del big
    base = ["models", "predict", "-m", uri, "--no-progress", "--chunk-rows", "10000"]
    small = _peak_mb([*base, "-i", str(tmp_path / "small.csv"), "-o", str(tmp_path / "s.csv")],
                     tracking_dir)  # fmt: skip
    chunked = _peak_mb([*base, "-i", str(tmp_path / "big.csv"), "-o", str(tmp_path / "b.csv")],
                       tracking_dir)  # fmt: skip
    assert len(pd.read_csv(tmp_path / "b.csv")) == 1_000_000
    # The bound: a million rows cost at most 30 MB more than ten thousand (same chunk size);
    # reading the file whole (one chunk) costs far more, so the bound does measure chunking.
    assert chunked - small < 30, (small, chunked)
    whole = _peak_mb([*base[:-1], "1000000", "-i", str(tmp_path / "big.csv"), "-o",
                      str(tmp_path / "w.csv")], tracking_dir)  # fmt: skip
    assert whole - small > 60, (small, whole)


def test_the_serving_process_freezes_the_loaded_model_heap(tracking_dir):
    """`autolog models serve`'s workers freeze what loading the model allocated (no full
    collection walks sklearn, pandas and scipy again); serving.app() alone freezes nothing."""
    uri, _ = _logreg()
    code = (
        "import gc, os; from autolog import serving; "
        "serving.app(os.environ['AUTOLOG_SERVE_MODEL_URI']); print(gc.get_freeze_count()); "
        "serving._app_from_env(); print(gc.get_freeze_count())"
    )
    env = {**cli_env(tracking_dir), "AUTOLOG_SERVE_MODEL_URI": uri, "AUTOLOG_SERVE_SETTINGS": "{}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    unfrozen, frozen = map(int, out.stdout.split())
    assert unfrozen == 0 and frozen > 50_000


def test_sigterm_lets_the_request_in_flight_finish(tracking_dir):
    class Slow:
        def predict(self, data, params=None):
            time.sleep(1.5)
            return data["x"].to_numpy()

    df = pd.DataFrame({"x": [1.0]})
    sig = infer_signature(df, np.array([1.0]))
    uri = autolog.models.log_model("python_function", Slow(), "model", signature=sig).model_uri
    autolog.end_run()
    proc, url = start_cli_server(["-m", uri], cli_env(tracking_dir))
    answers = []
    body = {"dataframe_records": [{"x": 2.0}]}
    t = threading.Thread(
        target=lambda: answers.append(httpx.post(url + "/invocations", json=body, timeout=30))
    )
    t.start()
    time.sleep(0.5)
    err = stop(proc)  # SIGTERM while the prediction sleeps
    t.join(30)
    # uvicorn finishes the request, shuts down, then re-raises SIGTERM for the supervisor's sake
    assert proc.returncode == -signal.SIGTERM, err
    assert "Finished server process" in err
    assert answers[0].status_code == 200
    assert answers[0].json() == {"predictions": [2.0]}


def test_local_env_warns_when_installed_versions_differ(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from integrations import sklearn

    path = tmp_path / "m"
    sklearn.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)
    reqs = (path / "requirements.txt").read_text()
    (path / "requirements.txt").write_text(
        re.sub(r"scikit-learn==\S+", "scikit-learn==1.0.0", reqs)
    )
    import sklearn as sk

    with pytest.warns(UserWarning, match=rf"scikit-learn==1\.0\.0 \(installed: {sk.__version__}\)"):
        serving.app(str(path), allow_pickle=True)


# ---- virtualenv and Docker: one environment, built once per requirements and cached -----


def test_virtualenv_env_manager_serves_from_the_models_own_environment(tracking_dir):
    uri, X = _logreg()
    expected = autolog.load_model(uri).predict(X.head(3)).tolist()
    model_dir = autolog.models.resolve_model_uri(uri)
    want = serving_env.cache_root() / serving_env.env_key(
        serving_env.model_requirements(model_dir) + serving_env.serve_requirements()
    )
    proc, url = start_cli_server(["-m", uri, "--env-manager", "virtualenv"], cli_env(tracking_dir))
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].decode() == str(want / "bin" / "python")
        split = X.head(3).to_dict(orient="split")
        r = httpx.post(url + "/invocations", json={"dataframe_split": split})
        assert r.json() == {"predictions": expected}
    finally:
        stop(proc)
    pip_freeze = subprocess.run(
        [str(want / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True
    ).stdout
    import sklearn as sk

    assert f"scikit-learn=={sk.__version__}" in pip_freeze.splitlines()
    assert not any(
        line.startswith(("autolog", "torch", "xgboost")) for line in pip_freeze.splitlines()
    )


def test_a_virtualenv_is_built_once_per_requirements_and_a_failed_build_is_not_reused(
    tmp_path, capsys, monkeypatch
):
    """The cache: the second call with the same requirements runs no pip and rewrites nothing;
    other requirements get another folder; a build pip refused is not marked ready, so the next
    call builds again instead of serving from a broken environment."""
    first = serving_env.ensure_virtualenv([], cache=tmp_path)
    assert first == tmp_path / serving_env.env_key([]) / "bin" / "python" and first.is_file()
    assert "building a virtualenv" in capsys.readouterr().err
    ready = first.parent.parent / ".ready"
    stamp = ready.stat().st_mtime_ns

    def no_pip(*args, **kw):
        raise AssertionError(f"pip ran for a cached environment: {args}")

    with monkeypatch.context() as m:
        m.setattr(serving_env.subprocess, "run", no_pip)
        assert serving_env.ensure_virtualenv([], cache=tmp_path) == first
    assert capsys.readouterr().err == ""
    assert ready.stat().st_mtime_ns == stamp
    bad = ["not a requirement!!"]
    assert serving_env.env_key(bad) != serving_env.env_key([])
    for _ in range(2):  # the second attempt builds again: the first left no .ready
        with pytest.raises(AutologError, match="pip could not install") as err:
            serving_env.ensure_virtualenv(bad, cache=tmp_path)
        assert "not a requirement!!" in str(err.value)
        assert "building a virtualenv" in capsys.readouterr().err
        assert not (tmp_path / serving_env.env_key(bad) / ".ready").exists()


def test_generated_docker_context_loads_in_a_fresh_virtualenv_and_its_cmd_answers(
    tmp_path, tracking_dir
):
    uri, X = _logreg()
    ctx = tmp_path / "ctx"
    r = _cli(["models", "generate-dockerfile", "-m", uri, "-d", str(ctx)], tracking_dir)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in ctx.iterdir()) == [
        "Dockerfile",
        "model",
        "requirements.txt",
        "src",
    ]
    assert (ctx / "model" / "MLmodel").is_file() and (
        ctx / "src" / "autolog" / "serving.py"
    ).is_file()
    dockerfile = (ctx / "Dockerfile").read_text()
    import sklearn as sk

    reqs = (ctx / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={sk.__version__}" in reqs
    workdir = re.search(r"^WORKDIR (\S+)$", dockerfile, re.M).group(1)
    pythonpath = re.search(r"^ENV PYTHONPATH=(\S+)$", dockerfile, re.M).group(1)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd[:3] == ["python", "-m", "autolog"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[cmd.index("--port") + 1] == "8080"
    # The image's layout is the context's: WORKDIR maps to the context folder.
    python = serving_env.ensure_virtualenv(reqs)
    port = free_port()
    argv = [str(python), *cmd[1:]]
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath.replace(workdir, str(ctx)),
           "HOME": str(tmp_path)}  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ctx, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(url + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        records = X.head(2).to_dict(orient="records")
        r = httpx.post(url + "/invocations", json={"dataframe_records": records})
        assert r.json() == {"predictions": autolog.load_model(uri).predict(X.head(2)).tolist()}
    finally:
        stop(proc)


def test_build_docker_without_a_daemon_says_so(tracking_dir):
    uri, _ = _logreg()
    r = _cli(["models", "build-docker", "-m", uri, "-n", "churn:1"], tracking_dir)
    assert r.returncode == 2
    err = r.stderr.decode()
    # this machine has a docker command but no daemon; either way the message says what to do
    assert err.startswith(
        ("Error: No `docker` command", "Error: The Docker daemon is not reachable")
    )
    context = re.search(r"The build context is ready in (\S+?):", err).group(1)
    assert (Path(context) / "Dockerfile").is_file()
    assert err.rstrip().endswith(f"`docker build -t churn:1 {context}`.")
