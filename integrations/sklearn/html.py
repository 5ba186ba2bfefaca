"""estimator.html: scikit-learn's HTML diagram of the fitted estimator.

It is ``sklearn.utils.estimator_html_repr`` of a shallow copy of the estimator whose
"Fitted attributes" table lists what the fit stored, briefly (see :func:`html_view`).
"""

from __future__ import annotations

import copy
import itertools
import numbers
from typing import TYPE_CHECKING, Any

from integrations.sklearn.common import HTML_ARTIFACT, is_estimator, is_search

if TYPE_CHECKING:
    from store.sqlite import Store


def write_html_repr(store: Store, run_id: str, view: Any) -> None:
    """Write the diagram of ``view`` (from :func:`snapshot`); on the background thread."""
    from sklearn.utils import estimator_html_repr

    store.write_artifact_bytes(run_id, HTML_ARTIFACT, estimator_html_repr(view).encode("utf-8"))


def snapshot(est: Any) -> Any:
    """:func:`html_view` of ``est`` whose nested estimators (a Pipeline's steps, a search's
    ``estimator``) are shallow copies too, taken on the training thread in microseconds.

    The diagram is drawn later, on the background thread (``inspect.getdoc`` of every
    parameter and fitted attribute: ~66 M instructions on the GridSearchCV benchmark); a user
    who changes or refits the estimator, or its steps in place, after ``fit`` returned does not
    change the diagram of the fit that was logged.
    """
    view = html_view(est)
    _copy_params(view, est, 0)
    return view


def _copy_params(view: Any, est: Any, depth: int) -> None:
    """Replace, on ``view``, each parameter of ``est`` holding estimators by copies."""
    try:
        params = est.get_params(deep=False)
    except Exception:  # not a scikit-learn estimator after all: nothing nested to copy
        return
    for name, value in params.items():
        copied = _copied(value, depth)
        if copied is not value:
            setattr(view, name, copied)


def _copied(value: Any, depth: int) -> Any:
    """``value`` with every estimator in it (in lists and tuples too) a shallow copy."""
    if depth > 8:
        return value
    if is_estimator(value):
        view = copy.copy(value)
        _copy_params(view, value, depth + 1)
        return view
    if type(value) in (list, tuple):
        items = [_copied(v, depth + 1) for v in value]
        if any(a is not b for a, b in zip(items, value)):
            return items if type(value) is list else tuple(items)
    return value


def html_view(est: Any) -> Any:
    """A shallow copy of ``est`` whose HTML lists the fitted attributes it stores, not computed ones.

    scikit-learn >= 1.8 lists an estimator's fitted attributes in its HTML by reading every
    public attribute, properties included: a forest's ``estimators_samples_`` and
    ``feature_importances_`` go through all its trees again (about 65 ms for 100 trees on
    5,000 rows, 4% of that fit). Attributes stored by ``fit`` (``coef_``, ``classes_``,
    ``estimators_``, ...) are listed as scikit-learn lists them, and so are those of a search's
    ``best_estimator_``. Other nested estimators (Pipeline steps) are shown as scikit-learn
    shows them.
    """
    view = copy.copy(est)
    if not hasattr(type(est), "_get_fitted_attr_html"):
        return view
    try:
        from sklearn.utils._repr_html.fitted_attributes import AttrsDict
    except ImportError:
        return view
    stored = sorted(vars(est).items())
    best = vars(est).get("best_estimator_") if is_search(est) else None
    if is_estimator(best):  # shown in the search's diagram: listed the same way
        view.best_estimator_ = html_view(best)

    def stored_attributes(doc_link: str = "") -> Any:
        attrs: dict[str, dict[str, Any]] = {}
        for name, value in stored:
            if name.startswith("_") or not name.endswith("_"):
                continue
            if len(attrs) > 100:  # scikit-learn's own limit
                attrs["..."] = {"type_name": "...", "value": ""}
                break
            entry = {"type_name": type(value).__name__, "value": brief(value)}
            if (
                hasattr(value, "shape")
                and hasattr(value, "dtype")
                and not isinstance(value, numbers.Number)
            ):
                entry.update(shape=value.shape, dtype=value.dtype)
            attrs[name] = entry
        return AttrsDict(fitted_attrs=attrs, estimator_class=type(est), doc_link=doc_link)

    view._get_fitted_attr_html = stored_attributes  # an instance attribute hides the method
    return view


class _Brief:
    """A value for the HTML's fitted-attribute table that prints as a short summary."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def brief(value: Any, depth: int = 0) -> Any:
    """What scikit-learn's table shows of ``value`` (4 items, short strings), built cheaply.

    The table prints containers with ``reprlib`` (4 items each), but reprlib calls the full
    ``repr`` of anything else first: of each of a forest's first 4 trees or a search's
    ``best_estimator_`` (scikit-learn's pretty-printer, ~0.3 ms each) and of every array in
    ``cv_results_``. Numbers, strings and top-level arrays (which scikit-learn summarizes
    itself) pass through; estimators become ``Name(...)``; nested arrays ``array(shape, dtype)``;
    containers keep their first 5 items (the table shows 4 and an ellipsis).
    """
    if value is None or isinstance(value, (bool, int, float, str, bytes, numbers.Number)):
        return value
    if depth == 0 and hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _Brief(f"array(shape={tuple(value.shape)}, dtype={value.dtype})")
    if depth < 2 and type(value) in (list, tuple):
        items = [brief(v, depth + 1) for v in value[:5]]
        return items if type(value) is list else tuple(items)
    if depth < 2 and type(value) is dict:
        return {k: brief(v, depth + 1) for k, v in itertools.islice(value.items(), 5)}
    if hasattr(value, "get_params"):
        return _Brief(f"{type(value).__name__}(...)")
    if isinstance(value, (list, tuple, dict, set)):
        return _Brief(f"{type(value).__name__} of {len(value)}")
    return _Brief(f"<{type(value).__name__}>")
