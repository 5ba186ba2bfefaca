"""A small store with what each page shows: experiments, runs with histories, artifacts, models."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from autolog import tracking

HOST = "127.0.0.1"
PORT = 5000
BASE_URL = f"http://{HOST}:{PORT}"
# A PNG of 2x1 pixels (red, blue): a real image without drawing one.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000020000000108020000007b40e8dd0000000d49444154789c63"
    "f8cf0004ff01070001ffe2239e590000000049454e44ae426082"
)
HTML = "<html><body><h1>report</h1><script>parent.document.title = 'pwned'</script></body></html>"
CSV = "fold,accuracy,f1\n1,0.91,0.88\n2,0.93,0.9\n3,0.95,0.92\n"


@dataclass
class Demo:
    experiment_id: str
    other_experiment_id: str
    runs: dict[str, str] = field(default_factory=dict)  # name -> run_id


def populate(store) -> Demo:
    """Two experiments; four runs with params, per-step histories, tags, git context; artifacts."""
    client = tracking.Client()
    eid = store.create_experiment("iris")
    other = store.create_experiment("empty one")
    demo = Demo(eid, other)
    specs = [
        ("forest-a", "FINISHED", {"model": "forest", "max_depth": 3, "n_estimators": 50}, 0.9),
        ("forest-b", "FINISHED", {"model": "forest", "max_depth": 8, "n_estimators": 200}, 0.5),
        ("boost-c", "FAILED", {"model": "boost", "max_depth": 4, "learning_rate": 0.1}, 0.7),
        ("linear-d", "FINISHED", {"model": "linear", "C": 1.0}, 1.3),
    ]
    t0 = 1_700_000_000_000
    for i, (name, status, params, scale) in enumerate(specs):
        run = store.create_run(
            eid,
            run_name=name,
            start_time=t0 + i * 60_000,
            tags={
                "mlflow.runName": name,
                "mlflow.autologging": "sklearn" if name != "boost-c" else "xgboost",
                "mlflow.source.name": "train.py",
                "mlflow.source.type": "LOCAL",
                "mlflow.user": "ada",
                "mlflow.source.git.commit": f"{i:x}" * 40,
                "mlflow.source.git.branch": "main",
                "mlflow.source.git.dirty": "false",
                "team": "vision" if i % 2 == 0 else "audio",
            },
            user_id="ada",
        )
        rid = run.info.run_id
        demo.runs[name] = rid
        metrics = []
        for step in range(30):
            loss = scale * math.exp(-step / 8) + 0.05
            metrics.append(("loss", loss, t0 + step, step))
            metrics.append(("val_loss", loss * 1.1 + 0.02, t0 + step, step))
        metrics.append(("accuracy", 1 - scale / 5, t0 + 31, 0))
        store.log_batch(rid, metrics=metrics, params=params)
        store.set_terminated(rid, status, end_time=t0 + i * 60_000 + 5_000 + i * 1_000)
    rid = demo.runs["forest-a"]
    store.write_artifact_bytes(rid, "plots/tiny.png", PNG)
    _log_roc_figure(client, rid)
    store.write_artifact_bytes(rid, "report.html", HTML.encode())
    store.write_artifact_bytes(rid, "data/folds.csv", CSV.encode())
    client.log_text(rid, "all good\nsecond line\n", "notes.txt")
    store.write_artifact_bytes(rid, "weights.bin", bytes(range(256)))
    _log_model(rid)
    _register(store, rid)
    return demo


def _register(store, run_id: str) -> None:
    from autolog import registry

    registry.register_model(f"runs:/{run_id}/model", "iris-classifier")
    registry.register_model(f"runs:/{run_id}/model", "iris-classifier")
    store.set_registered_model_alias("iris-classifier", "champion", 1)
    store.transition_model_version_stage("iris-classifier", 2, "Staging")
    store.update_registered_model("iris-classifier", "Logistic regression on iris.")


def _log_roc_figure(client, run_id: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    fpr = [0, 0.05, 0.1, 0.2, 0.4, 1]
    ax.plot(fpr, [0, 0.6, 0.8, 0.9, 0.97, 1], label="forest-a")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend()
    client.log_figure(run_id, fig, "plots/roc.png")


def _log_model(run_id: str) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from autolog import models

    X, y = load_iris(return_X_y=True, as_frame=True)
    X = X.iloc[::5]
    y = y.iloc[::5]
    clf = LogisticRegression(max_iter=300).fit(X, y)
    models.log_model("python_function", clf, "model", input_example=X.iloc[:3], run_id=run_id)
