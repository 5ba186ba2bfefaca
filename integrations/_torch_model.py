"""How a trained ``nn.Module`` is saved without pickle and rebuilt: the constructor recipe.

While the torch integration is enabled, ``nn.Module.__init__`` is wrapped: when a module is
constructed, the arguments of the outermost ``__init__`` of that object (the call the user
wrote, ``Net(hidden=64)``) are remembered in a weak dictionary. When the model is saved, the
recipe is written as JSON (``model_spec.json``): the class's import path and the arguments,
where arguments may be JSON values, tuples, dicts, other modules (their own recipes), torch
dtypes and devices, tensors (saved beside it and loaded with ``weights_only=True``), enum
members, dataclass instances, and classes or functions found by import path.

The recipe is checked before it is written: the model is rebuilt from the JSON on the ``meta``
device (no memory, no initialisation) and its ``state_dict`` keys and shapes must equal the
trained model's. A module created before autolog was enabled, by ``copy.deepcopy`` or by
unpickling, or whose structure was changed after construction (a replaced head), has no valid
recipe; see ``integrations.torch`` for what is saved then.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import math
import numbers
import random
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

SPEC_VERSION = 1
MARK = "__autolog__"  # key of the dicts that encode a non-JSON value

# id(module) -> (weak reference, args, kwargs). Keyed by identity, not by a WeakKeyDictionary:
# modules may define __hash__/__eq__ over state that does not exist yet (torchmetrics).
_recipes: dict[int, tuple[weakref.ref[Any], tuple, dict]] = {}
_original_init: Any = None
_on_construct: list[Callable[[], None]] = []
_lock = threading.Lock()


class RecipeError(Exception):
    """The model cannot be rebuilt from a recipe (the message says why)."""


# -- capturing constructor arguments ------------------------------------------------------

_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08


def _capture(module: Any, frame: Any) -> None:
    """Remember the arguments of the outermost ``__init__`` frame running for ``module``."""
    outer: Any = None
    f = frame
    while f is not None and f.f_code.co_name == "__init__":
        c = f.f_code
        if c.co_argcount == 0 or f.f_locals.get(c.co_varnames[0]) is not module:
            break
        outer = f
        f = f.f_back
    init = getattr(type(module), "__init__", None)
    if outer is None:
        if getattr(init, "_autolog_recipe", False):  # no __init__ of its own: built with no args
            _remember(module, (), {})
        return
    code: Any = outer.f_code
    if getattr(init, "__code__", None) is not code:
        return
    code = outer.f_code  # (re-read: the identity test above narrows the type for mypy)  # a decorated or generated __init__: its frame does not show the user's call
    loc = outer.f_locals
    n = code.co_argcount + code.co_kwonlyargcount
    names = code.co_varnames
    args = [loc[name] for name in names[1 : code.co_argcount]]
    kwargs = {name: loc[name] for name in names[code.co_argcount : n]}
    extra = n
    if code.co_flags & _CO_VARARGS:
        args.extend(loc[names[extra]])
        extra += 1
    if code.co_flags & _CO_VARKEYWORDS:
        kwargs.update(loc[names[extra]])
    _remember(module, tuple(args), kwargs)


def _remember(module: Any, args: tuple, kwargs: dict) -> None:
    key = id(module)
    _recipes[key] = (weakref.ref(module, lambda _r: _recipes.pop(key, None)), args, kwargs)


def _recipe(module: Any) -> tuple[tuple, dict] | None:
    entry = _recipes.get(id(module))
    if entry is None or entry[0]() is not module:
        return None
    return entry[1], entry[2]


def _init_wrapper(original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            _capture(self, sys._getframe(1))
            for callback in _on_construct:
                callback()
        except Exception:  # a recipe is optional; construction must never fail because of it
            _recipes.pop(id(self), None)
        original(self, *args, **kwargs)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    __init__._autolog_recipe = True  # type: ignore[attr-defined]
    return __init__


def install() -> None:
    """Wrap ``nn.Module.__init__`` so modules built from now on remember their arguments."""
    global _original_init
    import torch

    with _lock:
        current = torch.nn.Module.__dict__["__init__"]
        if getattr(current, "_autolog_recipe", False):
            return
        _original_init = current
        torch.nn.Module.__init__ = _init_wrapper(current)  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore ``nn.Module.__init__`` (when it is still our wrapper)."""
    global _original_init
    torch = sys.modules.get("torch")
    with _lock:
        if torch is None or _original_init is None:
            return
        if getattr(torch.nn.Module.__dict__.get("__init__"), "_autolog_recipe", False):
            torch.nn.Module.__init__ = _original_init  # type: ignore[method-assign]
        _original_init = None


