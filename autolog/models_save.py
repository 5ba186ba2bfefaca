"""Saving models: MLmodel directories written in place or into a run's artifacts.

Split out of :mod:`autolog.models` (which re-exports :func:`save_model` and :func:`log_model`).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import sys
import time
import warnings
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from autolog import logged_models, model_trust
from autolog.errors import AutologError, ModelError
from autolog.models_format import (
    CONDA_ENV_FILE,
    INPUT_EXAMPLE_FILE,
    LOG_MODEL_HISTORY_TAG,
    MLMODEL_FILE,
    PYFUNC,
    PYTHON_ENV_FILE,
    REQUIREMENTS_FILE,
    Flavor,
    Model,
    ModelInfo,
    _as_flavor,
    _dist_version,
    _python_version,
    pin,
)
from autolog.signature import ModelSignature, infer_signature
from store.artifacts.staging import staged_folder
from store.base import run_or_defer
from store.errors import ArtifactExistsError


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
        # MLflow calls autolog.models._load_pyfunc (re-exported there from this split module)
        "loader_module": fl.mlflow_loader_module or "autolog.models",
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
    store = client.store
    try:
        path = _empty_artifact_path(store, run_id, artifact_path)
    except ModelError:
        raise
    except Exception:  # storage unreadable: the model will not be there, and the run says so
        from store.artifacts.s3 import record_missing

        record_missing(store, run_id, [artifact_path])
        raise
    # the record first: the MLmodel file carries its id
    model_id = logged_models.create(store, run_id, artifact_path)
    save_args = (signature, input_example, pip_requirements, extra_pip_requirements, metadata)
    try:
        mlmodel = _save_and_record(
            store, path, _as_flavor(flavor), model, save_args, run_id, artifact_path, model_id
        )
    except BaseException:
        logged_models.fail(store, model_id)
        raise
    logged_models.finish(store, model_id, run_id)
    run_or_defer(store, _tag_model_history, store, run_id)
    info = _logged_info(mlmodel, run_id, artifact_path, path, model_id)
    if registered_model_name:
        info.registered_model_version = _register(info.model_uri, registered_model_name)
    return info


def _logged_info(
    mlmodel: Model, run_id: str, artifact_path: str, path: Path, model_id: str
) -> ModelInfo:
    return ModelInfo(
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


def fresh_artifact_path(store: Any, run_id: str, artifact_path: str) -> Path | None:
    """The local folder of an artifact path known to be empty without asking anyone, or None.

    A REST store answers for a run its client created in a deferring block (an autologged fit)
    without asking the server: nothing else writes into a run that new, and the staged upload
    refuses a clash. Other stores answer None (look at the folder)."""
    fresh = getattr(store, "fresh_artifact_path", None)
    path = fresh(run_id, artifact_path) if fresh is not None else None
    return Path(path) if path is not None else None


def _empty_artifact_path(store: Any, run_id: str, artifact_path: str) -> Path:
    """The local folder of ``runs:/<run_id>/<artifact_path>``, refused if it holds files."""
    if (path := fresh_artifact_path(store, run_id, artifact_path)) is not None:
        return path
    path = store.artifact_local_path(run_id, artifact_path)
    if path.exists() and any(path.iterdir()):
        raise ModelError(
            f"runs:/{run_id}/{artifact_path} already holds files; log the model under another "
            "artifact_path"
        )
    return path


def _save_and_record(
    store: Any,
    path: Path,
    fl: Flavor,
    model: Any,
    save_args: tuple[Any, ...],
    run_id: str,
    artifact_path: str,
    model_id: str,
) -> Model:
    """Save the model into the run's artifacts, then record it (and its file digests)."""
    # staged beside the run's artifact folder: never listed while incomplete, and a save
    # that loses the race for the path to another writer fails rather than replacing it
    mlmodel, digests = _save_staged(
        store.staged_artifact_dir(run_id, artifact_path, replace=False),
        path,
        True,
        fl,
        model,
        *save_args,
        run_id,
        artifact_path,
        model_id,
    )
    sig = mlmodel.signature.to_dict() if mlmodel.signature else None
    store.record_model(
        mlmodel.model_uuid,
        run_id,
        artifact_path,
        list(mlmodel.flavors),
        int(time.time() * 1000),
        sig,
        files=digests,
        model_id=model_id,
    )
    return mlmodel


def _tag_model_history(store: Any, run_id: str) -> None:
    store.set_tag(run_id, LOG_MODEL_HISTORY_TAG, json.dumps(_model_history(store, run_id)))


def _model_history(store: Any, run_id: str) -> list[dict[str, Any]]:
    """The value of the ``mlflow.log-model.history`` tag: every model logged in the run."""
    return [
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
        for row in store.list_models(run_id)
    ]


def _register(model_uri: str, registered_model_name: str) -> Any:
    """The model version registering ``model_uri`` under ``registered_model_name`` creates."""
    try:
        registry = importlib.import_module("autolog.registry")
    except ImportError as e:
        raise ModelError(f"Cannot register {registered_model_name!r}: {e}") from e
    return registry.register_model(model_uri, registered_model_name)
