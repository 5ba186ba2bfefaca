"""``autolog server --backend-store-uri postgresql://... --artifacts-destination s3://bucket/prefix``
started as a user starts it (the CLI, real PostgreSQL and SeaweedFS): an autologged fit's artifacts
land in the bucket under exactly the keys the run lists, and the model loads back through the
server; a bucket that does not exist is named in what the user sees."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

import autolog
from autolog.errors import AutologWarning
from autolog.server.testing import free_port


@contextlib.contextmanager
def cli_server(backend: str, destination: str, s3: Any) -> Iterator[str]:
    """``autolog server`` (the CLI itself) on a free loopback port; yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "autolog", "server", "--backend-store-uri", backend]
    cmd += ["--artifacts-destination", destination, "--port", str(port)]
    proc = subprocess.Popen(cmd, env={**os.environ, **s3.env()}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"autolog server exited with {proc.returncode}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "autolog server did not answer within 30 s"
            time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


def _files(client: Any, run_id: str, path: str | None = None) -> list[str]:
    out: list[str] = []
    for f in client.list_artifacts(run_id, path):
        out += _files(client, run_id, f.path) if f.is_dir else [f.path]
    return out


def _fit() -> tuple[Any, Any, str]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [0.5, 2.0], [2.5, 3.0]])
    y = np.array([0, 0, 1, 1, 0, 1])
    autolog.autolog(log_models=True)
    model = LogisticRegression().fit(X, y)
    run = autolog.last_active_run()
    assert run is not None
    return model, X, run.info.run_id


def test_an_autologged_fit_lands_in_the_bucket(postgres_server: Any, s3_server: Any) -> None:
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    with cli_server(postgres_server.new_database(), f"s3://{bucket}/team", s3_server) as url:
        autolog.set_tracking_uri(url)
        model, X, rid = _fit()
        client = autolog.Client()
        files = sorted(_files(client, rid))
        assert files == [
            "estimator.html",
            "model/MLmodel",
            "model/conda.yaml",
            "model/model.pkl",
            "model/python_env.yaml",
            "model/requirements.txt",
            "training_confusion_matrix.png",
            "training_precision_recall_curve.png",
            "training_roc_curve.png",
        ]
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        # exactly those objects, under <prefix>/<experiment>/<run>/artifacts/, nothing else
        assert sorted(o["Key"] for o in listed) == [f"team/0/{rid}/artifacts/{f}" for f in files]
        local = client.download_artifacts(rid, "model/MLmodel")
        body = s3.get_object(Bucket=bucket, Key=f"team/0/{rid}/artifacts/model/MLmodel")["Body"]
        assert body.read() == Path(local).read_bytes()
        loaded = autolog.load_model(f"runs:/{rid}/model")
        assert loaded.predict(X).tolist() == model.predict(X).tolist()


def test_a_missing_bucket_is_named_and_training_goes_on(
    postgres_server: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOLOG_TESTING", "0")  # what a user sees: a warning, not a raise
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    with cli_server(postgres_server.new_database(), f"s3://{bucket}/team", s3_server) as url:
        autolog.set_tracking_uri(url)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, X, rid = _fit()
            # the model's folder is uploaded in the background: its failure is reported once,
            # by the next call that waits for the background writes (here a read)
            run = autolog.get_run(rid)
        assert model.predict(X).tolist() == [0, 0, 1, 1, 0, 1]
        # two warnings, one per writer that met the missing bucket: the REST lane (the model's
        # folder) and sklearn's deferred logging (its HTML summary), each naming bucket and fix
        lane, deferred = [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]
        assert lane.startswith(f"autolog: sending to the tracking server at {url} in the back")
        assert deferred.startswith("autolog: logging for sklearn failed and was skipped;")
        for text in (lane, deferred):
            assert f"s3://{bucket}/team" in text and "NoSuchBucket" in text
            assert f"aws s3 mb s3://{bucket}" in text
        [model_record] = autolog.Client().search_logged_models([run.info.experiment_id])
        assert model_record.status == "FAILED"
        assert run.info.status == "FINISHED"
        assert run.data.params["solver"] == "lbfgs"
        assert run.data.metrics["training_accuracy_score"] == 1.0
        # nothing could be written, and the run says which artifacts are missing
        assert json.loads(run.data.tags["autolog.missing_artifacts"]) == [
            "model", "estimator.html", "training_confusion_matrix.png", "training_roc_curve.png",
            "training_precision_recall_curve.png",
        ]  # fmt: skip
        # the bucket was not created behind the user's back (SeaweedFS would on a PUT; AWS refuses)
        s3 = s3_server.client()
        with pytest.raises(ClientError, match="404"):
            s3.head_bucket(Bucket=bucket)