def has_recipe(module: Any) -> bool:
    return _recipe(module) is not None


# -- import paths ---------------------------------------------------------------------------


def import_path(obj: Any) -> str:
    """``module:qualname`` of a class or function that can be found again by import."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise RecipeError(f"{obj!r} is defined inside a function and cannot be found by import")
    try:
        found = resolve(f"{module}:{qualname}")
    except Exception:
        found = None
    if found is not obj:
        raise RecipeError(f"{module}.{qualname} does not resolve to {obj!r} by import")
    return f"{module}:{qualname}"


def resolve(path: str) -> Any:
    """The object at ``module:qualname`` (imports the module)."""
    module_name, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# -- encoding -------------------------------------------------------------------------------


class _Encoder:
    """Turns constructor arguments into JSON; tensors go to a side list."""

    def __init__(self) -> None:
        self.tensors: list[Any] = []
        self.classes: set[str] = set()

    def module(self, module: Any) -> dict[str, Any]:
        entry = _recipe(module)
        if entry is None:
            raise RecipeError(
                f"{type(module).__name__} was created before autolog was enabled, or by copying "
                "or unpickling, so its constructor arguments are unknown"
            )
        path = import_path(type(module))
        self.classes.add(path)
        args, kwargs = entry
        return {
            "class": path,
            "args": [self.value(a) for a in args],
            "kwargs": {str(k): self.value(v) for k, v in kwargs.items()},
        }

    def value(self, v: Any) -> Any:
        import torch

        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int) and not isinstance(v, enum.Enum):
            return int(v)
        if isinstance(v, float):
            return v if math.isfinite(v) else {MARK: "float", "value": repr(v)}
        if isinstance(v, enum.Enum):
            path = import_path(type(v))
            self.classes.add(path)
            return {MARK: "enum", "class": path, "name": v.name}
        if isinstance(v, numbers.Integral):
            return int(v)
        if isinstance(v, numbers.Real):
            return self.value(float(v))
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, tuple) and not hasattr(v, "_fields"):
            return {MARK: "tuple", "items": [self.value(x) for x in v]}
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise RecipeError("a dict argument with non-string keys cannot be recorded")
            return {MARK: "dict", "items": {k: self.value(x) for k, x in v.items()}}
        if isinstance(v, torch.nn.Module):
            return {MARK: "module", "spec": self.module(v)}
        if isinstance(v, torch.dtype):
            return {MARK: "dtype", "name": str(v).removeprefix("torch.")}
        if isinstance(v, torch.device):
            return {MARK: "device", "name": str(v)}
        if isinstance(v, torch.Tensor):
            self.tensors.append(v.detach().cpu().clone())
            return {MARK: "tensor", "index": len(self.tensors) - 1}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            path = import_path(type(v))
            self.classes.add(path)
            fields = {
                f.name: self.value(getattr(v, f.name)) for f in dataclasses.fields(v) if f.init
            }
            return {MARK: "dataclass", "class": path, "fields": fields}
        if isinstance(v, type) or (callable(v) and hasattr(v, "__qualname__")):
            path = import_path(v)
            self.classes.add(path)
            return {MARK: "import", "path": path}
        raise RecipeError(f"a constructor argument of type {type(v).__name__} cannot be recorded")


def make_spec(model: Any) -> tuple[dict[str, Any], list[Any]]:
    """(the JSON recipe of ``model``, the tensors it refers to by index).

    :raises RecipeError: when an argument cannot be recorded or a class cannot be imported.
    """
    enc = _Encoder()
    spec = enc.module(model)
    return {
        "format": "autolog.torch.recipe",
        "version": SPEC_VERSION,
        "model": spec,
        "classes": sorted(enc.classes),
        "tensors": len(enc.tensors),
    }, enc.tensors


def spec_to_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=1, allow_nan=False)


# -- decoding -------------------------------------------------------------------------------


def _allowed_import(path: str, obj: Any, root: str) -> bool:
    """Recipes may name nn.Module classes, torch objects and objects of the model's package."""
    import torch

    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        return True
    top = path.split(":", 1)[0].split(".", 1)[0]
    return top in ("torch", root)


