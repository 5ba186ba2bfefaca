"""Model directories in MLflow's MLmodel format, pyfunc loading, and model URIs.

A saved model is a directory::

    model/
      MLmodel                  YAML: flavors, signature, model_uuid, run_id, utc_time_created, ...
      model.pkl                the native file (its name and format chosen by the flavor)
      requirements.txt         pinned from importlib.metadata (no subprocess, no import tracing)
      python_env.yaml          python version + build tools, `-r requirements.txt`
      conda.yaml               the same for conda users
      input_example.json       when an input example was given

Flavors. A library is supported by a :class:`Flavor`: a few lines that write the native file,
read it back and predict with it. ``integrations/<lib>.py`` exposes one as ``FLAVOR``;
:func:`get_flavor` finds it by name through importlib, so this module imports no integration.
The generic ``python_function`` flavor, for any cloudpickled object with ``predict``, ships
here (:data:`PICKLED_FLAVOR`).

Interop with MLflow, both ways:

- MLflow loads a directory through ``flavors.python_function.loader_module``. We write there the
  module MLflow itself uses for the library (``Flavor.mlflow_loader_module``, e.g.
  ``mlflow.xgboost``) plus the keys its loader reads (``Flavor.pyfunc_conf``), so
  ``mlflow.pyfunc.load_model(path)`` loads our models without autolog installed. The generic
  pickled flavor writes ``loader_module: mlflow.sklearn`` with ``model_path: model.pkl``:
  MLflow's sklearn loader only unpickles that file and calls ``predict``, which is exactly what
  the generic flavor needs; for scikit-learn estimators we also write the ``sklearn`` flavor
  fields MLflow's loader reads (``pickled_model``, ``serialization_format: cloudpickle``,
  ``sklearn_version``, ``code``), so ``mlflow.sklearn.load_model`` works too. MLflow 3.x refuses
  to unpickle unless ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` is set (its rule, for any
  pickled model, its own included). A flavor with no MLflow twin writes
  ``loader_module: autolog.models``, whose :func:`_load_pyfunc` MLflow calls when autolog is
  installed. Our own key ``python_function.autolog_flavor`` names the flavor for autolog.
- We load MLflow's directories: ``loader_module: mlflow.<lib>`` maps to the flavor named
  ``<lib>`` (``mlflow.pytorch`` -> ``integrations.torch``). MLflow's scikit-learn directories
  (``pickled_model`` in pickle, cloudpickle or skops format) load even without
  ``integrations.sklearn``, through a reader in this module.

URIs: a path, ``file://``, ``runs:/<run_id>/<artifact_path>``, ``models:/m-<hex>`` (a logged
model, :mod:`autolog.logged_models`) and ``models:/<name>/...`` (resolved by
:mod:`autolog.registry`).

Trust: a flavor never unpickles by itself; it asks :func:`pickle_bytes` (the gate of
:mod:`autolog.model_trust`) for the bytes, and reads other files through :func:`contained`.
:func:`log_model` records the SHA-256 of every file in the store, and writes the directory
under a work name renamed into place when complete.

The code, by concern: :mod:`autolog.models_format` (the Flavor API, the generic pickled flavor,
the MLmodel metadata), :mod:`autolog.models_save` (save and log), and this module (URIs,
loading); every name is importable from here.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autolog import logged_models, model_trust
from autolog.errors import ModelError, ModelLoadError
from autolog.model_trust import contained, pickle_bytes
from autolog.models_format import (  # noqa: F401  (importable from here, as before the split)
    _NOT_CHECKED,
    CONDA_ENV_FILE,
    INPUT_EXAMPLE_FILE,
    LOG_MODEL_HISTORY_TAG,
    MLMODEL_FILE,
    PICKLED_FLAVOR,
    PYFUNC,
    PYTHON_ENV_FILE,
    REQUIREMENTS_FILE,
    Flavor,
    MLflowSklearnFlavor,
    Model,
    ModelInfo,
    PickledModelFlavor,
    _as_flavor,
    _dist_version,
    _python_version,
    distribution_of_module,
    get_flavor,
    pin,
    register_flavor,
)
from autolog.models_save import (  # noqa: F401  (importable from here, as before the split)
    _signature_from_example,
    log_model,
    save_model,
)
from autolog.signature import enforce_schema

__all__ = [
    "PICKLED_FLAVOR",
    "Flavor",
    "Model",
    "ModelInfo",
    "contained",
    "PickledModelFlavor",
    "PyFuncModel",
    "get_flavor",
    "get_model_info",
    "load_flavor_model",
    "load_model",
    "log_model",
    "pickle_bytes",
    "register_flavor",
    "resolve_model_uri",
    "save_model",
]


# ---------------------------------------------------------------------------------------------
# URIs


def resolve_model_uri(uri: str | os.PathLike[str]) -> Path:
    """The local directory of a model URI.

    :param uri: a path, ``file://...``, ``runs:/<run_id>/<artifact_path>`` or ``models:/...``.
    :raises ModelError: for an unsupported scheme or a malformed URI.
    """
    return _resolve(uri)[0]


def _split_runs_uri(text: str) -> tuple[str, str]:
    run_id, _, artifact_path = text[len("runs:/") :].strip("/").partition("/")
    if not run_id:
        raise ModelError(f"Malformed model URI {text!r}; expected runs:/<run_id>/<path>")
    return run_id, artifact_path


def _resolve(uri: str | os.PathLike[str]) -> tuple[Path, tuple[str, str] | None]:
    """(model directory, (run_id, artifact_path) of the logged model whose recorded digests
    vouch for it, or None for a plain path)."""
    if isinstance(uri, os.PathLike):
        return Path(uri), None
    text = str(uri)
    if text.startswith("runs:/"):
        run_id, artifact_path = _split_runs_uri(text)
        from autolog import tracking

        tracking.before_read(run_id)  # a model an integration still saves in the background
        folder = tracking.Client().store.artifact_local_path(run_id, artifact_path)
        return folder, (run_id, artifact_path)
    if logged_models.is_logged_model_uri(text):
        from autolog import tracking

        tracking.before_read(None)
        store = tracking.Client().store
        owner, artifact_path = logged_models.resolve_logged_model_uri(store, text)
        folder = store.artifact_local_path(owner, artifact_path)
        if logged_models.in_own_folder(owner):  # MLflow 3 wrote it: no digests recorded
            return folder, None
        # vouched for by the digests recorded when it was logged, exactly as runs:/ is
        return folder, (owner, artifact_path)
    if text.startswith("models:/"):
        try:
            registry = importlib.import_module("autolog.registry")
        except ImportError as e:
            raise ModelError(f"Cannot resolve {text!r}: the model registry is unavailable ({e})")
        path, source = registry.resolve_models_source(text)
        # A version registered from a run is vouched for by that run's record; one registered
        # from a plain directory by nothing.
        logged = _split_runs_uri(source) if source.startswith("runs:/") else None
        return Path(path), logged
    if text.startswith("file:"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        parsed = urlparse(text)
        local = url2pathname(parsed.netloc + parsed.path if parsed.netloc else parsed.path)
        return Path(local), None
    scheme = text.partition(":")[0]
    # A one-letter "scheme" is a Windows drive (C:\models\m).
    if ":" in text and len(scheme) > 1 and scheme.isalnum() and not os.path.exists(text):
        raise ModelError(
            f"Unsupported model URI scheme in {text!r}; use a path, runs:/ or models:/"
        )
    return Path(text).expanduser(), None


# ---------------------------------------------------------------------------------------------
# loading


def _resolve_flavor(mlmodel: Model, where: Path) -> tuple[Flavor, dict[str, Any], dict[str, Any]]:
    """(flavor, its MLmodel section, the python_function section) for a model directory."""
    flavors = mlmodel.flavors
    pyfunc = flavors.get(PYFUNC, {})
    name = pyfunc.get("autolog_flavor")
    loader = pyfunc.get("loader_module")
    if name is None:
        if isinstance(loader, str) and loader.startswith("mlflow."):
            name = loader.split(".")[1]
        else:
            others = [n for n in flavors if n != PYFUNC]
            name = others[0] if len(others) == 1 else None
    if isinstance(name, str) and not name.isidentifier():
        # the name picks a module to import (integrations.<name>)
        raise ModelLoadError(f"{where}: flavor name {name!r} is not a Python identifier")
    if not isinstance(name, str):
        raise ModelLoadError(
            f"{where}: cannot tell which flavor loads this model (loader_module {loader!r}, "
            f"flavors {sorted(flavors)})"
        )
    try:
        flavor = get_flavor(name)
    except Exception as e:  # an integration that fails to import
        raise ModelLoadError(
            f"{where}: the {name!r} flavor is unavailable ({type(e).__name__}: {e})"
        ) from e
    if flavor is None:
        raise ModelLoadError(
            f"{where}: unknown flavor {name!r} (loader_module {loader!r}); no integration "
            "provides it"
        )
    conf = pyfunc if name == PYFUNC else flavors.get(name)
    if conf is None:
        raise ModelLoadError(f"{where}: MLmodel names flavor {name!r} but has no {name!r} section")
    return flavor, conf, pyfunc


def _load_native(
    flavor: Flavor, path: Path, conf: dict[str, Any], ctx: model_trust.LoadContext
) -> Any:
    try:
        with model_trust.loading(ctx):
            return flavor.load_native(path, conf)
    except ModelLoadError:
        raise
    except FileNotFoundError as e:
        raise ModelLoadError(
            f"{path}: the {flavor.name} model file is missing: {e.filename or e}"
        ) from e
    except KeyError as e:
        raise ModelLoadError(f"{path}: the {flavor.name} flavor section lacks key {e}") from e
    except Exception as e:
        raise ModelLoadError(
            f"{path}: cannot load the {flavor.name} model ({type(e).__name__}: {e})"
        ) from e


def _version_warning(path: Path, pyfunc: Mapping[str, Any]) -> None:
    """One warning listing every mismatch between the saved and the running environment."""
    problems = []
    saved_py = pyfunc.get("python_version")
    if saved_py:
        running = _python_version()
        if str(saved_py).split(".")[:2] != running.split(".")[:2]:
            problems.append(f"Python {saved_py} (running {running})")
    try:
        lines = (path / REQUIREMENTS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        req = line.split("#", 1)[0].strip()
        if "==" not in req or req.startswith("-"):
            continue
        dist, _, version = req.partition("==")
        dist = dist.split("[", 1)[0].strip()
        version = version.split(";", 1)[0].strip()
        if dist.lower() in _NOT_CHECKED:
            continue
        installed = _dist_version(dist)
        if installed != version:
            problems.append(f"{dist}=={version} (installed: {installed or 'none'})")
    if problems:
        warnings.warn(
            f"The model at {path} was saved with {', '.join(problems)}; it may load or predict "
            "differently here.",
            UserWarning,
            stacklevel=3,
        )


class PyFuncModel:
    """A loaded model with one ``predict(data)`` whatever its library.

    ``metadata`` is the :class:`Model` read from MLmodel (signature, run_id, flavors,
    model_uuid); ``predict`` enforces the signature's inputs before calling the model.
    """

    def __init__(
        self, metadata: Model, flavor: Flavor, native: Any, pyfunc_conf: dict[str, Any], path: Path
    ):
        self.metadata = metadata
        self.flavor = flavor
        self.path = path
        self._native = native
        self._predict_fn = pyfunc_conf.get("predict_fn") or "predict"

    @property
    def model_uuid(self) -> str:
        return self.metadata.model_uuid

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict on ``data`` after checking it against the model signature.

        :raises SchemaEnforcementError: when ``data`` does not match the signature.
        """
        schema = self.metadata.get_input_schema()
        if schema is not None:
            data = enforce_schema(data, schema)
        if self._predict_fn != "predict":
            return getattr(self._native, self._predict_fn)(data)
        return self.flavor.predict(self._native, data, params)

    def unwrap_python_model(self) -> Any:
        """The native model object (a scikit-learn estimator, a booster, ...)."""
        return self._native

    get_raw_model = unwrap_python_model

    def __repr__(self) -> str:
        where = (
            f"runs:/{self.metadata.run_id}/{self.metadata.artifact_path}"
            if self.metadata.run_id
            else str(self.path)
        )
        return f"<PyFuncModel {self.flavor.name} {type(self._native).__name__} from {where}>"


