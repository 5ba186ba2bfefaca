"""fastai: the signature of a logged tabular Learner (integrations/fastai.py logs it)."""

from __future__ import annotations

import numbers
from typing import Any

_COLUMN_TYPES = ((bool, "boolean"), (numbers.Integral, "long"), (numbers.Real, "double"))


def signature(learn: Any, xb: Any) -> Any:
    """A tabular learner's: its raw columns in, one score per output out; else none (False).

    Input column types come from the procs (Categorify's classes); the output's width from the
    model's output on the first training batch seen (no batch is drawn again).
    """
    import numpy as np
    import torch

    from autolog.signature import ColSpec, ModelSignature, Schema, TensorSpec

    dls = learn.dls
    cats, conts = getattr(dls, "cat_names", None), getattr(dls, "cont_names", None)
    if cats is None or conts is None or not xb:
        return False
    classes = getattr(dls.train_ds, "classes", {}) or {}
    added = {f"{c}_na" for c in conts}  # FillMissing's flags: made again from the raw frame
    cols = [ColSpec(_category_type(classes.get(c)), c) for c in cats if c not in added]
    cols += [ColSpec("double", c) for c in conts]
    model = learn.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*xb)
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        return ModelSignature(Schema(cols), None)
    output = TensorSpec(np.dtype("float32"), (-1, *out.shape[1:]))
    return ModelSignature(Schema(cols), Schema([output]))


def _category_type(vocab: Any) -> str:
    """The type of a categorical column's raw values, from its first non-missing class."""
    for item in list(vocab or ())[1:2]:  # classes[0] is Categorify's '#na#'
        for cls, name in _COLUMN_TYPES:
            if isinstance(item, cls):
                return name
    return "string"
