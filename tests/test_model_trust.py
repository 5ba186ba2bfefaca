"""Loading never unpickles silently; MLmodel paths stay inside the model; saves are atomic."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import autolog
from autolog import models, tracking
from autolog.errors import ModelError, ModelLoadError

REPO = Path(__file__).resolve().parents[1]
OPT_IN = "allow_pickle=True"


@pytest.fixture(autouse=True)
def no_opt_in_from_the_environment(monkeypatch):
    monkeypatch.delenv("AUTOLOG_ALLOW_PICKLE", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def iris_model(iris):
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


class _Payload:
    """What an attacker would put in a pickle: unpickling it creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(file: Path, marker: Path) -> None:
    file.write_bytes(pickle.dumps(_Payload(marker)))


def _mlmodel(path: Path) -> dict:
    return yaml.safe_load((path / "MLmodel").read_text())


def _write_mlmodel(path: Path, meta: dict) -> None:
    (path / "MLmodel").write_text(yaml.safe_dump(meta))


# -- digests --------------------------------------------------------------------------------


def test_log_model_records_the_digest_of_every_file(store, iris, iris_model):
    info = models.log_model("python_function", iris_model, input_example=iris[0][:3])
    files = sorted(p for p in info.path.rglob("*") if p.is_file())
    expected = {
        p.relative_to(info.path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
    }
    assert sorted(expected) == [
        "MLmodel",
        "conda.yaml",
        "input_example.json",
        "model.pkl",
        "python_env.yaml",
        "requirements.txt",
    ]
    assert store.model_file_digests(info.run_id, "model") == expected
    assert store.model_file_digests(info.run_id, "other") is None


def test_unchanged_model_loads_through_runs_and_models_uris(iris, iris_model):
    X = iris[0]
    info = models.log_model("python_function", iris_model, registered_model_name="iris")
    autolog.Client().set_registered_model_alias("iris", "champion", 1)
    for uri in (info.model_uri, "models:/iris/1", "models:/iris@champion", "models:/iris/latest"):
        np.testing.assert_array_equal(autolog.load_model(uri).predict(X), iris_model.predict(X))
    from integrations import sklearn as skl

    assert skl.load_model("models:/iris@champion").coef_.tolist() == iris_model.coef_.tolist()


def test_pickle_swapped_after_logging_is_refused(tmp_path, iris_model):
    info = models.log_model("python_function", iris_model, registered_model_name="iris")
    autolog.Client().set_registered_model_alias("iris", "champion", 1)
    marker = tmp_path / "pwned"
    _plant(info.path / "model.pkl", marker)
    from integrations import sklearn as skl

    loads = [
        lambda: autolog.load_model(info.model_uri),
        lambda: autolog.load_model("models:/iris/1"),
        lambda: autolog.load_model("models:/iris@champion"),
        lambda: skl.load_model(info.model_uri),
        # an opt-in does not cover a file that differs from what was logged
        lambda: autolog.load_model(info.model_uri, allow_pickle=True),
    ]
    for load in loads:
        with pytest.raises(ModelLoadError) as e:
            load()
        assert f"{info.path / 'model.pkl'} changed after logging" in str(e.value)
        assert not marker.exists()
    # The payload is real: unpickled by path with the explicit opt-in, it creates the marker.
    autolog.load_model(info.path, allow_pickle=True).unwrap_python_model().close()
    assert marker.exists()


def test_mlmodel_changed_after_logging_is_refused(iris_model):
    info = models.log_model("python_function", iris_model)
    meta = _mlmodel(info.path)
    meta["flavors"]["python_function"]["serialization_format"] = "pickle"
    _write_mlmodel(info.path, meta)
    with pytest.raises(ModelLoadError, match=r"MLmodel changed after logging"):
        autolog.load_model(info.model_uri)


def test_model_logged_without_digests_needs_the_opt_in(store, iris, iris_model):
    """A model logged by an autolog that recorded no digests (schema < 4)."""
    info = models.log_model("python_function", iris_model)
    store.conn.execute("DELETE FROM model_files")
    with pytest.raises(ModelLoadError) as e:
        autolog.load_model(info.model_uri)
    assert f"no digest was recorded for {info.model_uri}" in str(e.value)
    assert OPT_IN in str(e.value)
    loaded = autolog.load_model(info.model_uri, allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(iris[0]), iris_model.predict(iris[0]))


# -- plain paths and the opt-ins ------------------------------------------------------------


def test_plain_path_pickle_is_refused_without_the_opt_in(tmp_path, monkeypatch, iris, iris_model):
    X = iris[0]
    models.save_model("python_function", iris_model, tmp_path / "m")
    with pytest.raises(ModelLoadError) as e:
        autolog.load_model(tmp_path / "m")
    message = str(e.value)
    assert str(tmp_path / "m" / "model.pkl") in message
    assert "load_model(..., allow_pickle=True)" in message
    assert "AUTOLOG_ALLOW_PICKLE=1" in message
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true" in message

    loaded = autolog.load_model(tmp_path / "m", allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(X), iris_model.predict(X))
    for name, value in (
        ("AUTOLOG_ALLOW_PICKLE", "1"),
        ("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true"),
    ):
        monkeypatch.setenv(name, value)
        assert (
            autolog.load_model(tmp_path / "m").predict(X).tolist() == iris_model.predict(X).tolist()
        )
        with pytest.raises(ModelLoadError, match="refusing to unpickle"):
            autolog.load_model(tmp_path / "m", allow_pickle=False)  # the argument wins
        monkeypatch.delenv(name)
    monkeypatch.setenv("AUTOLOG_ALLOW_PICKLE", "maybe")
    with pytest.raises(ModelLoadError, match=r"AUTOLOG_ALLOW_PICKLE='maybe' is not understood"):
        autolog.load_model(tmp_path / "m")


def test_malicious_plain_path_pickle_runs_nothing(tmp_path, iris_model):
    models.save_model("python_function", iris_model, tmp_path / "m")
    marker = tmp_path / "pwned"
    _plant(tmp_path / "m" / "model.pkl", marker)
    from integrations import sklearn as skl

    for load in (autolog.load_model, skl.load_model, models._load_pyfunc):
        with pytest.raises(ModelLoadError, match="refusing to unpickle"):
            load(str(tmp_path / "m"))
    assert not marker.exists()


def test_mlflow_pyfunc_hook_honours_mlflows_variable(tmp_path, monkeypatch, iris, iris_model):
    models.save_model("python_function", iris_model, tmp_path / "m")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with pytest.raises(ModelLoadError, match="refusing to unpickle"):
        models._load_pyfunc(str(tmp_path / "m"))
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    wrapper = models._load_pyfunc(str(tmp_path / "m"))
    assert wrapper.predict(iris[0]).tolist() == iris_model.predict(iris[0]).tolist()


def test_opt_in_of_one_thread_does_not_leak_into_another(tmp_path, iris_model):
    models.save_model("python_function", iris_model, tmp_path / "m")
    inside, other_done = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    class Waiting(models.PickledModelFlavor):
        name = "waiting_pickle"

        def load_native(self, path, conf):
            inside.set()
            other_done.wait(10)
            return super().load_native(path, conf)

    flavor = Waiting()

    def opted_in():
        results["a"] = models.load_flavor_model(tmp_path / "m", flavor, allow_pickle=True)

    def plain():
        inside.wait(10)
        try:
            models.load_flavor_model(tmp_path / "m", models.PICKLED_FLAVOR)
        except ModelLoadError as e:
            results["b"] = e
        other_done.set()

    meta = _mlmodel(tmp_path / "m")
    meta["flavors"]["waiting_pickle"] = meta["flavors"]["python_function"]
    _write_mlmodel(tmp_path / "m", meta)
    threads = [threading.Thread(target=opted_in), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert isinstance(results["b"], ModelLoadError)
    assert "refusing to unpickle" in str(results["b"])
    assert results["a"].coef_.tolist() == iris_model.coef_.tolist()


# -- formats that need no pickle, and skops -------------------------------------------------


class Doubler(BaseEstimator, TransformerMixin):
    """A user's class: skops does not trust it by default."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return 2 * np.asarray(X)


def test_skops_loads_trusted_types_by_path_and_gates_the_others(tmp_path, monkeypatch, iris):
    from integrations import sklearn as skl

    X, y = iris
    plain = LogisticRegression(max_iter=500).fit(X, y)
    skl.save_model(plain, tmp_path / "plain", serialization_format="skops")
    np.testing.assert_array_equal(skl.load_model(tmp_path / "plain").predict(X), plain.predict(X))

    custom = make_pipeline(Doubler(), LogisticRegression(max_iter=500)).fit(X, y)
    skl.save_model(custom, tmp_path / "custom", serialization_format="skops")
    with pytest.raises(ModelLoadError) as e:
        skl.load_model(tmp_path / "custom")
    assert f"skops types it does not trust ['{Doubler.__module__}.Doubler']" in str(e.value)
    assert str(tmp_path / "custom" / "model.skops") in str(e.value)
    # MLmodel's list of types to trust is not what decides: it is whoever wrote the directory
    meta = _mlmodel(tmp_path / "custom")
    assert meta["flavors"]["sklearn"]["skops_trusted_types"] == [f"{Doubler.__module__}.Doubler"]
    with pytest.raises(ModelLoadError, match="skops types it does not trust"):
        autolog.load_model(tmp_path / "custom")
    loaded = skl.load_model(tmp_path / "custom", allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(X), custom.predict(X))

    info = skl.log_model(custom, "model", serialization_format="skops")
    np.testing.assert_array_equal(skl.load_model(info.model_uri).predict(X), custom.predict(X))


def test_statsmodels_goes_through_the_gate(tmp_path):
    import statsmodels.api as sm

    from integrations import statsmodels as ism

    rng = np.random.default_rng(0)
    X = sm.add_constant(rng.normal(size=(40, 2)))
    results = sm.OLS(X @ [1.0, 2.0, -1.0] + rng.normal(scale=0.1, size=40), X).fit()
    info = ism.log_model(results, "model")
    np.testing.assert_allclose(ism.load_model(info.model_uri).params, results.params)
    ism.save_model(results, tmp_path / "m")
    with pytest.raises(ModelLoadError, match="refusing to unpickle a pickle"):
        ism.load_model(tmp_path / "m")
    np.testing.assert_allclose(
        ism.load_model(tmp_path / "m", allow_pickle=True).params, results.params
    )
    marker = tmp_path / "pwned"
    _plant(info.path / "model.statsmodels", marker)
    with pytest.raises(ModelLoadError, match="changed after logging"):
        autolog.load_model(info.model_uri)
    assert not marker.exists()


def test_torch_pickled_module_goes_through_the_gate(tmp_path):
    import torch

    from integrations import torch as itorch

    # The layout MLflow's pytorch flavor writes: the whole module pickled in data/model.pth.
    d = tmp_path / "mlflow_torch"
    (d / "data").mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save(_Payload(marker), d / "data" / "model.pth")
    meta = {
        "flavors": {
            "python_function": {"loader_module": "mlflow.pytorch", "data": "data"},
            "pytorch": {"model_data": "data", "pytorch_version": str(torch.__version__)},
        }
    }
    _write_mlmodel(d, meta)
    with pytest.raises(ModelLoadError, match="refusing to unpickle a pickled torch module"):
        itorch.load_model(d)
    assert not marker.exists()

    # Built while autolog was off: no constructor recipe, so the module is pickled as well.
    net = torch.nn.Linear(3, 1)
    info = itorch.log_model(net, "model")
    assert _mlmodel(info.path)["flavors"]["pytorch"]["model_format"] == "state_dict+pickle"
    x = torch.ones(2, 3)
    with torch.no_grad():
        expected = net(x)
        assert torch.equal(itorch.load_model(info.model_uri)(x), expected)
        with pytest.raises(ModelLoadError, match="refusing to unpickle a pickled torch module"):
            itorch.load_model(info.path)
        # weights into a module the caller built: weights_only, no pickle, loads by path
        assert torch.equal(itorch.load_model(info.path, model=torch.nn.Linear(3, 1))(x), expected)
        _plant(info.path / "data" / "model.pth", marker)
        with pytest.raises(ModelLoadError, match="model.pth changed after logging"):
            itorch.load_model(info.model_uri)
    assert not marker.exists()


# -- paths an MLmodel names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    ["dotdot", "absolute", "model_path_up", "link_out", "example_out", "env_out"],
)
def test_paths_outside_the_model_directory_are_refused(tmp_path, iris_model, damage):
    d = tmp_path / "m"
    models.save_model("python_function", iris_model, d)
    outside = tmp_path / "x.pkl"
    outside.write_bytes((d / "model.pkl").read_bytes())
    meta = _mlmodel(d)
    pyfunc, sk = meta["flavors"]["python_function"], meta["flavors"]["sklearn"]
    expected = "outside the model directory"
    if damage == "dotdot":
        pyfunc["model_path"] = sk["pickled_model"] = "../x.pkl"
    elif damage == "absolute":
        pyfunc["model_path"] = sk["pickled_model"] = str(outside)
        expected = "names the absolute path"
    elif damage == "model_path_up":
        pyfunc["model_path"] = "../.."
    elif damage == "link_out":
        (d / "model.pkl").unlink()
        (d / "model.pkl").symlink_to(outside)
    elif damage == "example_out":
        meta["saved_input_example_info"] = {"artifact_path": "../../etc/passwd", "type": "ndarray"}
    elif damage == "env_out":
        pyfunc["env"] = {"virtualenv": "../python_env.yaml"}
    _write_mlmodel(d, meta)
    with pytest.raises(ModelLoadError, match=expected) as e:
        autolog.load_model(d, allow_pickle=True)
    assert str(d) in str(e.value)


def test_link_inside_the_model_directory_is_fine(tmp_path, iris, iris_model):
    d = tmp_path / "m"
    models.save_model("python_function", iris_model, d)
    (d / "model.pkl").rename(d / "real.pkl")
    (d / "model.pkl").symlink_to(d / "real.pkl")
    loaded = autolog.load_model(d, allow_pickle=True)
    assert loaded.predict(iris[0]).tolist() == iris_model.predict(iris[0]).tolist()


# -- atomic saves ---------------------------------------------------------------------------

_SLOW_SAVE = """
import sys, time
from pathlib import Path
import autolog
from autolog import models

class SlowFlavor(models.Flavor):
    name = "slow_blob"

    def save_native(self, model, path):
        with open(path / "blob.bin", "wb") as f:
            for i in range(10_000):  # 10 GB at most: killed long before
                f.write(model)
                f.flush()
                if i == 8:
                    Path(sys.argv[2]).write_text("writing")
                time.sleep(0.01)
        return {"data": "blob.bin"}

autolog.set_tracking_uri(sys.argv[1])
with autolog.start_run() as run:
    print(run.info.run_id, flush=True)
    models.log_model(models.register_flavor(SlowFlavor()), b"x" * (1 << 20), "model")
"""


class _Blob(models.Flavor):
    name = "slow_blob"

    def save_native(self, model, path):
        (path / "blob.bin").write_bytes(model)
        return {"data": "blob.bin"}

    def load_native(self, path, conf):
        return (path / conf["data"]).read_bytes()


def test_killed_save_leaves_no_half_written_model(tmp_path, tracking_dir, store):
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVE, str(tracking_dir), str(ready)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        run_id = proc.stdout.readline().strip()
        for _ in range(3000):
            if ready.exists() or proc.poll() is not None:
                break
            threading.Event().wait(0.01)
        assert ready.exists(), "the child never started writing the model"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    run_dir = store.run_artifact_base(run_id)
    assert not (run_dir / "model").exists()
    assert store.list_artifacts(run_id) == []
    partials = [p.name for p in run_dir.parent.iterdir() if p.name.startswith(".autolog-partial")]
    assert len(partials) == 1 and (run_dir.parent / partials[0] / "blob.bin").stat().st_size > (
        8 << 20
    )

    info = models.log_model(_Blob(), b"retry", "model", run_id=run_id)
    assert info.path == run_dir / "model"
    assert sorted(p.name for p in info.path.iterdir()) == [
        "MLmodel",
        "blob.bin",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
    ]
    assert models.load_flavor_model(info.model_uri, _Blob()) == b"retry"
    assert [p.name for p in run_dir.parent.iterdir() if p.name.startswith(".autolog")] == []
    assert [a.path for a in store.list_artifacts(run_id)] == ["model"]


def test_failed_save_leaves_nothing(tmp_path, iris_model):
    class Failing(models.Flavor):
        name = "failing"

        def save_native(self, model, path):
            (path / "half.bin").write_bytes(b"half")
            raise RuntimeError("disk full")

    with autolog.start_run() as run, pytest.raises(Exception, match="disk full"):
        models.log_model(Failing(), iris_model, "model")
    base = tracking._store().run_artifact_base(run.info.run_id)
    assert not (base / "model").exists()
    assert [p.name for p in base.parent.iterdir() if p.name.startswith(".autolog")] == []
    with pytest.raises(Exception, match="disk full"):
        models.save_model(Failing(), iris_model, tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autolog-runs"]


# -- the store's schema ---------------------------------------------------------------------


def test_migration_4_adds_model_file_digests_to_an_old_store(tmp_path):
    from store.sqlite import MIGRATIONS, Store

    path = tmp_path / "db.sqlite"
    old = Store(path, tmp_path / "a")
    rid = old.create_run().info.run_id
    old.conn.execute("DROP TABLE model_files")
    old.conn.execute("PRAGMA user_version = 3")
    old.close()

    new = Store(path, tmp_path / "a")
    assert new.schema_version == len(MIGRATIONS) >= 4
    new.record_model("u1", rid, "model/", ["python_function"], 1, None, files={"MLmodel": "ab"})
    assert new.model_file_digests(rid, "model") == {"MLmodel": "ab"}
    # logging again at the same place replaces the record
    new.record_model("u2", rid, "model", ["python_function"], 2, None, files={"model.pkl": "cd"})
    assert new.model_file_digests(rid, "model") == {"model.pkl": "cd"}


def test_save_racing_another_writer_of_the_same_path_fails_cleanly(tmp_path, iris_model):
    target = tmp_path / "m"

    class Racing(models.Flavor):
        name = "racing"

        def save_native(self, model, path):
            target.mkdir()
            (target / "theirs.txt").write_text("another process got here first")
            (path / "ours.bin").write_bytes(b"ours")
            return {"data": "ours.bin"}

    with pytest.raises(ModelError, match=f"{target} was created by someone else"):
        models.save_model(Racing(), iris_model, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no work folder left
    assert sorted(p.name for p in target.iterdir()) == ["theirs.txt"]
