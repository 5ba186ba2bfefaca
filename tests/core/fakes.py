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
    """Fake integration used by the core tests."""
    from autolog import batching, integration, patching, tracking

    LIBRARY = "fakelib"
    DISTRIBUTIONS = ("fakelib",)
    SUPPORTED_VERSIONS = ">=1.0,<2"


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


    def patch():
        import fakelib

        for cls in (fakelib.Model, fakelib.Sub, fakelib.Inherits):
            patching.safe_patch("fakelib", cls, "fit", _patched_fit)


    def autolog(
        log_models=True,
        log_input_examples=False,
        log_model_signatures=True,
        disable=False,
        exclusive=False,
        silent=False,
        extra_tags=None,
        registered_model_name=None,
        force=False,
        own_flag="default",
    ):
        integration.configure(__name__, locals())
    '''
)


def install(folder: Path) -> None:
    """Write fakelib and integrations.fakelib under folder and make both importable."""
    (folder / "fakelib.py").write_text(FAKELIB)
    extra = folder / "extra_integrations"
    extra.mkdir(exist_ok=True)
    (extra / "fakelib.py").write_text(FAKE_INTEGRATION)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    import integrations

    if str(extra) not in integrations.__path__:
        integrations.__path__.append(str(extra))
    from autolog import integration

    integration.INTEGRATIONS["fakelib"] = "fakelib"


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
