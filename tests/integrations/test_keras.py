"""integrations.keras: Keras 3 on the torch backend, Model.fit / evaluate recorded."""

from __future__ import annotations

import os
import subprocess

os.environ["KERAS_BACKEND"] = "torch"  # Keras reads it once, at its first import

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import torch

import autolog
from autolog import integration, patching, testing, tracking
from autolog.errors import IntegrationError, ModelLoadError
from integrations import keras as keras_autolog

ROWS = 64
PARAMS = {
    "epochs",
    "batch_size",
    "steps_per_epoch",
    "validation_split",
    "shuffle",
    "class_weight",
    "initial_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
    "loss",
    "metrics",
    "model_class",
    "model_total_params",
    "model_trainable_params",
    *(
        f"optimizer_{k}"
        for k in [
            "name",
            "learning_rate",
            "weight_decay",
            "clipnorm",
            "global_clipnorm",
            "clipvalue",
            "use_ema",
            "ema_momentum",
            "ema_overwrite_frequency",
            "loss_scale_factor",
            "gradient_accumulation_steps",
            "beta_1",
            "beta_2",
            "epsilon",
            "amsgrad",
        ]
    ),
}


@pytest.fixture(scope="module", autouse=True)
def keras_entry_point(tmp_path_factory):
    """The entry point pyproject.toml declares, until the shared environment is reinstalled."""
    integration.discover()
    if "keras" in integration.INTEGRATIONS:
        yield
        return
    folder = tmp_path_factory.mktemp("entry_point")
    dist = folder / "autolog_keras_test-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: autolog_keras_test\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[autolog.integrations]\nkeras = integrations.keras\n")
    sys.path.insert(0, str(folder))
    integration.discover()
    yield
    sys.path.remove(str(folder))
    for table in (integration.INTEGRATIONS, integration._modules, integration._loaded):
        table.pop("keras", None)
    integration._hooked.discard("keras")


@pytest.fixture(autouse=True)
def fresh_warnings():
    patching._last_warning.clear()
    yield
    patching._last_warning.clear()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    return x, y


def mlp(lr: float | keras.optimizers.schedules.LearningRateSchedule = 1e-2) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return model


def runs():
    return autolog.search_runs(output_format="list", order_by=["start_time"])


def series(run, key):
    points = autolog.get_metric_history(run.info.run_id, key)
    return [p.step for p in points], [p.value for p in points]


def artifacts(run, path=""):
    return sorted(f.path for f in autolog.Client().list_artifacts(run.info.run_id, path))


class Raises(keras.callbacks.Callback):
    def __init__(self, exc: BaseException):
        super().__init__()
        self.exc = exc

    def on_epoch_end(self, epoch, logs=None):
        raise self.exc


class Wrapper(keras.Sequential):
    """A subclass whose fit trains twice through super().fit: one run."""

    def fit(self, *args, **kwargs):
        super().fit(*args, **kwargs)
        return super().fit(*args, **kwargs)


# -- the contract ------------------------------------------------------------------------------


def test_contract(data) -> None:
    x, y = data

    def nested():
        model = Wrapper([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)

    testing.check_contract(
        "keras",
        train=lambda: mlp().fit(x, y, epochs=2, verbose=0, validation_split=0.25),
        run_name="Sequential",
        params=PARAMS,
        metrics={"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"},
        artifacts={"model", "model_summary.txt"},
        fail=lambda exc: mlp().fit(x, y, epochs=2, verbose=0, callbacks=[Raises(exc)]),
        nested=nested,
    )


# -- what one fit records ----------------------------------------------------------------------


def test_per_epoch_history_equals_keras_history_and_params_are_exact(data) -> None:
    x, y = data
    keras_autolog.autolog()
    model = mlp()
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0, validation_split=0.25)
    (run,) = runs()
    assert run.info.status == "FINISHED"
    assert run.data.tags[patching.INTEGRATION_TAG] == "keras"
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key, values in history.history.items():
        assert series(run, key) == ([0, 1, 2, 3], values)
    assert series(run, "learning_rate") == ([0, 1, 2, 3], [float(np.float32(1e-2))] * 4)
    params = run.data.params
    assert set(params) == PARAMS
    assert params["epochs"] == "4"
    assert params["batch_size"] == "16"
    assert params["validation_split"] == "0.25"
    assert params["class_weight"] == "None"
    assert params["optimizer_name"] == "Adam"
    assert params["optimizer_learning_rate"] == str(float(np.float32(1e-2)))
    assert params["optimizer_beta_1"] == "0.9"
    assert params["loss"] == "binary_crossentropy"
    assert params["metrics"] == "accuracy"
    assert params["model_class"] == "Sequential"
    assert params["model_total_params"] == str(4 * 8 + 8 + 8 + 1)
    assert params["model_trainable_params"] == "49"
    summary = tracking.Client().download_artifacts(run.info.run_id, "model_summary.txt")
    text = Path(summary).read_text()
    assert " Trainable params: 49 (196.00 B)" in text and "(Dense)" in text


