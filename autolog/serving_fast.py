"""The fast path of ``POST /invocations``: one-type numeric ``dataframe_split`` JSON, no DataFrame.

Most scoring traffic is a few rows of numbers sent as ``DataFrame.to_dict(orient="split")``
to a model whose signature has only ``double`` (or only ``long``/``integer``) columns. The
general path (:func:`autolog.serving.parse_request`, then ``PyFuncModel.predict``) builds a
DataFrame from the JSON lists, casts each column, enforces the signature column by column and
hands the frame to the model, where scikit-learn validates it again. Measured in-process on
this project's 2-core machine (load about 3) for one row: 650 us to parse, 830 us to enforce
and predict with a LogisticRegression, against 150 us for the estimator's own ``predict`` on a
NumPy row; that gap is what capped the server at 1.6x MLflow's throughput.

Here the body is parsed once with the stdlib json, the rows become one NumPy array, and the
signature is checked by column names and the array's dtype. Whatever this path does not take
exactly as the general path would (another format or content type, ``params`` or ``index``,
a missing, extra or duplicate column, a string, boolean or null value, a fraction where an
integer is declared, ragged or empty rows, malformed JSON or UTF-8) returns ``None``, and the
general path answers it, so every 400 message stays the general path's own.

The model gets the array itself when, at start-up, a probe row showed that it predicts the
same on an array as on the signature-checked DataFrame (and its ``feature_names_in_``, if any,
are the signature's columns in order); otherwise it gets a DataFrame built from the array.
scikit-learn's "X does not have valid feature names" warning, which an estimator fitted on a
DataFrame gives for every array, is silenced for the process when that is the case.

Predictions normally run in a worker thread (so ``/ping`` answers and the timeout holds while
one runs), and the hop costs about 130 us a request here, as much as the LogisticRegression's
own ``predict``. So for the array flavors (whose ``predict`` is computation only, its time set
by the rows), a small request (at most :data:`INLINE_ROWS` rows) runs on the event loop itself
while, of the model's last :data:`INLINE_WINDOW` small predictions, at least 80% took under
:data:`INLINE_BUDGET_S` and none over :data:`INLINE_MAX_S` (on a loaded machine a few are slow
only because the process waited for a core). A model that stops keeping to that goes back to
threads at once, so the event loop is held at most about :data:`INLINE_MAX_S` by a model that
has just kept to it twenty times. Other flavors (a ``python_function`` model may call out and
hang) always predict in a thread.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import deque
from typing import Any

__all__ = ["FastPath", "fast_path"]

#: flavors whose native ``predict`` takes a 2-D array of the signature's columns
_ARRAY_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm"})
#: the content types this path takes (anything else: the general path decides)
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})
_FEATURE_NAMES_WARNING = "X does not have valid feature names"
#: requests of at most this many rows may be predicted on the event loop, while ...
INLINE_ROWS = 16
#: ... of the last INLINE_WINDOW small predictions, 80% took under INLINE_BUDGET_S ...
INLINE_WINDOW = 20
INLINE_BUDGET_S = 0.002
#: ... and none took longer than this
INLINE_MAX_S = 0.05


class FastPath:
    """Parses and predicts the requests described in the module docstring for one model."""

    def __init__(self, model: Any, names: list[str], target: str, array_ok: bool):
        import numpy as np

        self._np = np
        self._flavor = model.flavor
        self._native = model.unwrap_python_model()
        self.names = names
        self._name_set = frozenset(names)
        self._target = np.dtype(target)
        #: the model takes the NumPy array itself (else a DataFrame of it)
        self.array_ok = array_ok
        #: seconds the last small predictions took (appended to from worker threads too)
        self.recent: deque[float] = deque(maxlen=INLINE_WINDOW)

    def parse(self, body: bytes, content_type: bytes | None) -> Any:
        """The model input for ``body``, or ``None`` when the general path must answer."""
        if content_type is None or content_type.lower() not in _JSON_TYPES:
            return None
        if b"true" in body or b"false" in body:
            return None  # a boolean would become a number in one array; pandas keeps it apart
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if type(doc) is not dict or len(doc) != 1:
            return None
        split = doc.get("dataframe_split")
        if type(split) is not dict or len(split) != 2:
            return None
        columns, rows = split.get("columns"), split.get("data")
        if type(columns) is not list or type(rows) is not list or not rows:
            return None
        return self._array(columns, rows)

    def _array(self, columns: list, rows: list) -> Any:
        np = self._np
        try:
            if len(columns) != len(self.names) or set(columns) != self._name_set:
                return None  # missing, extra, duplicate or non-string columns
            arr = np.array(rows)
        except (ValueError, TypeError):
            return None
        if arr.ndim != 2 or arr.shape[1] != len(columns):
            return None
        kind = arr.dtype
        if kind == np.int64:
            pass
        elif kind != np.float64 or self._target.kind != "f":
            return None  # strings, nulls, huge integers; a fraction for an integer column
        if columns != self.names:
            arr = arr[:, [columns.index(n) for n in self.names]]
        if arr.dtype != self._target:
            arr = arr.astype(self._target)
        if self.array_ok:
            return arr
        import pandas as pd

        return pd.DataFrame(arr, columns=self.names)

    def inline(self, data: Any) -> bool:
        """Whether to predict ``data`` on the event loop (see the module docstring)."""
        if not self.array_ok or len(data) > INLINE_ROWS or len(self.recent) < INLINE_WINDOW:
            return False
        times = sorted(self.recent)
        return times[-1] < INLINE_MAX_S and times[INLINE_WINDOW * 4 // 5 - 1] < INLINE_BUDGET_S

    def predict(self, data: Any) -> Any:
        """The model's prediction on a :meth:`parse` result (the signature is already checked)."""
        if len(data) > INLINE_ROWS:
            return self._flavor.predict(self._native, data, None)
        t0 = time.perf_counter()
        try:
            return self._flavor.predict(self._native, data, None)
        finally:
            self.recent.append(time.perf_counter() - t0)