def _open(
    uri: str | os.PathLike[str], allow_pickle: bool | None = None
) -> tuple[Path, Model, model_trust.LoadContext]:
    """The model directory, its MLmodel (paths checked) and the context its loads run in."""
    path, logged = _resolve(uri)
    if path.name == MLMODEL_FILE and path.is_file():
        path = path.parent
    if not path.exists():
        raise ModelLoadError(f"No model at {uri} ({path} does not exist)")
    digests = None
    if logged is not None:
        from autolog import tracking

        digests = tracking._store().model_file_digests(*logged)
    mlmodel = Model.load(path)
    if digests is not None:
        # The MLmodel says which file to unpickle and how: it must be the one logged.
        model_trust.verify(path, MLMODEL_FILE, (path / MLMODEL_FILE).read_bytes(), digests)
    sections: dict[str, Any] = dict(mlmodel.flavors)
    sections["saved_input_example_info"] = mlmodel.saved_input_example_info or {}
    model_trust.check_paths(path, sections)
    origin = str(path) if isinstance(uri, os.PathLike) else str(uri)
    return path, mlmodel, model_trust.LoadContext(path, origin, digests, allow_pickle)


def load_model(
    uri: str | os.PathLike[str],
    *,
    suppress_warnings: bool = False,
    allow_pickle: bool | None = None,
) -> PyFuncModel:
    """Load a model for prediction.

    A pickle-based model loads through ``runs:/`` or ``models:/`` when its files have the
    digests recorded when it was logged; from a plain path only with ``allow_pickle=True``
    (or ``AUTOLOG_ALLOW_PICKLE=1`` / ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``). Formats
    that need no pickle load from anywhere.

    :param uri: a path, ``file://``, ``runs:/<run_id>/<path>`` or ``models:/<name>/<version>``.
    :param suppress_warnings: skip the Python/library version check against requirements.txt.
    :param allow_pickle: True: unpickle files nothing vouches for (only for files you trust:
        unpickling runs code); False: never, whatever the environment says; None (default):
        the environment variables decide. A file changed after logging is refused regardless.
    :raises ModelLoadError: naming the path, for a missing or corrupted MLmodel, a missing
        native file, an unknown flavor, a path outside the model directory, or a pickle the
        gate refuses.
    """
    path, mlmodel, ctx = _open(uri, allow_pickle)
    flavor, conf, pyfunc = _resolve_flavor(mlmodel, path)
    if not suppress_warnings:
        _version_warning(path, pyfunc)
    native = _load_native(flavor, path, conf, ctx)
    return PyFuncModel(mlmodel, flavor, native, pyfunc, path)


