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
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import json
import os
import pickle
import platform
import sys
import time
import uuid
import warnings
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from autolog import logged_models, model_trust
from autolog.errors import AutologError, ModelError, ModelLoadError
from autolog.model_trust import contained, pickle_bytes
from autolog.signature import ModelSignature, Schema, enforce_schema, infer_signature
from store.artifacts.staging import staged_folder
from store.errors import ArtifactExistsError

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

MLMODEL_FILE = "MLmodel"
REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_ENV_FILE = "conda.yaml"
INPUT_EXAMPLE_FILE = "input_example.json"
PYFUNC = "python_function"
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"

# Top-level modules whose distribution name differs (saves a scan of all installed packages).
_DIST_OF_MODULE = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "statsmodels": "statsmodels",
    "torch": "torch",
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
}
# MLflow itself is not a requirement of a model; its pins in MLflow's directories are not
# checked at load.
_NOT_CHECKED = {"mlflow", "mlflow-skinny", "mlflow-tracing"}


# ---------------------------------------------------------------------------------------------
# the Flavor API


class Flavor:
    """How one library's models are saved, loaded and asked for predictions.

    Subclass it in ``integrations/<lib>.py`` and expose an instance as ``FLAVOR``::

        class XGBoostFlavor(Flavor):
            name = "xgboost"
            requirements = ("xgboost",)
            mlflow_loader_module = "mlflow.xgboost"

            def save_native(self, model, path):
                model.save_model(path / "model.ubj")
                return {"data": "model.ubj", "model_format": "ubj", "xgb_version": ...}

            def load_native(self, path, conf):
                booster = xgboost.Booster()
                booster.load_model(path / conf["data"])
                return booster

            def pyfunc_conf(self, conf):
                return {"data": conf["data"]}

        FLAVOR = XGBoostFlavor()
    """

    #: key under ``flavors:`` in MLmodel (MLflow's name for the library where there is one)
    name: ClassVar[str] = ""
    #: distributions pinned into requirements.txt (importlib.metadata names)
    requirements: ClassVar[tuple[str, ...]] = ()
    #: the module MLflow imports to load this flavor (``mlflow.<lib>``), None if MLflow has none
    mlflow_loader_module: ClassVar[str | None] = None

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        """Write the native file(s) into ``path``; return this flavor's MLmodel section."""
        raise NotImplementedError

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        """Read the native model from the directory ``path`` given this flavor's section."""
        raise NotImplementedError

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict with a loaded native model (the signature was enforced already)."""
        return native.predict(data)

    def pyfunc_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        """Extra keys of the ``python_function`` section that MLflow's loader needs."""
        return {}

    def extra_flavors(self, model: Any, conf: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Further MLmodel flavor sections (for MLflow's loaders), written beside this one."""
        return {}

    def requirements_for(self, model: Any) -> list[str]:
        """The distributions this model needs (default: :attr:`requirements`)."""
        return list(self.requirements)

    def __repr__(self) -> str:
        return f"<Flavor {self.name}>"


_FLAVORS: dict[str, Flavor] = {}


def register_flavor(flavor: Flavor) -> Flavor:
    """Make ``flavor`` known by name without an ``integrations.<name>`` module; returns it."""
    if not flavor.name:
        raise ModelError(f"{type(flavor).__name__} has no name; set the class attribute `name`")
    _FLAVORS[flavor.name] = flavor
    return flavor


def get_flavor(name: str) -> Flavor | None:
    """The flavor called ``name``: registered, or ``FLAVOR`` of ``integrations.<name>``."""
    if name in _FLAVORS:
        return _FLAVORS[name]
    from autolog import integration

    owner = integration.name_for_flavor(name)
    module = None
    if owner is not None:
        module_name = integration.module_name(owner)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is None or not module_name.startswith(e.name):
                raise  # a missing dependency inside the integration propagates
    flavor = getattr(module, "FLAVOR", None)
    if isinstance(flavor, Flavor):
        return flavor
    return _FALLBACKS.get(name)


# ---------------------------------------------------------------------------------------------
# cached facts about this process


@functools.cache
def _dist_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def distribution_of_module(module: str) -> str | None:
    """The installed distribution providing the top-level package of ``module``, if any.

    The user's own code (anything outside site-packages) has none. This avoids
    importlib.metadata.packages_distributions(), which reads every installed RECORD (0.6 s).
    """
    top = module.partition(".")[0]
    if top in _DIST_OF_MODULE:
        return _DIST_OF_MODULE[top]
    if top in sys.stdlib_module_names or top in ("__main__", "builtins"):
        return None
    file = getattr(sys.modules.get(top), "__file__", None)
    if not file:
        return None
    site = next(
        (p for p in Path(file).resolve().parents if p.name in ("site-packages", "dist-packages")),
        None,
    )
    if site is None:
        return None
    for name in (top, top.replace("_", "-")):
        if _dist_version(name):
            return name
    from importlib import metadata

    for info in site.glob("*.dist-info"):
        top_level = info / "top_level.txt"
        try:
            if top_level.exists():
                found = top in top_level.read_text(encoding="utf-8").split()
            else:
                with open(info / "RECORD", encoding="utf-8") as f:
                    found = any(line.startswith((f"{top}/", f"{top}.py,")) for line in f)
        except OSError:
            continue
        if found:
            return metadata.Distribution.at(info).metadata["Name"]
    return None


def pin(dist: str) -> str:
    """``dist==<installed version>``, or the bare name when it is not installed."""
    version = _dist_version(dist)
    return f"{dist}=={version}" if version else dist


def _python_version() -> str:
    return platform.python_version()


# ---------------------------------------------------------------------------------------------
# the generic pickled flavor and the reader of MLflow's scikit-learn directories


def _is_sklearn_estimator(model: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(model, base.BaseEstimator)


class PickledModelFlavor(Flavor):
    """Any object with ``predict``, cloudpickled to ``model.pkl``.

    MLflow loads it with its scikit-learn loader (which unpickles and calls ``predict``).
    """

    name = PYFUNC
    requirements = ("cloudpickle", "numpy")
    mlflow_loader_module = "mlflow.sklearn"
    file_name = "model.pkl"

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import cloudpickle

        if not callable(getattr(model, "predict", None)):
            raise ModelError(
                f"The python_function flavor needs an object with a predict() method; "
                f"{type(model).__name__} has none"
            )
        with open(path / self.file_name, "wb") as f:
            # The default protocol keeps the file loadable by older Pythons (MLflow does the same).
            cloudpickle.dump(model, f, protocol=pickle.DEFAULT_PROTOCOL)
        return {
            "model_path": self.file_name,
            "serialization_format": "cloudpickle",
            "predict_fn": "predict",
        }

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        return _unpickle(path, conf["model_path"], conf.get("serialization_format", "cloudpickle"))

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        # Inference params (declared in the signature) reach a predict(data, params) method.
        return native.predict(data) if params is None else native.predict(data, params=params)

    def extra_flavors(self, model: Any, conf: dict[str, Any]) -> dict[str, dict[str, Any]]:
        if not _is_sklearn_estimator(model):
            return {}
        return {
            "sklearn": {
                "pickled_model": conf["model_path"],
                "sklearn_version": _dist_version("scikit-learn"),
                "serialization_format": "cloudpickle",
                "code": None,
            }
        }

    def requirements_for(self, model: Any) -> list[str]:
        reqs = list(self.requirements)
        dist = distribution_of_module(type(model).__module__)
        if dist and dist not in reqs:
            reqs.append(dist)
        return reqs


def _unpickle(root: Path, name: str, fmt: str) -> Any:
    """The object in ``root/name``, through the pickle gate (:mod:`autolog.model_trust`)."""
    if fmt == "skops":
        import skops.io

        file = contained(root, name)
        data = file.read_bytes()
        # The types to trust come from the checked bytes, never from MLmodel's
        # skops_trusted_types (which whoever edits the directory controls): skops' defaults
        # load silently; anything else passes the same gate as a pickle.
        untrusted = skops.io.get_untrusted_types(data=data)
        if untrusted:
            model_trust.approve(root, file, data, f"skops types it does not trust {untrusted}")
        return skops.io.loads(data, trusted=untrusted)
    if fmt not in ("cloudpickle", "pickle"):
        raise ModelLoadError(f"{root / name}: unknown serialization format {fmt!r}")
    # cloudpickle writes standard pickles (its reconstructors are found by import)
    return pickle.loads(pickle_bytes(root, name))


class MLflowSklearnFlavor(Flavor):
    """Reads the ``sklearn`` flavor MLflow writes (pickle, cloudpickle or skops).

    Used only while ``integrations.sklearn`` provides no ``FLAVOR`` of its own.
    """

    name = "sklearn"
    requirements = ("scikit-learn", "cloudpickle")
    mlflow_loader_module = "mlflow.sklearn"

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        conf = PICKLED_FLAVOR.save_native(model, path)
        return {
            "pickled_model": conf["model_path"],
            "sklearn_version": _dist_version("scikit-learn"),
            "serialization_format": "cloudpickle",
            "code": None,
        }

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        return _unpickle(path, conf["pickled_model"], conf.get("serialization_format", "pickle"))

    def pyfunc_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        return {"model_path": conf["pickled_model"], "predict_fn": "predict"}


PICKLED_FLAVOR = register_flavor(PickledModelFlavor())
_FALLBACKS: dict[str, Flavor] = {"sklearn": MLflowSklearnFlavor()}


# ---------------------------------------------------------------------------------------------
# MLmodel metadata


@dataclass
class Model:
    """The contents of an ``MLmodel`` file (MLflow's ``mlflow.models.Model`` fields)."""

    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    utc_time_created: str = field(
        default_factory=lambda: str(_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None))
    )
    run_id: str | None = None
    artifact_path: str | None = None
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    model_size_bytes: int | None = None
    #: the logged model record (``models:/<model_id>``), as MLflow 3 writes it
    model_id: str | None = None
    #: keys of the MLmodel file this class does not model (kept when re-saved)
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN: ClassVar[tuple[str, ...]] = (
        "flavors",
        "model_uuid",
        "utc_time_created",
        "run_id",
        "artifact_path",
        "signature",
        "saved_input_example_info",
        "metadata",
        "model_size_bytes",
        "model_id",
    )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        for key in self._KNOWN:
            value = getattr(self, key)
            if key == "signature" and value is not None:
                value = value.to_dict()
            if value is not None:
                d[key] = value
        return d

    def to_yaml(self) -> str:
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return yaml.dump(self.to_dict(), Dumper=dumper, default_flow_style=False, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the MLmodel file atomically, so a reader never sees half of it."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(self.to_yaml(), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: Any = "MLmodel") -> Model:
        if not isinstance(d, Mapping):
            raise ModelLoadError(f"{where}: not a YAML mapping (truncated or corrupted MLmodel?)")
        flavors = d.get("flavors")
        if not isinstance(flavors, Mapping) or not flavors:
            raise ModelLoadError(f"{where}: no 'flavors' section (truncated or corrupted MLmodel?)")
        for name, conf in flavors.items():
            if not isinstance(conf, Mapping):
                raise ModelLoadError(f"{where}: flavor {name!r} is not a mapping")
        signature = None
        sig = d.get("signature")
        if sig is not None:
            try:
                signature = ModelSignature.from_dict(sig)
            except (AutologError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise ModelLoadError(f"{where}: unreadable signature ({e})") from e
        info = d.get("saved_input_example_info")
        return cls(
            flavors={str(k): dict(v) for k, v in flavors.items()},
            model_uuid=str(d.get("model_uuid") or ""),
            utc_time_created=str(d.get("utc_time_created") or ""),
            run_id=d.get("run_id"),
            artifact_path=d.get("artifact_path"),
            signature=signature,
            saved_input_example_info=dict(info) if isinstance(info, Mapping) else None,
            metadata=d.get("metadata"),
            model_size_bytes=d.get("model_size_bytes"),
            model_id=d.get("model_id"),
            extra={k: v for k, v in d.items() if k not in cls._KNOWN},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read ``path/MLmodel`` (or the MLmodel file itself)."""
        import yaml

        p = Path(path)
        file = p / MLMODEL_FILE if p.is_dir() else p
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelLoadError(f"{p}: no {MLMODEL_FILE} file here; is this a model directory?")
        except (OSError, UnicodeDecodeError) as e:
            raise ModelLoadError(f"{file}: cannot read ({e})") from e
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            d = yaml.load(text, Loader=loader)
        except yaml.YAMLError as e:
            raise ModelLoadError(f"{file}: not valid YAML (truncated or corrupted?): {e}") from e
        return cls.from_dict(d, where=file)

    def get_input_schema(self) -> Schema | None:
        return self.signature.inputs if self.signature else None

    def get_output_schema(self) -> Schema | None:
        return self.signature.outputs if self.signature else None

    def load_input_example(self, path: str | os.PathLike[str]) -> Any:
        """The saved input example, rebuilt as the kind of object it was; None if none."""
        info = self.saved_input_example_info
        if not info:
            return None
        file = Path(path) / info.get("artifact_path", INPUT_EXAMPLE_FILE)
        return _read_example(json.loads(file.read_text(encoding="utf-8")), info)


@dataclass
class ModelInfo:
    """What :func:`log_model` returns (MLflow's ``ModelInfo`` names)."""

    model_uri: str
    run_id: str | None
    artifact_path: str | None
    model_uuid: str
    signature: ModelSignature | None
    flavors: dict[str, dict[str, Any]]
    utc_time_created: str
    saved_input_example_info: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    path: Path | None = None
    registered_model_version: Any = None
    #: the logged model record: ``models:/<model_id>`` loads the same files as model_uri
    model_id: str | None = None


# ---------------------------------------------------------------------------------------------
# saving


def _example_payload(example: Any) -> tuple[Any, dict[str, Any]]:
    """The JSON form of an input example and its ``saved_input_example_info``."""
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    sp = sys.modules.get("scipy.sparse")
    info: dict[str, Any] = {"artifact_path": INPUT_EXAMPLE_FILE}
    if pd is not None and isinstance(example, (pd.DataFrame, pd.Series)):
        frame = example.to_frame() if isinstance(example, pd.Series) else example
        payload = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
        info.update(type="dataframe", pandas_orient="split")
        return payload, info
    if np is not None and isinstance(example, np.ndarray):
        info["type"] = "ndarray"
        return example.tolist(), info
    if sp is not None and sp.issparse(example) and example.format in ("csr", "csc"):
        info["type"] = f"sparse_matrix_{example.format}"
        payload = {
            "data": example.data.tolist(),
            "indices": example.indices.tolist(),
            "indptr": example.indptr.tolist(),
            "shape": list(example.shape),
        }
        return payload, info
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(example, torch.Tensor):
        info["type"] = "ndarray"
        return example.detach().cpu().tolist(), info
    info["type"] = "json_object"
    return json.loads(json.dumps(example, default=_jsonable)), info


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, (_dt.date, _dt.datetime)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def _read_example(payload: Any, info: Mapping[str, Any]) -> Any:
    kind = info.get("type")
    if kind == "dataframe":
        import pandas as pd

        return pd.DataFrame(payload["data"], columns=payload["columns"])
    if kind == "ndarray":
        import numpy as np

        return np.asarray(payload)
    if kind in ("sparse_matrix_csr", "sparse_matrix_csc"):
        import scipy.sparse as sp

        cls = sp.csr_matrix if kind.endswith("csr") else sp.csc_matrix
        return cls((payload["data"], payload["indices"], payload["indptr"]), shape=payload["shape"])
    return payload


def _signature_from_example(flavor: Flavor, model: Any, example: Any) -> ModelSignature | None:
    """Inputs from the example, outputs from the model's prediction on it (best effort)."""
    try:
        sig = infer_signature(example)
    except AutologError as e:
        warnings.warn(f"No signature inferred from the input example: {e}", stacklevel=3)
        return None
    try:
        prediction = flavor.predict(model, example)
        np = sys.modules.get("numpy")
        # Column inputs with a 1-D prediction: one unnamed output column (as MLflow does).
        if (
            sig.inputs is not None
            and not sig.inputs.is_tensor_spec()
            and np is not None
            and isinstance(prediction, np.ndarray)
            and prediction.ndim == 1
        ):
            import pandas as pd

            prediction = pd.Series(prediction)
        sig.outputs = infer_signature(prediction).inputs
    except Exception as e:  # the user's model may raise anything; the signature is optional
        if os.environ.get("AUTOLOG_TESTING") == "1" and not isinstance(e, AutologError):
            raise
        warnings.warn(
            f"No output schema: predicting on the input example failed: {e}", stacklevel=3
        )
    return sig


def _requirements(
    flavor: Flavor, model: Any, pip_requirements: list[str] | None, extra: list[str] | None
) -> list[str]:
    if pip_requirements is not None:
        reqs = list(pip_requirements)
    else:
        reqs = [pin(d) for d in flavor.requirements_for(model)]
    for r in extra or ():
        if r not in reqs:
            reqs.append(r)
    return reqs


def _write_environment(path: Path, reqs: list[str]) -> None:
    py = _python_version()
    pip_v, setuptools_v = _dist_version("pip"), _dist_version("setuptools")
    (path / REQUIREMENTS_FILE).write_text("\n".join(reqs) + "\n", encoding="utf-8")
    build = [f"pip=={pip_v}" if pip_v else "pip"]
    build.append(f"setuptools=={setuptools_v}" if setuptools_v else "setuptools")
    build.append("wheel")
    lines = [f"python: {py}", "build_dependencies:"]
    lines += [f"- {b}" for b in build]
    lines += ["dependencies:", f"- -r {REQUIREMENTS_FILE}"]
    (path / PYTHON_ENV_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    conda = ["channels:", "- conda-forge", "dependencies:", f"- python={py}"]
    conda += [f"- pip<={pip_v}" if pip_v else "- pip", "- pip:"]
    conda += [f"  - {json.dumps(r)}" for r in reqs]
    conda += ["name: autolog-env"]
    (path / CONDA_ENV_FILE).write_text("\n".join(conda) + "\n", encoding="utf-8")


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def save_model(
    flavor: Flavor | str,
    model: Any,
    path: str | os.PathLike[str],
    signature: ModelSignature | None | bool = None,
    input_example: Any = None,
    *,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
) -> Model:
    """Write ``model`` as an MLmodel directory at ``path``.

    :param flavor: the :class:`Flavor` (or its name) that writes the native file.
    :param model: the native model object.
    :param path: a directory that does not exist yet, or is empty.
    :param signature: a :class:`ModelSignature`; ``None`` infers one from ``input_example``
        (outputs from a prediction on it); ``False`` writes none.
    :param input_example: a few rows of input, saved as ``input_example.json``.
    :param pip_requirements: replaces the flavor's pinned requirements.
    :param extra_pip_requirements: added to them.
    :param metadata: free-form dict written as ``metadata`` in MLmodel.
    :return: the :class:`Model` metadata written.
    :raises ModelError: when the directory is not empty or the flavor cannot save the model.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ModelError(f"{path} already exists and is not empty; save the model elsewhere")
    return _save_staged(
        staged_folder(path, path.parent, replace=False),
        path,
        False,
        _as_flavor(flavor),
        model,
        signature,
        input_example,
        pip_requirements,
        extra_pip_requirements,
        metadata,
        run_id,
        artifact_path,
    )[0]


def _save_staged(
    staging: AbstractContextManager[Path],
    path: Path,
    digest: bool,
    fl: Flavor,
    model: Any,
    *args: Any,
) -> tuple[Model, dict[str, str] | None]:
    """Save into the staged folder, which becomes ``path`` once complete.

    A process killed while saving leaves no half-written model at ``path``, only a
    ``.autolog-partial-*`` folder that the next save there removes once its process is dead
    (:mod:`store.artifacts.staging`). ``digest``: also return the SHA-256 of every file, taken
    of the complete folder before it is renamed into place.
    """
    try:
        with staging as work:
            mlmodel = _save(fl, model, work, *args)
            digests = model_trust.digests_of(work) if digest else None
    except ArtifactExistsError as e:
        raise ModelError(
            f"{path} was created by someone else while this model was saved ({e.__cause__ or e}); "
            "save the model elsewhere"
        ) from e
    return mlmodel, digests


def _save(
    fl: Flavor,
    model: Any,
    path: Path,
    signature: ModelSignature | None | bool,
    input_example: Any,
    pip_requirements: list[str] | None,
    extra_pip_requirements: list[str] | None,
    metadata: dict[str, Any] | None,
    run_id: str | None,
    artifact_path: str | None,
    model_id: str | None = None,
) -> Model:
    mlmodel = Model(
        run_id=run_id, artifact_path=artifact_path, metadata=metadata, model_id=model_id
    )
    if input_example is not None:
        try:
            payload, info = _example_payload(input_example)
        except (TypeError, ValueError) as e:
            warnings.warn(f"Input example not saved: {e}", stacklevel=3)
        else:
            text = json.dumps(payload, allow_nan=True)
            (path / INPUT_EXAMPLE_FILE).write_text(text, encoding="utf-8")
            mlmodel.saved_input_example_info = info
    if signature is None and input_example is not None:
        signature = _signature_from_example(fl, model, input_example)
    if isinstance(signature, ModelSignature):
        mlmodel.signature = signature
    elif signature not in (None, False):
        raise ModelError(f"signature must be a ModelSignature, None or False, not {signature!r}")

    try:
        conf = fl.save_native(model, path)
    except AutologError:
        raise
    except Exception as e:
        raise ModelError(f"The {fl.name} flavor could not save {type(model).__name__}: {e}") from e
    pyfunc: dict[str, Any] = {
        "loader_module": fl.mlflow_loader_module or __name__,
        "autolog_flavor": fl.name,
        "python_version": _python_version(),
        "env": {"conda": CONDA_ENV_FILE, "virtualenv": PYTHON_ENV_FILE},
    }
    if fl.name == PYFUNC:
        pyfunc.update(conf)
        flavors = {PYFUNC: pyfunc}
    else:
        pyfunc.update(fl.pyfunc_conf(conf))
        flavors = {PYFUNC: pyfunc, fl.name: conf}
    flavors.update(fl.extra_flavors(model, conf))
    mlmodel.flavors = flavors

    _write_environment(path, _requirements(fl, model, pip_requirements, extra_pip_requirements))
    mlmodel.model_size_bytes = _dir_size(path)
    mlmodel.save(path / MLMODEL_FILE)  # last: a directory with an MLmodel file is complete
    return mlmodel


def _as_flavor(flavor: Flavor | str) -> Flavor:
    if isinstance(flavor, Flavor):
        return flavor
    found = get_flavor(flavor)
    if found is None:
        raise ModelError(f"Unknown flavor {flavor!r}: no integrations.{flavor} module with FLAVOR")
    return found


def log_model(
    flavor: Flavor | str,
    model: Any,
    artifact_path: str | None = None,
    signature: ModelSignature | None | bool = None,
    input_example: Any = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Save ``model`` into the run's artifacts and record it on the run.

    Starts a run (left active) when none is active, as MLflow's fluent ``log_model`` does.

    :param flavor: the :class:`Flavor` (or its name).
    :param model: the native model object.
    :param artifact_path: where in the run's artifacts (default ``"model"``); ``name`` is
        MLflow 3's spelling of the same thing.
    :param signature: as for :func:`save_model`.
    :param input_example: as for :func:`save_model`.
    :param registered_model_name: also register the model under this name.
    :param run_id: log into this run instead of the active one.
    :return: a :class:`ModelInfo` whose ``model_uri`` is ``runs:/<run_id>/<artifact_path>``.
    """
    from autolog import tracking

    artifact_path = (name or artifact_path or "model").strip("/")
    run_id = run_id or tracking._ensure_run()
    client = tracking.Client()
    path = client.store.artifact_local_path(run_id, artifact_path)
    if path.exists() and any(path.iterdir()):
        raise ModelError(
            f"runs:/{run_id}/{artifact_path} already holds files; log the model under another "
            "artifact_path"
        )
    # the record first: the MLmodel file carries its id
    model_id = logged_models.create(client.store, run_id, artifact_path)
    try:
        # staged beside the run's artifact folder: never listed while incomplete, and a save
        # that loses the race for the path to another writer fails rather than replacing it
        mlmodel, digests = _save_staged(
            client.store.staged_artifact_dir(run_id, artifact_path, replace=False),
            path,
            True,
            _as_flavor(flavor),
            model,
            signature,
            input_example,
            pip_requirements,
            extra_pip_requirements,
            metadata,
            run_id,
            artifact_path,
            model_id,
        )
        sig = mlmodel.signature.to_dict() if mlmodel.signature else None
        client.store.record_model(
            mlmodel.model_uuid,
            run_id,
            artifact_path,
            list(mlmodel.flavors),
            int(time.time() * 1000),
            sig,
            files=digests,
            model_id=model_id,
        )
    except BaseException:
        logged_models.fail(client.store, model_id)
        raise
    logged_models.finish(client.store, model_id, run_id)
    history = [
        {
            "run_id": row["run_id"],
            "artifact_path": row["artifact_path"],
            "model_uuid": row["model_uuid"],
            **({"model_id": row["model_id"]} if row.get("model_id") else {}),
            "flavors": row["flavors"],
            "utc_time_created": str(
                _dt.datetime.fromtimestamp(row["created_time"] / 1000, _dt.timezone.utc).replace(
                    tzinfo=None
                )
            ),
        }
        for row in client.store.list_models(run_id)
    ]
    client.set_tag(run_id, LOG_MODEL_HISTORY_TAG, json.dumps(history))
    info = ModelInfo(
        model_uri=f"runs:/{run_id}/{artifact_path}",
        run_id=run_id,
        artifact_path=artifact_path,
        model_uuid=mlmodel.model_uuid,
        signature=mlmodel.signature,
        flavors=mlmodel.flavors,
        utc_time_created=mlmodel.utc_time_created,
        saved_input_example_info=mlmodel.saved_input_example_info,
        metadata=mlmodel.metadata,
        path=path,
        model_id=model_id,
    )
    if registered_model_name:
        try:
            registry = importlib.import_module("autolog.registry")
        except ImportError as e:
            raise ModelError(f"Cannot register {registered_model_name!r}: {e}") from e
        info.registered_model_version = registry.register_model(
            info.model_uri, registered_model_name
        )
    return info


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

        folder = tracking.Client().store.artifact_local_path(run_id, artifact_path)
        return folder, (run_id, artifact_path)
    if logged_models.is_logged_model_uri(text):
        from autolog import tracking

        store = tracking.Client().store
        run_id, artifact_path = logged_models.resolve_logged_model_uri(store, text)
        # vouched for by the digests recorded when it was logged, exactly as runs:/ is
        return store.artifact_local_path(run_id, artifact_path), (run_id, artifact_path)
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
