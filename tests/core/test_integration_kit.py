"""The integration kit: a toy integration found through its entry point, the shared Flags, the
contract kit run on it, and the patching helpers."""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
import types
from pathlib import Path

import pytest
from core import fakes

import autolog
from autolog import integration, patching, testing, tracking

TOY_LIBRARY = textwrap.dedent(
    '''
    """A toy library."""
    __version__ = "0.3.0"

    class Estimator:
        def fit(self, X):
            for x in X:
                if isinstance(x, BaseException):
                    raise x
            self.n_ = len(X)
            return self

    class Ensemble(Estimator):
        def fit(self, X):
            for _ in range(2):
                Estimator().fit(X)
            return super().fit(X)
    '''
)
TOY_INTEGRATION = textwrap.dedent(
    '''
    """Autologging for toylib: Estimator.fit logs the size of X and the model."""
    from autolog import integration, patching, tracking

    INTEGRATION = integration.Integration("toylib", supported=">=0.3,<1")
    N_ROWS = "n_rows"


    def _patched_fit(call, instance, args, kwargs):
        session = patching.current_session()
        run_id = session.run_id
        tracking._store().log_batch(run_id, params={N_ROWS: len(args[0])})
        result = call(*args, **kwargs)
        if session.config.log_models and session.config.get("log_text", True):
            tracking.Client().log_text(run_id, "toy", "model/model.txt")
        return result


    @INTEGRATION.patcher
    def patch():
        import toylib

        patching.patch_subclasses("toylib", toylib.Estimator, {"fit": _patched_fit})


    @INTEGRATION.autolog
    def autolog(log_text: bool = True):
        """Record every toylib fit.

        :param log_text: write the model as a text file.
        """
    '''
)


@pytest.fixture
def toy(tmp_path: Path):
    (tmp_path / "toylib.py").write_text(TOY_LIBRARY)
    (tmp_path / "autolog_toylib.py").write_text(TOY_INTEGRATION)
    fakes.write_entry_point(tmp_path, "toylib", "autolog_toylib")
    sys.path.insert(0, str(tmp_path))
    yield importlib.import_module("toylib")
    autolog.autolog(disable=True)
    sys.modules.pop("autolog_toylib", None)
    fakes.uninstall(tmp_path, "toylib")
    sys.modules.pop("toylib", None)


def test_toy_integration_is_discovered_through_its_entry_point(toy) -> None:
    assert "toylib" in integration.discover()
    assert integration.module_name("toylib") == "autolog_toylib"
    assert autolog.toylib is importlib.import_module("autolog_toylib")
    autolog.autolog()
    toy.Estimator().fit([1, 2, 3])
    (run,) = autolog.search_runs(output_format="list")
    assert run.data.params == {"n_rows": "3"}
    assert run.data.tags[patching.INTEGRATION_TAG] == "toylib"


def test_toy_integration_passes_the_contract_kit(toy) -> None:
    testing.check_contract(
        "toylib",
        train=lambda: toy.Estimator().fit([1, 2]),
        run_name="Estimator",
        params={"n_rows"},
        metrics=set(),
        artifacts={"model"},
        fail=lambda exc: toy.Estimator().fit([1, exc]),
        nested=lambda: toy.Ensemble().fit([1]),
    )


def test_contract_kit_fails_on_wrong_keys(toy) -> None:
    with pytest.raises(AssertionError, match=r"params differ; missing \['rows'\]"):
        testing.check_contract(
            "toylib",
            train=lambda: toy.Estimator().fit([1]),
            run_name="Estimator",
            params={"rows"},
            metrics=set(),
            fail=lambda exc: toy.Estimator().fit([exc]),
        )


def test_contract_kit_fails_on_a_run_not_named_after_what_was_trained(toy) -> None:
    with pytest.raises(AssertionError, match=r"run named 'Estimator-[0-9a-f]{4}', not Model-xxxx"):
        testing.check_contract(
            "toylib",
            train=lambda: toy.Estimator().fit([1]),
            run_name="Model",
            params={"n_rows"},
            metrics=set(),
            fail=lambda exc: toy.Estimator().fit([exc]),
        )


def test_every_integration_takes_the_common_flags_force_included() -> None:
    common = [f.name for f in integration.FLAG_FIELDS]
    assert common == [
        "log_models",
        "log_input_examples",
        "log_model_signatures",
        "log_datasets",
        "disable",
        "exclusive",
        "silent",
        "extra_tags",
        "registered_model_name",
        "force",
    ]
    for name in integration.names():
        module = importlib.import_module(integration.module_name(name))
        params = inspect.signature(module.autolog).parameters
        assert set(common) <= set(params), name
    universal = inspect.signature(autolog.autolog).parameters
    assert list(universal) == [*integration.UNIVERSAL_FLAGS, "exclude", "log_system_metrics"]
    assert "force" in universal and "registered_model_name" not in universal


def test_flags_are_documented_once_and_checked_by_name(toy) -> None:
    import autolog_toylib

    doc = autolog_toylib.autolog.__doc__
    assert ":param log_text: write the model as a text file." in doc
    assert ":param force: patch even a library version outside the supported range." in doc
    with pytest.raises(TypeError, match=r"has no flag \['log_txt'\]; its flags: .*'log_text'"):
        autolog_toylib.autolog(log_txt=False)
    with pytest.raises(TypeError, match="takes its flags by name"):
        autolog_toylib.autolog(False)
    autolog_toylib.autolog(log_text=False, force=True)
    toy.Estimator().fit([1])
    (run,) = autolog.search_runs(output_format="list")
    assert autolog.Client().list_artifacts(run.info.run_id) == []


def test_redeclaring_a_common_flag_is_refused() -> None:
    integ = integration.Integration("nothing", supported=">=1")

    def autolog(force: bool = False) -> None:
        """Declares force again."""

    with pytest.raises(integration.IntegrationError, match=r"\['force'\] again"):
        integ.autolog(autolog)


def test_patch_subclasses_patches_later_classes_and_revert_removes_the_hook(toy) -> None:
    seen = []

    def observe(call, instance, args, kwargs):
        seen.append(type(instance).__name__)
        return call(*args, **kwargs)

    class Base:
        def fit(self):
            return "base"

    patching.patch_subclasses("probe", Base, {"fit": observe})
    try:

        class Later(Base):
            def fit(self):
                return "later"

        assert patching.is_patched(Base, "fit") and patching.is_patched(Later, "fit")
        assert Later().fit() == "later"  # not enabled: the call goes straight through
    finally:
        patching.revert_patches("probe")
    assert "__init_subclass__" not in Base.__dict__
    assert not patching.is_patched(Later, "fit")

    class After(Base):
        def fit(self):
            return "after"

    assert not patching.is_patched(After, "fit")
    assert seen == []


def test_when_imported_acts_once_imported_and_not_after_revert(tmp_path: Path) -> None:
    (tmp_path / "late_module_a.py").write_text("X = 1\n")
    (tmp_path / "late_module_b.py").write_text("X = 2\n")
    sys.path.insert(0, str(tmp_path))
    got: list[types.ModuleType] = []
    try:
        patching.when_imported("probe", "late_module_a", got.append)
        patching.when_imported("probe", "late_module_b", got.append)
        assert got == []
        import late_module_a

        assert got == [late_module_a]
        patching.revert_patches("probe")
        import late_module_b  # noqa: F401

        assert got == [late_module_a]
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("late_module_a", "late_module_b"):
            sys.modules.pop(name, None)
    assert tracking.active_run() is None
