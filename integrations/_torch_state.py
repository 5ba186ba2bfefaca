"""Plain PyTorch loops: the keys, the settings and the shared state that is never rebound
(thread state, DataLoader passes, the model search, the optimizer -> member map).

Split out of :mod:`integrations._torch_loop` (read its docstring first), which re-exports
these names; the state that install() and the hooks rebind stays there.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from autolog import patching
from integrations import _torch_distributed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from integrations._torch_member import _Member
    from integrations._torch_training import _Call, _Training


NAME = "torch"

# metric and param keys (a suffix _opt<i> / prefix optimizer<i>_ for the i-th optimizer, i >= 1)
LOSS = "train_loss"
LOSS_EPOCH = "train_loss_epoch"
LR = "lr"
STEPS = "num_steps"
EPOCHS = "num_epochs"
OPTIMIZER_NAME = "optimizer_name"
MODEL_CLASS = "model_class"
MODEL_PARAMS = "model_total_params"
MODEL_TRAINABLE = "model_trainable_params"
BATCH_SIZE = "batch_size"
SUMMARY_FILE = "model_summary.txt"
LOOP_TAG = "autolog.torch.loop"

DEFAULT_READ_INTERVAL = 100
READ_DELAY_S = 10.0  # also read when this long has passed since the last read
CONFIRM_STEPS = 10  # steps of a new optimizer, with none of the current training's, that confirm
SEARCH_CALLS = 64  # top-level module calls watched for a model before the search gives up
MODEL_WAIT_STEPS = 3  # steps a new training waits for its model's forward to be seen
MAX_UNASSIGNED = 1024  # losses kept from backward() calls that no optimizer step followed
_SKIP_GROUP_KEYS = ("params", "param_names")

_TENTATIVE, _ACTIVE, _ENDED = "tentative", "active", "ended"

_lock = threading.RLock()
_tentative: list[_Training] = []
_by_opt: weakref.WeakKeyDictionary[Any, _Member] = weakref.WeakKeyDictionary()
_hosted: set[str] = set()  # user runs that already hold a training
_ignored: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # exclusive=True


def _dead() -> None:
    """Stands for a dead weak reference."""
    return None


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.unassigned: list[Any] = []  # detached losses since the last optimizer step
        self.opt: Any = (
            _dead  # fast path: weak ref to the optimizer that stepped last, and its member
        )
        self.member: _Member | None = None
        self.scaled: tuple[Any, Any] | None = None  # (weakref to scaled loss, unscaled loss)
        self.gen = -1  # search generation seen by this thread
        self.depth = 0
        self.calls: list[_Call] = []
        self.parent = getattr(threading.current_thread(), "_autolog_parent_session", None)


_tl = _ThreadState()


class _DataLoaders:
    """Passes over DataLoaders: a counter per loader and which one was iterated last."""

    def __init__(self) -> None:
        self.seq = 0
        self.counts: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self.last: weakref.ref[Any] | None = None

    def started(self, loader: Any) -> None:
        self.counts[loader] = self.counts.get(loader, 0) + 1
        self.last = weakref.ref(loader)
        self.seq += 1


_dl = _DataLoaders()


class _Search:
    handles: tuple[Any, Any] | None = None
    budget = 0
    gen = 0
    wanted = 0  # members still waiting for their model
    examples = False


_search = _Search()


def _config() -> Any:
    from autolog.integration import config_for

    if _torch_distributed.is_secondary():
        return None  # distributed training: only global rank 0 starts trainings and logs
    return config_for(NAME)


def _report(exc: BaseException) -> None:
    cfg = None
    try:
        cfg = _config()
    except Exception:
        pass
    patching.report_error(NAME, exc, bool(cfg and cfg.silent))


_current_session = patching.current_session
# The hooks below run on every training step: they read the session variable directly (what
# patching.current_session() does, minus two calls); a thread started inside a session keeps
# its parent session in the thread state.
_session_get = patching._session.get


def _session_active() -> bool:
    return _current_session() is not None


def _quiet(tl: _ThreadState) -> bool:
    """Inside an autolog session (Lightning's fit, another integration's fit): stay quiet."""
    s = _session_get()
    if s is None:
        s = tl.parent
    return s is not None and s.active
