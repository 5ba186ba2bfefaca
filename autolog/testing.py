"""The contract kit: the patching contract (DESIGN.md section 3) checked on one integration.

Every integration's test file calls :func:`check_contract` once, with a training call of its
library and the exact keys that training logs::

    def test_contract(store):
        testing.check_contract(
            "xgboost",
            train=lambda: xgb.train(PARAMS, dtrain, 3, evals=[(dtrain, "train")]),
            run_name="xgboost.train",
            params={"objective", "num_boost_round", ...},
            metrics={"train-logloss"},
            artifacts={"model", "feature_importance_weight.json", ...},
            fail=lambda exc: xgb.train(PARAMS, dtrain, 3, callbacks=[Raises(exc)]),
            nested=lambda: xgb.XGBClassifier(n_estimators=3).fit(X, y),
        )

It checks, in order, each rule on a store the test gives it (the tests' ``tracking_dir``):
happy path with exact keys and the run named after what was trained (``xgboost.train-3f2a``:
the name given and a 4-hex-digit suffix, alike in every integration); not patched records nothing; a user error propagates unchanged
and fails the run; autolog's own error becomes one warning (and raises under AUTOLOG_TESTING);
a nested training logs one run; a library version out of range is skipped with one warning,
and ``force=True`` patches it anyway. A broken rule raises AssertionError naming it.
Needs no pytest; leaves autolog disabled.
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Callable, Collection
from typing import Any

from autolog import integration, patching, tracking
from autolog.errors import AutologWarning

PARENT_TAG = "mlflow.parentRunId"


class _UserError(Exception):
    """Raised from inside the user's training by the contract kit."""


def check_contract(
    name: str,
    *,
    train: Callable[[], Any],
    run_name: str,
    params: Collection[str],
    metrics: Collection[str],
    fail: Callable[[BaseException], Any],
    artifacts: Collection[str] | None = None,
    nested: Callable[[], Any] | None = None,
    flags: dict[str, Any] | None = None,
) -> None:
    """Check every rule of the patching contract on the integration called ``name``.

    :param train: one training call of the library (a fresh model each call).
    :param run_name: what the run of ``train`` is named after (its estimator's class, or the
        library function): the run must be named ``<run_name>-<4 hex digits>``.
    :param params: the exact param keys that training logs (``flags`` applied).
    :param metrics: the exact metric keys it logs.
    :param fail: a training whose user code raises the exception it is given.
    :param artifacts: the exact top-level artifact paths (None: not checked).
    :param nested: a training that runs other patched trainings inside it: one run.
    :param flags: flags of the integration's own ``autolog()`` for every step.
    """
    kit = _Kit(name, train, flags or {})
    kit.happy_path(
        run_name, set(params), set(metrics), None if artifacts is None else set(artifacts)
    )
    kit.not_patched()
    kit.user_error(fail)
    kit.own_error()
    if nested is not None:
        kit.nested(nested)
    kit.version_out_of_range()
    kit.enable(disable=True)


