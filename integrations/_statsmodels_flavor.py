"""statsmodels: the model flavor, time-series forecasts, and the signature and input example
of an autologged model.

Split out of :mod:`integrations.statsmodels`, which imports this module (never the reverse)
and re-exports its public names.
"""

from __future__ import annotations

import pickle
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from autolog import models
from autolog.errors import ModelError
from integrations._statsmodels_artifacts import _is_time_series

MODEL_ARTIFACT_PATH = "model"


MODEL_FILE = "model.statsmodels"  # MLflow's name, so mlflow.statsmodels loads our models


def _is_results(obj: Any) -> bool:
    return hasattr(obj, "model") and (hasattr(obj, "params") or hasattr(obj, "predict"))


class StatsmodelsFlavor(models.Flavor):
    """A fitted results object, pickled by statsmodels' own ``save`` (its native format).

    :param remove_data: save a copy without the training data (``results.remove_data()``);
        the user's results object is left untouched.
    """

    name = "statsmodels"
    requirements = ("statsmodels", "numpy", "pandas", "scipy")
    mlflow_loader_module = "mlflow.statsmodels"

    def __init__(self, remove_data: bool = False):
        self.remove_data = remove_data

    def save_native(self, model: Any, path: Path) -> dict[str, Any]:
        import statsmodels

        if not _is_results(model):
            raise ModelError(
                f"The statsmodels flavor saves fitted results (what model.fit() returns), not "
                f"{type(model).__name__}"
            )
        file = path / MODEL_FILE
        target = model
        if self.remove_data:  # remove_data() works in place: do it on a copy
            target = _loads(_dumps(model)[0])
            target.remove_data()
        try:
            target.save(str(file))  # statsmodels' own save: a pickle
            fmt = "pickle"
        except (pickle.PicklingError, AttributeError, TypeError):
            # A model class defined inside a function cannot be pickled by reference.
            file.write_bytes(_dumps(target)[0])
            fmt = "cloudpickle"
        inner = getattr(model, "_results", model)
        return {
            "data": MODEL_FILE,
            "code": None,
            "statsmodels_version": statsmodels.__version__,
            "serialization_format": fmt,
            "remove_data": bool(self.remove_data),
            "model_class": f"{type(model.model).__module__}.{type(model.model).__name__}",
            "results_class": f"{type(inner).__module__}.{type(inner).__name__}",
            "predict_input": "steps_or_time_index" if _is_time_series(model.model) else "exog",
        }

    def load_native(self, path: Path, conf: dict[str, Any]) -> Any:
        # statsmodels' load_pickle is pickle.load; cloudpickle's output is a pickle too. The
        # bytes come through autolog's pickle gate.
        return pickle.loads(models.pickle_bytes(path, conf["data"]))

    def predict(self, native: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
        if _is_time_series(native.model):
            return forecast(native, data)
        return native.predict(data)

    def pyfunc_conf(self, conf: dict[str, Any]) -> dict[str, Any]:
        return {"data": conf["data"]}

    def requirements_for(self, model: Any) -> list[str]:
        reqs = list(self.requirements)
        if isinstance(getattr(getattr(model, "model", None), "formula", None), str):
            try:
                from statsmodels.formula._manager import FormulaManager

                reqs.append(FormulaManager().engine)
            except Exception:
                reqs.append("patsy")
        return reqs


FLAVOR = models.register_flavor(StatsmodelsFlavor())


def _dumps(obj: Any) -> tuple[bytes, str]:
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), "pickle"
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle

        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), "cloudpickle"


def _loads(data: bytes) -> Any:
    return pickle.loads(data)  # cloudpickle's output is read by pickle (cloudpickle installed)


