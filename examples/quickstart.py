"""First run: one autolog() call, a scikit-learn training, and what was recorded.

Run it with `make demo` (or `.venv/bin/python examples/quickstart.py`). Everything lands in
./autolog-runs/ (one SQLite file plus artifacts); look at it with `autolog runs list` or
`autolog ui`.
"""

from __future__ import annotations

import autolog

autolog.set_experiment("quickstart")
autolog.autolog()  # from here on every fit is recorded

from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

model = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0)
model.fit(X_train, y_train)  # one run: params, training metrics, plots, signature, model
accuracy_score(y_test, model.predict(X_test))  # logged into the same run as accuracy_score_X_test

run = autolog.last_active_run()
assert run is not None
print(f"Run {run.info.run_id} ({run.info.run_name}): {run.info.status}")
print("\nParams (first 8):")
for key in sorted(run.data.params)[:8]:
    print(f"  {key} = {run.data.params[key]}")
print("\nMetrics:")
for key, value in sorted(run.data.metrics.items()):
    print(f"  {key} = {value:.4f}")
print("\nArtifacts:")
for info in autolog.Client().list_artifacts(run.info.run_id):
    print(f"  {info.path}{'/' if info.is_dir else ''}")

loaded = autolog.load_model(f"runs:/{run.info.run_id}/model")
same = (loaded.predict(X_test) == model.predict(X_test)).all()
print(
    f"\nReloaded with autolog.load_model('runs:/{run.info.run_id}/model'): predictions equal: {same}"
)
print("\nNext: `.venv/bin/autolog runs list --experiment quickstart` or `.venv/bin/autolog ui`.")