def load_flavor_model(
    uri: str | os.PathLike[str], flavor: Flavor | str, *, allow_pickle: bool | None = None
) -> Any:
    """The native model of ``flavor`` at ``uri`` (what ``integrations.<lib>.load_model`` returns).

    :param allow_pickle: as for :func:`load_model`.
    """
    fl = _as_flavor(flavor)
    path, mlmodel, ctx = _open(uri, allow_pickle)
    conf = mlmodel.flavors.get(fl.name)
    if conf is None:
        raise ModelLoadError(
            f"{path}: no {fl.name!r} flavor in this model (it has {sorted(mlmodel.flavors)})"
        )
    return _load_native(fl, path, conf, ctx)


def get_model_info(uri: str | os.PathLike[str]) -> ModelInfo:
    """The metadata of the model at ``uri`` without loading it."""
    path, m, _ctx = _open(uri)
    model_uri = str(uri) if not isinstance(uri, os.PathLike) else str(path)
    return ModelInfo(
        model_uri=model_uri,
        run_id=m.run_id,
        artifact_path=m.artifact_path,
        model_uuid=m.model_uuid,
        signature=m.signature,
        flavors=m.flavors,
        utc_time_created=m.utc_time_created,
        saved_input_example_info=m.saved_input_example_info,
        metadata=m.metadata,
        path=path,
        model_id=m.model_id,
    )


class _MLflowPyfuncWrapper:
    """What MLflow's pyfunc gets from :func:`_load_pyfunc` (it enforces the signature itself)."""

    def __init__(self, flavor: Flavor, native: Any):
        self.flavor = flavor
        self.native = native

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self.flavor.predict(self.native, data, params)

    def get_raw_model(self) -> Any:
        return self.native


def _load_pyfunc(path: str, model_config: Any = None) -> _MLflowPyfuncWrapper:
    """MLflow's loader hook, for flavors written with ``loader_module: autolog.models``."""
    p = Path(path)
    while not (p / MLMODEL_FILE).exists() and p.parent != p:
        p = p.parent
    mlmodel = Model.load(p)
    model_trust.check_paths(p, mlmodel.flavors)
    flavor, conf, _pyfunc = _resolve_flavor(mlmodel, p)
    # MLflow loads by path: only the environment's opt-in (MLflow's own variable included)
    # lets a pickle through.
    ctx = model_trust.LoadContext(p, str(p))
    return _MLflowPyfuncWrapper(flavor, _load_native(flavor, p, conf, ctx))