def fast_path(model: Any) -> FastPath | None:
    """The fast path for ``model``, or ``None`` when its signature or flavor rules it out."""
    schema = model.metadata.get_input_schema()
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    sig = model.metadata.signature
    if getattr(sig, "params", None):
        return None  # params take defaults the general path fills in
    pyfunc = model.metadata.flavors.get("python_function") or {}
    if (pyfunc.get("predict_fn") or "predict") != "predict":
        return None
    types = {getattr(s.type, "name", None) for s in schema.inputs}
    if len(types) != 1 or not types <= {"double", "long", "integer"}:
        return None  # float32: a NumPy row rounds through float64 first, pandas may not
    if not all(s.required for s in schema.inputs):
        return None
    names = [str(n) for n in schema.input_names()]
    if len(set(names)) != len(names):
        return None
    target = schema.inputs[0].type.value
    return FastPath(model, names, target, _takes_arrays(model, names, target))


def _takes_arrays(model: Any, names: list[str], target: str) -> bool:
    """Whether ``model`` predicts on an array exactly what it predicts on the checked frame."""
    import numpy as np
    import pandas as pd

    if model.flavor.name not in _ARRAY_FLAVORS:
        return False
    native = model.unwrap_python_model()
    fitted = getattr(native, "feature_names_in_", None)
    if fitted is not None and [str(n) for n in fitted] != names:
        return False
    row = np.zeros((1, len(names)), dtype=target)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            on_array = model.flavor.predict(native, row, None)
        on_frame = model.predict(pd.DataFrame(row, columns=names))
        same = _same(np.asarray(on_array), np.asarray(on_frame))
    except Exception:  # the model refuses arrays (a ColumnTransformer by name, ...)
        return False
    others = [w for w in seen if not str(w.message).startswith(_FEATURE_NAMES_WARNING)]
    if not same or others:
        return False
    if seen:
        warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING, category=UserWarning)
    return True


def _same(a: Any, b: Any) -> bool:
    import numpy as np

    floats = a.dtype.kind in "fc" and b.dtype.kind in "fc"
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=floats))