def test_learning_rate_schedule_is_logged_per_epoch(data) -> None:
    x, y = data
    keras_autolog.autolog()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    mlp(schedule).fit(x, y, epochs=3, batch_size=16, verbose=0)  # 4 steps an epoch
    (run,) = runs()
    expected = [float(keras.ops.convert_to_numpy(schedule(4 * (e + 1)))) for e in range(3)]
    assert expected == [float(np.float32(v)) for v in (0.05, 0.025, 0.0125)]
    assert series(run, "learning_rate") == ([0, 1, 2], expected)
    params = run.data.params
    assert params["optimizer_learning_rate"] == "ExponentialDecay"
    assert params["optimizer_learning_rate_initial_learning_rate"] == "0.1"
    assert params["optimizer_learning_rate_decay_steps"] == "4"
    assert params["optimizer_learning_rate_decay_rate"] == "0.5"


def test_class_weight_is_logged_when_given(data) -> None:
    x, y = data
    keras_autolog.autolog()
    mlp().fit(x, y, epochs=1, verbose=0, class_weight={0: 1.0, 1: 2.0})
    (run,) = runs()
    assert run.data.params["class_weight"] == "{0: 1.0, 1: 2.0}"


def test_early_stopping_values(data) -> None:
    x, y = data
    keras_autolog.autolog()
    # min_delta larger than any loss: only the first epoch improves, the second stops the fit
    stop = keras.callbacks.EarlyStopping(
        monitor="loss", min_delta=10.0, patience=1, restore_best_weights=True
    )
    history = mlp().fit(x, y, epochs=10, verbose=0, callbacks=[stop])
    assert history.epoch == [0, 1]
    (run,) = runs()
    params = run.data.params
    assert (params["monitor"], params["patience"], params["min_delta"]) == ("loss", "1", "10.0")
    assert (params["restore_best_weights"], params["baseline"]) == ("True", "None")
    assert series(run, "stopped_epoch") == ([0], [1.0])
    assert series(run, "restored_epoch") == ([0], [0.0])
    for key, values in history.history.items():  # the restored epoch's values again, at step 2
        assert series(run, key) == ([0, 1, 2], [*values, values[0]])


def test_per_step_metrics_every_n_steps(data) -> None:
    x, y = data
    seen = {}

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen[len(seen) + 1] = dict(logs)

    keras_autolog.autolog(log_every_n_steps=3)
    history = mlp().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[Spy()])
    (run,) = runs()
    assert series(run, "batch_loss") == ([3, 6], [seen[3]["loss"], seen[6]["loss"]])
    assert series(run, "batch_accuracy") == ([3, 6], [seen[3]["accuracy"], seen[6]["accuracy"]])
    assert series(run, "loss") == ([0, 1], history.history["loss"])


def test_per_step_only_uses_plain_keys_like_mlflow(data) -> None:
    x, y = data
    keras_autolog.autolog(log_every_epoch=False, log_every_n_steps=2)
    mlp().fit(x, y, epochs=1, batch_size=16, verbose=0)
    (run,) = runs()
    assert series(run, "loss")[0] == [2, 4]
    assert "batch_loss" not in run.data.metrics


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"log_every_n_steps": 0}, "log_every_n_steps=0"),
        ({"log_every_n_steps": "5"}, "log_every_n_steps='5'"),
        ({"log_every_epoch": False}, "log_every_n_steps=<n>"),
    ],
)
def test_bad_flags_are_refused_by_name(flags, message) -> None:
    with pytest.raises(IntegrationError, match=message):
        keras_autolog.autolog(**flags)


def test_evaluate_after_fit_logs_eval_metrics_into_the_fit_run(data) -> None:
    x, y = data
    keras_autolog.autolog()
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    first = model.evaluate(x, y, verbose=0, return_dict=True)
    second = model.evaluate(x[:32], y[:32], verbose=0, return_dict=True)
    (run,) = runs()
    assert series(run, "eval_loss") == ([0, 1], [first["loss"], second["loss"]])
    assert series(run, "eval_accuracy") == ([0, 1], [first["accuracy"], second["accuracy"]])
    assert len(runs()) == 1
    mlp().evaluate(x, y, verbose=0)  # a model no logged fit trained: nothing
    assert len(runs()) == 1