class _Kit:
    def __init__(self, name: str, train: Callable[[], Any], flags: dict[str, Any]):
        self.name = name
        self.train = train
        self.flags = flags
        self.module = importlib.import_module(integration.module_name(name))

    def enable(self, **flags: Any) -> None:
        self.module.autolog(**{**self.flags, **flags})

    def run_training(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        finally:
            flush = getattr(self.module, "flush", None)
            if callable(flush):  # work an integration finishes after the call (torch's loop)
                flush()

    def runs(self) -> list[Any]:
        found = tracking.search_runs(output_format="list", order_by=["start_time"])
        return [r for r in found if PARENT_TAG not in r.data.tags]

    def new_runs(self, before: list[Any]) -> list[Any]:
        seen = {r.info.run_id for r in before}
        return [r for r in self.runs() if r.info.run_id not in seen]

    def happy_path(
        self, run_name: str, params: set[str], metrics: set[str], artifacts: set[str] | None
    ) -> None:
        self.enable()
        before = self.runs()
        self.run_training(self.train)
        runs = self.new_runs(before)
        _check(len(runs) == 1, f"happy path: one run expected, got {len(runs)}")
        run = runs[0]
        _check(run.info.status == "FINISHED", f"happy path: run ended {run.info.status}")
        tag = run.data.tags.get(patching.INTEGRATION_TAG)
        _check(tag == self.name, f"happy path: tag {patching.INTEGRATION_TAG}={tag!r}")
        named = re.fullmatch(re.escape(run_name) + "-[0-9a-f]{4}", run.info.run_name or "")
        _check(
            named is not None, f"happy path: run named {run.info.run_name!r}, not {run_name}-xxxx"
        )
        _same("params", set(run.data.params), params)
        _same("metrics", set(run.data.metrics), metrics)
        if artifacts is not None:
            files = {f.path for f in tracking.Client().list_artifacts(run.info.run_id)}
            _same("artifacts", files, artifacts)

    def not_patched(self) -> None:
        integration.autolog(disable=True)
        before = self.runs()
        self.run_training(self.train)
        _check(self.new_runs(before) == [], "not patched: a training recorded a run")

    def user_error(self, fail: Callable[[BaseException], Any]) -> None:
        self.enable()
        before = self.runs()
        err = _UserError("raised by the user's code")
        try:
            self.run_training(lambda: fail(err))
        except _UserError as got:
            _check(got is err, "user error: a different exception object reached the user")
        else:
            raise AssertionError("user error: the training's exception did not propagate")
        runs = self.new_runs(before)
        statuses = [r.info.status for r in runs]
        _check(statuses == ["FAILED"], f"user error: run statuses {statuses}, not ['FAILED']")
        _check(tracking.active_run() is None, "user error: a run was left active")

    def own_error(self) -> None:
        self.enable()
        store: Any = tracking._store()
        injected = OSError("autolog contract kit: injected store failure")

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise injected

        had_own = "create_run" in vars(store)
        original = vars(store).get("create_run")
        store.create_run = broken
        saved = os.environ.pop(patching.TESTING_ENV, None)
        patching._last_warning.pop(self.name, None)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.run_training(self.train)
            ours = [w for w in caught if issubclass(w.category, AutologWarning)]
            _check(len(ours) == 1, f"own error: {len(ours)} autolog warnings, not 1")
            _check(str(injected) in str(ours[0].message), "own error: warning lacks the cause")
            os.environ[patching.TESTING_ENV] = "1"
            try:
                self.run_training(self.train)
            except OSError as got:
                _check(got is injected, "own error: a different error raised under testing")
            else:
                raise AssertionError("own error: not raised under AUTOLOG_TESTING=1")
        finally:
            if saved is None:
                os.environ.pop(patching.TESTING_ENV, None)
            else:
                os.environ[patching.TESTING_ENV] = saved
            if had_own:
                store.create_run = original
            else:
                del store.create_run
        _check(tracking.active_run() is None, "own error: a run was left active")

    def nested(self, nested: Callable[[], Any]) -> None:
        self.enable()
        before = self.runs()
        self.run_training(nested)
        runs = self.new_runs(before)
        _check(len(runs) == 1, f"nested training: {len(runs)} runs, not 1")

    def version_out_of_range(self) -> None:
        integ = integration.get(self.name)
        integration.autolog(disable=True)
        supported, integ.supported = integ.supported, "<0.0.1"
        integration._version_warned.discard(f"{self.name}:{integ.library}")
        try:
            before = self.runs()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.enable()
                self.enable()
            msgs = [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]
            _check(len(msgs) == 1, f"version out of range: {len(msgs)} warnings, not 1")
            _check("force=True" in msgs[0], "version out of range: warning does not name force")
            self.run_training(self.train)
            _check(self.new_runs(before) == [], "version out of range: a training was recorded")
            self.enable(force=True)
            self.run_training(self.train)
            runs = self.new_runs(before)
            _check(len(runs) == 1, f"force=True: {len(runs)} runs, not 1")
        finally:
            integ.supported = supported
            integration._version_warned.discard(f"{self.name}:{integ.library}")
            integration.autolog(disable=True)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise AssertionError(f"contract: {message}")


def _same(what: str, got: set[str], expected: set[str]) -> None:
    if got != expected:
        raise AssertionError(
            f"contract: happy path {what} differ; missing {sorted(expected - got)}, "
            f"unexpected {sorted(got - expected)}"
        )
