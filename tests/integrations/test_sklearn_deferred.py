"""sklearn's deferred logging: training metrics, charts and estimator.html written on autolog's
background thread after fit returns; reads of the run, end_run of a user run, flush() and the
interpreter's exit wait for them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import autolog
from autolog import batching, patching, tracking
from autolog.errors import AutologWarning
from integrations import sklearn as skl
from integrations.sklearn import charts as skl_charts
from integrations.sklearn import html as skl_html

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
X_BIN, Y_BIN = make_classification(n_samples=200, n_features=6, random_state=0)
CHARTS = {
    "training_confusion_matrix.png",
    "training_roc_curve.png",
    "training_precision_recall_curve.png",
}


@pytest.fixture
def gate(monkeypatch):
    """estimator.html waits until gate.set(): the deferred work of a fit is still pending."""
    opened = threading.Event()
    write = skl_html.write_html_repr

    def waiting(*args):
        assert opened.wait(30), "the gate was never opened"
        write(*args)

    monkeypatch.setattr(skl_html, "write_html_repr", waiting)
    yield opened
    opened.set()


def _raw_files(run_id):
    """The run's artifact files as they are on disk now, without waiting for deferred work."""
    base = tracking._store().artifact_dir(run_id, "")
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}


def _release_soon(event):
    threading.Timer(0.2, event.set).start()


def test_fit_returns_before_the_deferred_work_and_reads_wait_for_it(gate):
    autolog.autolog()
    model = RandomForestClassifier(n_estimators=5, random_state=0)
    assert model.fit(X_BIN, Y_BIN) is model  # returns with estimator.html still pending
    run_id = tracking._last_active_run_id
    raw = tracking._store().get_run(run_id)
    assert raw.info.status == "FINISHED"
    assert "estimator.html" not in _raw_files(run_id)
    _release_soon(gate)
    names = {f.path for f in autolog.Client().list_artifacts(run_id)}
    assert {"estimator.html", "model"} | CHARTS <= names
    run = autolog.get_run(run_id)
    assert run.info.status == "FINISHED"
    proba = model.predict_proba(X_BIN)
    y_pred = model.classes_[np.argmax(proba, axis=1)]
    assert run.data.metrics["training_accuracy_score"] == metrics.accuracy_score(Y_BIN, y_pred)
    assert run.data.metrics["training_log_loss"] == metrics.log_loss(Y_BIN, proba)
    assert run.data.metrics["training_roc_auc"] == metrics.roc_auc_score(Y_BIN, proba[:, 1])
    assert not batching._deferred.pending


def test_metrics_and_artifacts_are_there_right_after_fit():
    autolog.autolog()
    model = LogisticRegression(max_iter=500).fit(X_BIN, Y_BIN)
    (run,) = autolog.search_runs(output_format="list")
    assert run.info.status == "FINISHED"
    y_pred = model.predict(X_BIN)
    assert run.data.metrics["training_accuracy_score"] == metrics.accuracy_score(Y_BIN, y_pred)
    assert run.data.metrics["training_f1_score"] == metrics.f1_score(
        Y_BIN, y_pred, average="weighted"
    )
    names = {f.path for f in autolog.Client().list_artifacts(run.info.run_id)}
    assert {"estimator.html"} | CHARTS <= names


def test_the_logged_model_gets_the_training_metrics_logged_after_it(gate):
    autolog.autolog()
    model = LogisticRegression(max_iter=500).fit(X_BIN, Y_BIN)
    _release_soon(gate)
    logged = autolog.last_logged_model()  # a read: waits for the deferred metrics
    values = {m.key: m.value for m in logged.metrics}
    assert values["training_accuracy_score"] == metrics.accuracy_score(Y_BIN, model.predict(X_BIN))
    assert values["training_score"] == values["training_accuracy_score"]
    assert {m.dataset_name for m in logged.metrics if m.key.startswith("training_")} == {"train"}


def test_a_refit_right_after_fit_keeps_the_first_runs_diagram(gate):
    autolog.autolog()
    clf = LogisticRegression(C=0.25, max_iter=500)
    pipe = Pipeline([("scaler", StandardScaler()), ("clf", clf)]).fit(X_IRIS, Y_IRIS)
    first = tracking._last_active_run_id
    # changed in place (the step object the first diagram shows) and fitted again, while the
    # first run's diagram is not drawn yet
    pipe.set_params(clf__C=7.0).fit(X_IRIS[:, :3], Y_IRIS)
    second = tracking._last_active_run_id
    assert clf.C == 7.0 and first != second
    gate.set()
    skl.flush()
    html = tracking.Client().artifact_dir(first, "estimator.html").read_text()
    assert "LogisticRegression(C=0.25, max_iter=500)" in html
    assert "C=7.0" not in html
    later = tracking.Client().artifact_dir(second, "estimator.html").read_text()
    assert "LogisticRegression(C=7.0, max_iter=500)" in later


