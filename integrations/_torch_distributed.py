"""Distributed PyTorch (DDP, ``torchrun``, Lightning's ddp strategies): only global rank 0 logs.

The rank is torch.distributed's once a process group is initialized; before that, the ``RANK``
variable that ``torchrun`` (and Lightning's launchers) set, so a run is not started by a rank
that has not called ``init_process_group`` yet. Rank 0's run gets the params ``world_size`` and
``distributed_backend`` (the names of torch.distributed's ``get_world_size`` / ``get_backend``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

WORLD_SIZE = "world_size"
BACKEND = "distributed_backend"


def _dist() -> Any:
    """torch.distributed when a process group is initialized, else None (torch not imported:
    None, since no process group can exist)."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist


def rank() -> int:
    """This process's global rank (0 outside distributed training).

    Before init_process_group: ``RANK`` (torchrun); without it, a process that Lightning's ddp
    launcher started has ``LOCAL_RANK`` and ``NODE_RANK``, and only local rank 0 of node 0 is 0.
    """
    dist = _dist()
    if dist is not None:
        return int(dist.get_rank())
    env = os.environ
    if "RANK" in env:
        return _int(env["RANK"])
    return _int(env.get("NODE_RANK", "0")) * 1_000_000 + _int(env.get("LOCAL_RANK", "0"))


def _int(value: str) -> int:
    return int(value) if value.strip().isdigit() else 0


def is_secondary() -> bool:
    """A rank other than 0: it logs nothing."""
    return rank() != 0


def run_params() -> dict[str, Any]:
    """``world_size`` and ``distributed_backend`` of the initialized process group, else {}."""
    dist = _dist()
    if dist is None:
        return {}
    return {WORLD_SIZE: int(dist.get_world_size()), BACKEND: str(dist.get_backend())}