def test_model_checkpoint_files_are_logged(data, tmp_path) -> None:
    x, y = data
    keras_autolog.autolog(log_checkpoints=True)
    template = str(tmp_path / "ckpt-{epoch:02d}.keras")
    mlp().fit(x, y, epochs=2, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(template)])
    (run,) = runs()
    assert artifacts(run, "checkpoints") == [
        "checkpoints/ckpt-01.keras",
        "checkpoints/ckpt-02.keras",
    ]


def test_model_checkpoint_fixed_path_logs_its_last_version_and_is_opt_in(data, tmp_path) -> None:
    x, y = data
    path = tmp_path / "best.keras"
    keras_autolog.autolog()  # log_checkpoints defaults to False: the file is not logged
    mlp().fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(path)])
    keras_autolog.autolog(log_checkpoints=True)
    model = mlp()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(path)])
    first, second = runs()
    assert artifacts(first, "checkpoints") == []
    assert artifacts(second, "checkpoints") == ["checkpoints/best.keras"]
    local = tracking.Client().download_artifacts(second.info.run_id, "checkpoints/best.keras")
    assert Path(local).read_bytes() == path.read_bytes()  # the version the last epoch wrote
    restored = keras.saving.load_model(local)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


# -- inputs of every kind ----------------------------------------------------------------------


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, size):
        super().__init__()
        self.x, self.y, self.size = x, y, size

    def __len__(self):
        return len(self.x) // self.size

    def __getitem__(self, i):
        s = slice(i * self.size, (i + 1) * self.size)
        return self.x[s], self.y[s]


