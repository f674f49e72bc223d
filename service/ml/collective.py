"""Training across processes: PyTorch DDP, one process (rank) per shard of the customers.

``clv train --nproc N`` starts N ranks through ``torchrun``; each reads only its shard of the
customers (a hash of the id, ``service.db.queries.Shard``) and builds their examples. What needs
every customer goes through this module, and only the small statistics do, never the events or the
examples: the earliest event, the BTYD summaries the baselines are fitted on (five numbers a
customer), the product catalogue and the profile vocabulary the feature pipeline is fitted on,
the scaler's sums, the held-out loss and level, the labels and predictions the metrics and the
selection are computed on (a few numbers a held-out customer). Gradients are averaged by DDP.
Every rank then holds the same statistics and takes the same decisions (early stopping, what
serves), so N ranks train the model one process would, up to the order of floating-point sums
and the shuffling of the minibatches.

Without a process group (one process: plain ``clv train``, the API's jobs, the learning loop)
every function here returns its input unchanged, so training has one code path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from numpy.typing import ArrayLike
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")

TIMEOUT = timedelta(minutes=10)
"""How long a rank waits for the others at a collective before failing: longer than any stage
a rank runs alone (building a window's examples), far shorter than torch's default 30 minutes,
so a rank that died leaves the others failing soon, not hanging."""


def active() -> bool:
    """Whether this process is one rank of several."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def launched() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when ``torchrun`` started this process as one rank of
    several (its environment), else None."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    return int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0"))


@contextmanager
def process_group(device: str) -> Iterator[None]:
    """Join the ranks ``torchrun`` started (gloo on the CPU, NCCL on CUDA) for the duration."""
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend, timeout=TIMEOUT)
    try:
        yield
        dist.barrier()  # leave together: a rank tearing down early aborted another's exit
    finally:
        dist.destroy_process_group()


def gathered(part: T) -> list[T]:
    """Every rank's ``part``, in rank order (any picklable value)."""
    if not active():
        return [part]
    parts: list[T | None] = [None] * world()
    dist.all_gather_object(parts, part)
    return parts  # type: ignore[return-value]


def concatenated(part: np.ndarray) -> np.ndarray:
    """Every rank's values, in rank order: for what does not depend on the order (quantiles,
    sums)."""
    return part if not active() else np.concatenate(gathered(part))


Keyed = TypeVar("Keyed", pd.Series, pd.DataFrame)


def by_customer(part: Keyed) -> Keyed:
    """Every rank's rows (indexed by customer; the ranks' customers are disjoint) in the order
    of their ids, the order one process has them in: metrics that sort customers by prediction
    break ties in this order, so N ranks compute them on the same sequence as one process."""
    every = part if not active() else pd.concat(gathered(part))
    return every.sort_index(kind="stable")


def total(values: ArrayLike) -> np.ndarray:
    """The element-wise sum over the ranks, in float64."""
    array = np.asarray(values, dtype=np.float64)
    if not active():
        return array
    tensor = torch.from_numpy(array.copy())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.numpy()


def largest(value: int) -> int:
    """The largest of the ranks' values."""
    if not active():
        return value
    tensor = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def earliest(moment: datetime) -> datetime:
    """The earliest of the ranks' moments (in the zone of this rank's)."""
    if not active():
        return moment
    return min(gathered(moment)).astimezone(moment.tzinfo)


def any_rank(flag: bool) -> bool:
    return bool(total(float(flag)) > 0)


def parallel(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` as the optimiser steps should call it: wrapped in DDP (gradients averaged over
    the ranks in the backward pass; the ranks start from rank 0's weights) when there are
    several ranks, itself otherwise."""
    if not active():
        return net
    return DistributedDataParallel(net)