def forecast(results: Any, data: Any) -> Any:
    """Predict with a time-series results object.

    ``data`` is one of: a number of steps (int) -> ``results.forecast(steps)``; a frame with
    ``start`` and ``end`` columns (MLflow's convention) -> ``results.predict(start, end)``; a
    DataFrame or Series whose index holds the time points -> ``results.predict(start=first,
    end=last)``, its columns being the future exogenous values for models with exog.
    """
    import numpy as np

    pd = sys.modules.get("pandas")
    model = results.model
    has_exog = getattr(model, "exog", None) is not None and bool(getattr(model, "k_exog", 0))
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        steps = int(data)
        var = sys.modules.get("statsmodels.tsa.vector_ar.var_model")
        if var is not None and isinstance(model, var.VAR):  # forecasts from the last lags
            return results.forecast(np.asarray(model.endog)[-results.k_ar :], steps)
        if not hasattr(results, "forecast"):  # VECM
            return results.predict(steps=steps)
        return results.forecast(steps=steps)
    if isinstance(data, np.ndarray) and data.ndim == 0:
        return forecast(results, int(data))
    if pd is not None and isinstance(data, (pd.DataFrame, pd.Series)):
        frame = data.to_frame() if isinstance(data, pd.Series) else data
        if {"start", "end"} <= set(frame.columns) and len(frame) >= 1:
            row = frame.iloc[0]
            return results.predict(start=row["start"], end=row["end"])
        if frame.empty and not len(frame.index):
            raise ModelError("Nothing to predict: the frame has no rows")
        exog = frame if has_exog and len(frame.columns) else None
        return results.predict(start=frame.index[0], end=frame.index[-1], exog=exog)
    if has_exog:
        arr = np.asarray(data)
        return results.forecast(steps=len(arr), exog=arr)
    raise ModelError(
        f"A time-series model predicts from a number of steps (int), a frame with start/end "
        f"columns, or a frame indexed by the time points to predict; got {type(data).__name__}"
    )


# -- signature and input example ----------------------------------------------------------------

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*|'[^']*'|\"[^\"]*\"")


def model_input_example(model: Any, rows: int = 5) -> Any:
    """A few rows of what ``predict`` takes: the formula's columns, or exog; None for time series."""
    if _is_time_series(model):
        return None
    data = model.data
    frame = getattr(data, "frame", None)
    formula = getattr(model, "formula", None)
    if frame is not None and isinstance(formula, str) and hasattr(frame, "columns"):
        rhs = formula.split("~", 1)[-1]
        tokens = {t.strip("'\"") for t in _NAME_RE.findall(rhs)}
        cols = [c for c in frame.columns if str(c) in tokens]
        return frame[cols].head(rows) if cols else None
    orig = getattr(data, "orig_exog", None)
    if orig is not None and hasattr(orig, "iloc"):
        return orig.head(rows) if hasattr(orig, "head") else orig.iloc[:rows]
    exog = getattr(model, "exog", None)
    if exog is None:
        return None
    return exog[:rows]


def _signature_and_example(model: Any, results: Any, config: Any) -> tuple[Any, Any]:
    """(signature or False, input example or None) for models that predict from tabular exog."""
    from autolog.errors import AutologError
    from autolog.signature import infer_signature

    if not (config.log_model_signatures or config.log_input_examples):
        return False, None
    example = model_input_example(model)
    if example is None:
        return False, None
    signature: Any = False
    if config.log_model_signatures:
        try:
            signature = infer_signature(example, _prediction_example(results, example))
        except AutologError:  # an exog no schema describes: the model is logged without one
            signature = False
    return signature, example if config.log_input_examples else None


def _prediction_example(results: Any, example: Any) -> Any:
    """results.predict on the example when it is an array or frame of numbers, else None."""
    import numpy as np

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prediction = results.predict(example)
    except Exception:  # the output schema is optional
        return None
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(prediction, pd.DataFrame):
        return prediction
    if not hasattr(prediction, "dtype"):  # e.g. PHReg's PredictionResults
        return None
    arr = np.asarray(prediction)
    return arr if arr.ndim >= 1 and arr.dtype.kind in "biuf" else None


def _log_autolog_model(model: Any, results: Any, run_id: str, config: Any) -> None:
    signature, example = _signature_and_example(model, results, config)
    models.log_model(
        StatsmodelsFlavor(remove_data=bool(config.get("remove_data", False))),
        results,
        MODEL_ARTIFACT_PATH,
        signature=signature,
        input_example=example,
        registered_model_name=config.registered_model_name,
        run_id=run_id,
    )