class Subclassed(keras.Model):
    """No symbolic inputs: its signature comes from the first batch."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1, activation="sigmoid")

    def call(self, inputs):
        return self.dense(inputs)


def _generator(x, y):
    while True:
        for i in range(0, len(x), 16):
            yield x[i : i + 16], y[i : i + 16]


@pytest.mark.parametrize("kind", ["pydataset", "dataloader", "generator"])
def test_every_input_kind_logs_one_run_with_history_and_signature(data, kind) -> None:
    x, y = data
    keras_autolog.autolog()
    if kind == "pydataset":
        model, inputs, kwargs = Subclassed(), Batches(x, y, 16), {}
        model.compile(optimizer="sgd", loss="binary_crossentropy")
    elif kind == "dataloader":
        model = Subclassed()
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
        inputs, kwargs = torch.utils.data.DataLoader(dataset, batch_size=16), {}
    else:
        model, inputs, kwargs = mlp(), _generator(x, y), {"steps_per_epoch": 4}
    history = model.fit(inputs, epochs=2, verbose=0, **kwargs)
    (run,) = runs()
    assert series(run, "loss") == ([0, 1], history.history["loss"])
    assert run.data.params["batch_size"] == ("16" if kind == "dataloader" else "None")
    info = autolog.models.get_model_info(f"runs:/{run.info.run_id}/model")
    inputs_spec = info.signature.inputs.to_dict()
    assert inputs_spec == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}
    ]
    assert info.signature.outputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}
    ]


def test_multi_input_model_signature_and_reload(data) -> None:
    x, y = data
    keras_autolog.autolog(log_input_examples=True)
    a = keras.Input((3,), name="a")
    b = keras.Input((1,), name="b")
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"a": a, "b": b}, out)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    inputs = {"a": x[:, :3], "b": x[:, 3:]}
    model.fit(inputs, y, epochs=1, verbose=0)
    (run,) = runs()
    uri = f"runs:/{run.info.run_id}/model"
    info = autolog.models.get_model_info(uri)
    assert info.signature.inputs.to_dict() == [
        {"name": "a", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}},
        {"name": "b", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}},
    ]
    pyfunc = autolog.load_model(uri)
    example = pyfunc.metadata.load_input_example(pyfunc.path)  # the first rows, by input name
    assert sorted(example) == ["a", "b"]
    np.testing.assert_array_equal(example["a"], inputs["a"][:5])
    np.testing.assert_array_equal(example["b"], inputs["b"][:5])
    expected = model.predict(inputs, verbose=0)
    loaded = keras_autolog.load_model(uri)
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), expected)
    np.testing.assert_array_equal(autolog.load_model(uri).predict(inputs), expected)


def test_reload_predicts_the_same_and_mlmodel_is_mlflows_layout(data) -> None:
    x, y = data
    keras_autolog.autolog()
    model = mlp()
    model.fit(x, y, epochs=2, verbose=0)
    (run,) = runs()
    uri = f"runs:/{run.info.run_id}/model"
    loaded = keras_autolog.load_model(uri)
    assert isinstance(loaded, keras.Sequential)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_array_equal(autolog.load_model(uri).predict(x), model.predict(x, verbose=0))
    info = autolog.models.get_model_info(uri)
    conf = info.flavors["keras"]
    assert conf == {
        "data": "data",
        "keras_version": keras.__version__,
        "keras_backend": "torch",
        "save_exported_model": False,
    }
    assert info.flavors["python_function"]["loader_module"] == "mlflow.keras"
    assert artifacts(run, "model/data") == ["model/data/keras_module.txt", "model/data/model.keras"]


def test_the_model_written_after_fit_returns_is_the_one_that_fit_trained(data) -> None:
    x, y = data
    keras_autolog.autolog()
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    expected = model.predict(x, verbose=0)
    model.fit(x, y, epochs=3, verbose=0)  # at once: waits for the first run's model first
    trained_on = model.predict(x, verbose=0)
    assert not np.array_equal(trained_on, expected)
    first, second = runs()
    for run, predictions in ((first, expected), (second, trained_on)):
        loaded = keras_autolog.load_model(f"runs:/{run.info.run_id}/model")
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), predictions)
        assert artifacts(run) == ["model", "model_summary.txt"]
    keras_autolog.flush()  # nothing left: returns at once, no warning
    mlp().fit(x, y, epochs=1, verbose=0)
    last = autolog.last_logged_model()  # a read: waits for the model of the fit just made
    assert last.source_run_id == runs()[-1].info.run_id != second.info.run_id


def test_a_script_that_exits_right_after_fit_still_writes_its_model(tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import os\n"
        "os.environ['KERAS_BACKEND'] = 'torch'\n"
        "import autolog\n"
        f"autolog.set_tracking_uri({str(tmp_path / 'runs')!r})\n"
        "autolog.autolog()\n"  # before keras imports h5py, whose exit handler breaks saving
        "import keras, numpy as np\n"
        "x = np.arange(64, dtype='float32').reshape(16, 4) / 64\n"
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])\n"
        "model.compile(optimizer='sgd', loss='mse')\n"
        "model.fit(x, x[:, :1], epochs=1, verbose=0)\n"
        "np.savez('weights.npz', *model.get_weights())\n"  # quick: then it exits at once
    )
    env = {**os.environ, "PYTHONPATH": str(Path(autolog.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "AutologWarning" not in done.stderr
    autolog.set_tracking_uri(str(tmp_path / "runs"))
    (run,) = runs()
    loaded = keras_autolog.load_model(f"runs:/{run.info.run_id}/model")
    with np.load(tmp_path / "weights.npz") as weights:
        trained = [weights[f"arr_{i}"] for i in range(len(weights.files))]
    assert len(trained) == 2
    for got, expected in zip(loaded.get_weights(), trained, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_lambda_layer_loads_only_through_the_pickle_gate(data, tmp_path) -> None:
    x, _ = data
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    path = tmp_path / "lambda_model"
    keras_autolog.save_model(model, path)
    with pytest.raises(ModelLoadError, match="Lambda layer") as refused:
        keras_autolog.load_model(path)
    assert "allow_pickle=True" in str(refused.value)
    loaded = keras_autolog.load_model(path, allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), x * 2.0)


def test_user_error_in_a_custom_callback_propagates_unchanged(data) -> None:
    x, y = data
    keras_autolog.autolog()
    error = RuntimeError("the user's callback failed")
    with pytest.raises(RuntimeError) as got:
        mlp().fit(x, y, epochs=2, verbose=0, callbacks=[Raises(error)])
    assert got.value is error
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert tracking.active_run() is None


def test_fit_inside_a_user_run_logs_into_it_and_leaves_it_open(data) -> None:
    x, y = data
    keras_autolog.autolog()
    with autolog.start_run() as user_run:
        mlp().fit(x, y, epochs=1, verbose=0)
        assert tracking.active_run().info.run_id == user_run.info.run_id
    (run,) = runs()
    assert run.info.run_id == user_run.info.run_id
    assert "loss" in run.data.metrics


# -- with the torch integration ----------------------------------------------------------------


def test_torch_integration_enabled_too_creates_no_second_run(data) -> None:
    x, y = data
    autolog.autolog()  # every integration, torch's included
    mlp().fit(x, y, epochs=2, batch_size=16, verbose=0)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    mlp().fit(torch.utils.data.DataLoader(dataset, batch_size=16), epochs=2, verbose=0)
    from integrations import torch as torch_autolog

    assert integration.is_enabled("torch") and integration.is_enabled("keras")
    torch_autolog.end_training()  # a plain-loop training torch might hold ends now
    assert [r.data.tags[patching.INTEGRATION_TAG] for r in runs()] == ["keras", "keras"]


def test_keras_excluded_torch_enabled_records_no_run(data) -> None:
    x, y = data
    autolog.autolog(exclude=["keras"])
    mlp().fit(x, y, epochs=2, batch_size=16, verbose=0)
    from integrations import torch as torch_autolog

    torch_autolog.end_training()
    assert integration.is_enabled("torch") and not integration.is_enabled("keras")
    assert runs() == []