class _Decoder:
    def __init__(self, tensors: list[Any], root: str):
        self.tensors = tensors
        self.root = root

    def module(self, spec: dict[str, Any]) -> Any:
        import torch

        cls = resolve(spec["class"])
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise RecipeError(f"{spec['class']} is not an nn.Module class")
        args = [self.value(a) for a in spec.get("args", [])]
        kwargs = {k: self.value(v) for k, v in spec.get("kwargs", {}).items()}
        return cls(*args, **kwargs)

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        kind = v.get(MARK)
        if kind == "float":
            return float(v["value"])
        if kind == "tuple":
            return tuple(self.value(x) for x in v["items"])
        if kind == "dict":
            return {k: self.value(x) for k, x in v["items"].items()}
        if kind == "module":
            return self.module(v["spec"])
        if kind == "dtype":
            import torch

            dtype = getattr(torch, v["name"])
            if not isinstance(dtype, torch.dtype):
                raise RecipeError(f"{v['name']!r} is not a torch dtype")
            return dtype
        if kind == "device":
            import torch

            return torch.device(v["name"])
        if kind == "tensor":
            return self.tensors[v["index"]]
        if kind == "enum":
            cls = resolve(v["class"])
            if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
                raise RecipeError(f"{v['class']} is not an Enum")
            return cls[v["name"]]
        if kind == "dataclass":
            cls = resolve(v["class"])
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise RecipeError(f"{v['class']} is not a dataclass")
            return cls(**{k: self.value(x) for k, x in v["fields"].items()})
        if kind == "import":
            obj = resolve(v["path"])
            if not _allowed_import(v["path"], obj, self.root):
                raise RecipeError(
                    f"The recipe names {v['path']}; only nn.Module classes, torch objects and "
                    f"objects of the model's own package ({self.root}) are imported"
                )
            return obj
        raise RecipeError(f"Unknown recipe value {v!r}")


def build(spec: dict[str, Any], tensors: list[Any]) -> Any:
    """Construct the model a recipe describes (weights as its constructor initialises them)."""
    model_spec = spec["model"]
    root = model_spec["class"].split(":", 1)[0].split(".", 1)[0]
    return _Decoder(tensors, root).module(model_spec)


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if hasattr(v, "shape")}


# recipe JSON (+ tensor shapes) -> state_dict shapes of the model it builds: a sweep over one
# architecture checks it once.
_verified: dict[tuple[str, tuple, tuple], dict[str, tuple[int, ...]]] = {}


def _build_on_meta(spec: dict[str, Any], tensors: list[Any], text: str) -> Any:
    import torch

    state = torch.random.get_rng_state()
    py_state = random.getstate()
    np = sys.modules.get("numpy")
    np_state = np.random.get_state() if np is not None else None
    try:
        with torch.device("meta"):
            return build(json.loads(text), tensors)
    except RecipeError:
        raise
    except Exception as e:
        raise RecipeError(
            f"rebuilding {spec['model']['class']} from its recorded arguments failed: "
            f"{type(e).__name__}: {e}"
        ) from e
    finally:
        torch.random.set_rng_state(state)
        random.setstate(py_state)
        if np is not None:
            np.random.set_state(np_state)


def verify(model: Any, spec: dict[str, Any], tensors: list[Any]) -> None:
    """Rebuild on the meta device and compare state_dict keys and shapes with ``model``.

    Random number generators are restored afterwards, so the check never changes what the
    user's script draws next.

    :raises RecipeError: naming the first difference.
    """
    text = spec_to_json(spec)
    classes = tuple(id(resolve(path)) for path in spec.get("classes", []))  # redefined: new ids
    key = (text, classes, tuple((tuple(t.shape), str(t.dtype)) for t in tensors))
    got = _verified.get(key)
    if got is None:
        got = _shapes(_build_on_meta(spec, tensors, text))
        if len(_verified) >= 64:
            _verified.pop(next(iter(_verified)))
        _verified[key] = got
    want = _shapes(model)
    if want != got:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        changed = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {extra[:3]}"
            if extra
            else f"shape of {changed[0]} is {got[changed[0]]}, trained {want[changed[0]]}"
        )
        raise RecipeError(
            "the model was changed after it was constructed (rebuilding it from its constructor "
            f"arguments gives a different structure: {detail})"
        )


def uses_main(spec: dict[str, Any]) -> bool:
    """Whether the recipe names something defined in the running script (``__main__``)."""
    return any(p.split(":", 1)[0] == "__main__" for p in spec.get("classes", []))