def test_a_failure_in_deferred_work_is_one_warning_and_the_run_finishes(monkeypatch):
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.setattr(patching, "_last_warning", {})

    def broken(*args):
        raise OSError("plotter on fire")

    monkeypatch.setattr(skl_charts, "write_classifier_charts", broken)
    autolog.autolog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LogisticRegression(max_iter=500)
        assert model.fit(X_BIN, Y_BIN) is model
        run = autolog.get_run(tracking._last_active_run_id)  # waits: the failure is reported
        skl.flush()
        skl.flush()
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1
    assert "plotter on fire" in str(ours[0].message)
    assert run.info.status == "FINISHED"
    assert "training_accuracy_score" in run.data.metrics  # the other parts still ran
    names = {f.path for f in autolog.Client().list_artifacts(run.info.run_id)}
    assert "estimator.html" in names
    assert not names & CHARTS


def test_a_failure_in_deferred_work_raises_at_the_read_under_autolog_testing(monkeypatch):
    def broken(*args):
        raise OSError("plotter on fire")

    monkeypatch.setattr(skl_charts, "write_classifier_charts", broken)
    autolog.autolog()
    LogisticRegression(max_iter=500).fit(X_BIN, Y_BIN)
    with pytest.raises(OSError, match="plotter on fire"):
        skl.flush()
    skl.flush()  # reported once: nothing left


def test_flush_is_idempotent_and_waits(gate):
    autolog.autolog()
    LogisticRegression(max_iter=500).fit(X_BIN, Y_BIN)
    run_id = tracking._last_active_run_id
    _release_soon(gate)
    assert skl.flush() is None
    after_first = _raw_files(run_id)
    assert {"estimator.html"} | CHARTS <= after_first
    assert skl.flush() is None
    assert skl.flush(timeout=0) is None
    assert _raw_files(run_id) == after_first


def test_a_user_run_ends_once_the_deferred_work_landed(gate):
    autolog.autolog()
    with autolog.start_run() as run:
        LogisticRegression(max_iter=500).fit(X_BIN, Y_BIN)
        assert "estimator.html" not in _raw_files(run.info.run_id)
        _release_soon(gate)
    # end_run waited: on disk without any read that waits
    assert {"estimator.html"} | CHARTS <= _raw_files(run.info.run_id)
    assert tracking._store().get_run(run.info.run_id).info.status == "FINISHED"


def test_deferred_work_goes_to_the_store_of_its_fit(gate, tmp_path):
    autolog.autolog()
    LogisticRegression(max_iter=500).fit(X_BIN, Y_BIN)
    run_id = tracking._last_active_run_id
    first_store = tracking._store()
    # set_tracking_uri waits for the deferred work, which is still held at the gate: it lands
    # in the store its fit used, not in the one named next
    threading.Timer(0.3, gate.set).start()
    autolog.set_tracking_uri(tmp_path / "elsewhere")
    assert gate.is_set()
    skl.flush()
    base = first_store.artifact_dir(run_id, "")
    assert (base / "estimator.html").exists()
    assert "training_accuracy_score" in first_store.get_run(run_id).data.metrics


def test_the_interpreters_exit_waits_for_the_deferred_work(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, threading
        sys.path.insert(0, {str(Path.cwd())!r})
        import autolog
        from autolog import tracking
        from integrations.sklearn import html
        from sklearn.datasets import make_classification
        from sklearn.linear_model import LogisticRegression

        write = html.write_html_repr

        def slow(*args):
            threading.Event().wait(0.5)
            write(*args)

        html.write_html_repr = slow
        autolog.set_tracking_uri({str(tmp_path / "runs")!r})
        autolog.autolog()
        X, y = make_classification(n_samples=100, random_state=0)
        LogisticRegression().fit(X, y)
        print(tracking._last_active_run_id)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    run_id = out.stdout.strip().splitlines()[-1]
    autolog.set_tracking_uri(tmp_path / "runs")
    assert (tracking._store().artifact_dir(run_id, "") / "estimator.html").exists()
