"""A tiny fake ML library and its integration, written to disk so subprocesses can use them too."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

FAKELIB = textwrap.dedent(
    '''
    """A fake ML library."""
    __version__ = "1.5.0"
    calls = []

    class Model:
        """A model."""

        def fit(self, X, y=None, **kwargs):
            """Fit the model."""
            calls.append((self, X, y, kwargs))
            if kwargs.get("explode"):
                raise kwargs["explode"]
            self.fitted_ = len(X)
            return self

        @classmethod
        def build(cls, n):
            return cls().fit(list(range(n)))

        @staticmethod
        def train(X):
            return Model().fit(X)

        @property
        def size(self):
            return getattr(self, "fitted_", 0)

    class Sub(Model):
        def fit(self, X, y=None, **kwargs):
            return super().fit(X, y, **kwargs)

    class Inherits(Model):
        pass

    class Other:
        def fit(self, X):
            return Model().fit(X)
    '''
)

FAKE_INTEGRATION = textwrap.dedent(
    '''
    """Fake integration used by the core tests: written with the kit, found by its entry point."""
    from autolog import batching, integration, patching, tracking

    INTEGRATION = integration.Integration("fakelib", supported=">=1.0,<2")


    def _patched_fit(call, instance, args, kwargs):
        session = patching.current_session()
        session.state["run_name"] = type(instance).__name__
        run_id = session.run_id
        store = tracking._store()
        store.log_batch(run_id, params={"n": len(args[0]), "own_flag": session.config.get("own_flag")})
        result = call(*args, **kwargs)
        batcher = batching.batcher_for(run_id)
        for step in range(3):
            batcher.record("loss", 1.0 / (step + 1), step)
        if session.config.log_models:
            tracking.Client().log_text(run_id, "model", "model/model.txt")
        store.set_tag(run_id, "done", "yes")
        return result


    @INTEGRATION.patcher
    def patch():
        import fakelib

        for cls in (fakelib.Model, fakelib.Sub, fakelib.Inherits):
            patching.safe_patch("fakelib", cls, "fit", _patched_fit)


    @INTEGRATION.autolog
    def autolog(own_flag="default"):
        """Record fakelib's fits."""
    '''
)
INTEGRATION_MODULE = "autolog_fakelib"


def write_entry_point(folder: Path, name: str, module: str) -> None:
    """A distribution in folder declaring ``name = module`` in the autolog.integrations group."""
    dist = folder / f"{module}-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[autolog.integrations]\n{name} = {module}\n")


def install(folder: Path) -> None:
    """Write fakelib, its integration module and its entry point under folder (on sys.path)."""
    (folder / "fakelib.py").write_text(FAKELIB)
    (folder / f"{INTEGRATION_MODULE}.py").write_text(FAKE_INTEGRATION)
    write_entry_point(folder, "fakelib", INTEGRATION_MODULE)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def uninstall(folder: Path, name: str = "fakelib") -> None:
    """Forget what install() made known: modules, sys.path entry, discovered integration."""
    from autolog import integration

    for module in ("fakelib", INTEGRATION_MODULE):
        sys.modules.pop(module, None)
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    for table in (integration.INTEGRATIONS, integration._modules, integration._loaded):
        table.pop(name, None)
    integration._hooked.discard(name)
    integration._explicit.pop(name, None)
    integration._effective.pop(name, None)
    for key in [k for k in integration._version_warned if k.startswith(f"{name}:")]:
        integration._version_warned.discard(key)


PRELUDE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from core import fakes
    from pathlib import Path
    fakes.install(Path({folder!r}))
    import autolog
    autolog.set_tracking_uri({store!r})
    """
)
