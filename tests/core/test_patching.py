"""Each rule of the patching contract (DESIGN.md section 3), on a fake library."""

from __future__ import annotations

import inspect
import pickle
import re
import threading
import traceback
import warnings
from pathlib import Path

import pytest
from core import fakes

import autolog
from autolog import integration, patching, tracking
from autolog.errors import AutologWarning


@pytest.fixture
def fakelib(tmp_path: Path):
    fakes.install(tmp_path)
    import fakelib as lib

    lib.calls.clear()
    yield lib
    autolog.autolog(disable=True)
    fakes.uninstall(tmp_path)
    patching._last_warning.clear()


def runs():
    return autolog.search_runs(output_format="list", order_by=["start_time"])


def test_call_through_exactly_once_with_unchanged_arguments(fakelib) -> None:
    autolog.autolog()
    X, y = [1, 2, 3], object()
    model = fakelib.Model()
    assert model.fit(X, y, weight=2) is model
    assert fakelib.calls == [(model, X, y, {"weight": 2})]
    assert fakelib.calls[0][1] is X and fakelib.calls[0][2] is y
    (run,) = runs()
    assert run.info.status == "FINISHED"
    assert re.fullmatch(r"Model-[0-9a-f]{4}", run.info.run_name)
    assert run.data.params == {"n": "3", "own_flag": "default"}
    assert run.data.tags["mlflow.autologging"] == "fakelib"
    assert run.data.tags["done"] == "yes"
    assert [m.value for m in autolog.get_metric_history(run.info.run_id, "loss")] == [
        1.0,
        0.5,
        1 / 3,
    ]


def test_user_exception_propagates_unchanged_and_run_fails(fakelib) -> None:
    autolog.autolog()
    err = ValueError("bad data")
    with pytest.raises(ValueError) as info:
        fakelib.Model().fit([1], explode=err)
    assert info.value is err
    assert err.__context__ is None and err.__cause__ is None
    innermost = traceback.extract_tb(info.value.__traceback__)[-1]
    assert innermost.name == "fit" and "fakelib" in innermost.filename
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert run.data.params == {"n": "1", "own_flag": "default"}


def test_keyboard_interrupt_ends_run_killed(fakelib) -> None:
    autolog.autolog()
    with pytest.raises(KeyboardInterrupt):
        fakelib.Model().fit([1], explode=KeyboardInterrupt())
    assert runs()[0].info.status == "KILLED"


def test_our_exception_is_one_warning_and_the_result_is_returned(fakelib, monkeypatch) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING")
    autolog.autolog()
    store = tracking._store()

    def broken(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "set_tag", broken)
    model = fakelib.Model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert model.fit([1, 2]) is model
        assert model.fit([1, 2, 3]) is model  # rate limited: no second warning
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1
    assert "fakelib" in str(ours[0].message) and "disk on fire" in str(ours[0].message)
    assert len(fakelib.calls) == 2
    assert [r.info.status for r in runs()] == ["FINISHED", "FINISHED"]


def test_our_exception_raises_under_autolog_testing(fakelib, monkeypatch) -> None:
    autolog.autolog()
    monkeypatch.setattr(tracking._store(), "set_tag", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        fakelib.Model().fit([1])
    assert tracking.active_run() is None  # the managed run did not leak


WRITE_POINTS = [
    "create_run",
    "log_batch",
    "set_tag",
    "set_terminated",
    "write_artifact_bytes",
    "update_run",
]


@pytest.mark.parametrize("method", WRITE_POINTS)
def test_fault_injected_into_every_store_write_never_reaches_the_user(
    fakelib, monkeypatch, method
) -> None:
    monkeypatch.delenv("AUTOLOG_TESTING")
    autolog.autolog()
    store = tracking._store()
    store.create_run  # noqa: B018 - open the store before breaking it

    def broken(*a, **k):
        raise OSError(f"injected failure in {method}")

    monkeypatch.setattr(store, method, broken)
    model = fakelib.Model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit([1, 2])
    assert result is model
    assert len(fakelib.calls) == 1
    assert len([w for w in caught if issubclass(w.category, AutologWarning)]) == 1
    assert tracking.active_run() is None


@pytest.mark.parametrize("method", WRITE_POINTS)
def test_fault_injected_raises_under_autolog_testing(fakelib, monkeypatch, method) -> None:
    autolog.autolog()
    store = tracking._store()
    monkeypatch.setattr(store, method, lambda *a, **k: (_ for _ in ()).throw(OSError(method)))
    with pytest.raises(OSError, match=method):
        fakelib.Model().fit([1, 2])
    assert tracking.active_run() is None


def test_only_the_outermost_call_logs(fakelib) -> None:
    autolog.autolog()
    fakelib.Sub().fit([1, 2])  # Sub.fit -> Model.fit (patched twice)
    fakelib.Model.build(4)  # classmethod calling fit
    (r1, r2) = runs()
    assert re.fullmatch(r"Sub-[0-9a-f]{4}", r1.info.run_name) and r1.data.params["n"] == "2"
    assert re.fullmatch(r"Model-[0-9a-f]{4}", r2.info.run_name) and r2.data.params["n"] == "4"


def test_threads_started_inside_a_fit_create_no_runs(fakelib, monkeypatch) -> None:
    autolog.autolog()
    original = fakelib.Model.__dict__["fit"].__wrapped__

    def fit_with_workers(self, X, y=None, **kwargs):
        workers = [threading.Thread(target=lambda: fakelib.Model().fit([0])) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: fakelib.Model().fit([0]), range(4)))
        return original(self, X, y, **kwargs)

    monkeypatch.setattr(fakelib.Sub, "fit", fit_with_workers)
    fakelib.Inherits.fit.__wrapped__  # noqa: B018
    patching.safe_patch("fakelib", fakelib.Sub, "fit", fakes_patched())
    fakelib.Sub().fit([1, 2, 3])
    assert len(runs()) == 1
    assert len(fakelib.calls) == 8


