"""The MLmodel format: the Flavor API, the generic pickled flavor, and the MLmodel metadata.

Split out of :mod:`autolog.models` (which re-exports every name here); read that module's
docstring for the directory layout, MLflow interop and the trust rules.
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
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from autolog import model_trust
from autolog.errors import AutologError, ModelError, ModelLoadError
from autolog.model_trust import contained, pickle_bytes
from autolog.signature import ModelSignature, Schema

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


def _as_flavor(flavor: Flavor | str) -> Flavor:
    if isinstance(flavor, Flavor):
        return flavor
    found = get_flavor(flavor)
    if found is None:
        raise ModelError(f"Unknown flavor {flavor!r}: no integrations.{flavor} module with FLAVOR")
    return found