def fakes_patched():
    import autolog_fakelib as integ

    return integ._patched_fit


def test_three_user_threads_get_three_runs(fakelib) -> None:
    autolog.autolog()
    barrier = threading.Barrier(3)

    def work(n):
        barrier.wait()
        fakelib.Model().fit(list(range(n)))

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.data.params["n"] for r in runs()) == ["1", "2", "3"]


def test_revert_restores_exactly_what_was_there(fakelib) -> None:
    own = fakelib.Model.__dict__["fit"]
    sub_own = fakelib.Sub.__dict__["fit"]
    assert "fit" not in fakelib.Inherits.__dict__
    autolog.autolog()
    assert patching.is_patched(fakelib.Model, "fit") and patching.is_patched(
        fakelib.Inherits, "fit"
    )
    autolog.autolog(disable=True)
    assert fakelib.Model.__dict__["fit"] is own
    assert fakelib.Sub.__dict__["fit"] is sub_own
    assert "fit" not in fakelib.Inherits.__dict__
    fakelib.Model().fit([1])
    assert runs() == []


def test_enable_twice_patches_once_and_enable_disable_enable(fakelib) -> None:
    autolog.autolog()
    autolog.autolog()
    assert len(patching.patches_of("fakelib")) == 3
    fakelib.Sub().fit([1])
    autolog.autolog(disable=True)
    fakelib.Sub().fit([1])
    autolog.autolog()
    fakelib.Sub().fit([1])
    assert len(runs()) == 2


def test_patched_methods_keep_name_doc_signature_and_descriptors(fakelib) -> None:
    original_sig = inspect.signature(fakelib.Model.fit)
    autolog.autolog()
    assert fakelib.Model.fit.__name__ == "fit"
    assert fakelib.Model.fit.__doc__ == "Fit the model."
    assert inspect.signature(fakelib.Model.fit) == original_sig
    m = fakelib.Model().fit([1, 2])
    assert m.size == 2
    assert isinstance(fakelib.Model.train([1]), fakelib.Model)
    assert pickle.loads(pickle.dumps(m)).fitted_ == 2


def test_classmethod_staticmethod_and_property_can_be_patched(fakelib) -> None:
    seen = []

    def observe(call, instance, args, kwargs):
        seen.append(instance)
        return call(*args, **kwargs)

    for name in ("build", "train", "size"):
        patching.safe_patch(
            "probe", fakelib.Model, name, observe, get_config=lambda: integration.Config()
        )
    try:
        assert fakelib.Model.build(2).fitted_ == 2
        assert fakelib.Model.train([1, 2, 3]).fitted_ == 3
        assert fakelib.Model().fit([1]).size == 1
        assert seen[0] is fakelib.Model and len(seen) == 3
    finally:
        patching.revert_patches("probe")
    assert isinstance(fakelib.Model.__dict__["build"], classmethod)
    assert isinstance(fakelib.Model.__dict__["train"], staticmethod)
    assert isinstance(fakelib.Model.__dict__["size"], property)


def test_version_outside_range_warns_once_and_skips(fakelib, monkeypatch) -> None:
    monkeypatch.setattr(fakelib, "__version__", "3.0.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autolog.autolog()
        autolog.autolog()
    msgs = [str(w.message) for w in caught if issubclass(w.category, AutologWarning)]
    assert (
        len(msgs) == 1 and "3.0.0" in msgs[0] and ">=1.0,<2" in msgs[0] and "force=True" in msgs[0]
    )
    fakelib.Model().fit([1])
    assert runs() == []
    import autolog_fakelib as integ

    integ.autolog(force=True)
    fakelib.Model().fit([1])
    assert len(runs()) == 1


def test_user_run_is_used_and_left_open(fakelib) -> None:
    autolog.autolog()
    with autolog.start_run(run_name="mine") as run:
        fakelib.Model().fit([1, 2])
        assert autolog.active_run().info.run_id == run.info.run_id
        assert autolog.get_run(run.info.run_id).info.status == "RUNNING"
    (got,) = runs()
    assert got.info.run_id == run.info.run_id and got.data.params["n"] == "2"
    assert got.info.status == "FINISHED"


def test_exclusive_skips_user_runs(fakelib) -> None:
    autolog.autolog(exclusive=True)
    with autolog.start_run() as run:
        fakelib.Model().fit([1, 2])
    assert autolog.get_run(run.info.run_id).data.params == {}
    fakelib.Model().fit([1])
    assert len(runs()) == 2


def test_per_library_settings_win_before_and_after_universal(fakelib) -> None:
    import autolog_fakelib as integ

    integ.autolog(own_flag="mine", log_models=False)
    autolog.autolog()
    fakelib.Model().fit([1])
    (run,) = runs()
    assert run.data.params["own_flag"] == "mine"
    assert autolog.Client().list_artifacts(run.info.run_id) == []
    autolog.autolog(extra_tags={"team": "x"})
    integ.autolog(own_flag="later")
    fakelib.Model().fit([1])
    latest = runs()[-1]
    assert latest.data.params["own_flag"] == "later" and "team" not in latest.data.tags


def test_extra_tags_and_exclude(fakelib) -> None:
    autolog.autolog(extra_tags={"team": "x"})
    fakelib.Model().fit([1])
    assert runs()[0].data.tags["team"] == "x"
    autolog.autolog(exclude=["fakelib"])
    fakelib.Model().fit([1])
    assert len(runs()) == 1
    with pytest.raises(autolog.AutologError, match="nope"):
        autolog.autolog(exclude=["nope"])
