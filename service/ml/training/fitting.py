"""Fitting the network: minibatch AdamW on the training customers, early stopping on the
held-out ones."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from service.ml import collective
from service.ml.clv_model import ClvModel
from service.ml.examples import Examples
from service.ml.losses import ziln_initial_logits, ziln_loss
from service.ml.nets import output_layer
from service.ml.training.config import (
    DataTooShortError,
    Progress,
    TrainConfig,
    TrainingCancelledError,
)
from service.ml.training.report import Epoch

Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Tensors:
    """Examples as the network takes them: (n, length, channels) event sequences, (n, features)
    scaled tabular features, (n,) labels."""

    sequences: torch.Tensor
    tabular: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def of(cls, model: ClvModel, examples: list[Examples]) -> Tensors:
        return cls(
            torch.as_tensor(np.concatenate([e.sequences for e in examples])),
            torch.cat([model.tabular_tensor(e.tabular) for e in examples]),
            torch.as_tensor(np.concatenate([e.labels for e in examples])),
        )


@dataclass
class _Best:
    """The lowest held-out loss so far, the weights that gave it and the epochs since."""

    loss: float = math.inf
    weights: Weights | None = None
    waited: int = 0

    def record(self, net: torch.nn.Module, loss: float, config: TrainConfig) -> bool:
        """Keep ``net``'s weights when ``loss`` beats the best by ``min_improvement``; True when
        ``patience`` epochs in a row have not: training should stop."""
        if loss < self.loss - config.min_improvement:
            self.loss, self.weights, self.waited = loss, _copy(net), 0
            return False
        self.waited += 1
        return self.waited >= config.patience


def fit_network(
    model: ClvModel,
    training: list[Examples],
    validation: list[Examples],
    config: TrainConfig,
    report: Progress,
    cancelled: Callable[[], bool] | None,
    *,
    warm: bool,
) -> list[Epoch]:
    """Minibatch AdamW with early stopping on the held-out customers; ``model.net`` ends with
    the best epoch's weights. A warm start keeps the output layer it was given (re-initialising
    it would throw away what the weights know) and keeps its starting weights unless an epoch
    beats them on the held-out customers."""
    net = model.net
    train_set, held_set = Tensors.of(model, training), Tensors.of(model, validation)
    if not warm:
        every_label = torch.as_tensor(collective.concatenated(train_set.labels.numpy()))
        with torch.no_grad():
            output_layer(net).bias.copy_(ziln_initial_logits(every_label))
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    # a warm start's weights are a candidate too: fine-tuning must beat them
    best = _Best(_loss(net, held_set, config), _copy(net)) if warm else _Best()
    history: list[Epoch] = []
    stepping = collective.parallel(net)  # DDP when there are several ranks
    for epoch in range(1, config.epochs + 1):
        if cancelled and cancelled():
            raise TrainingCancelledError("training was cancelled")
        train_loss = _epoch(stepping, optimizer, train_set, generator, config)
        history.append(Epoch(epoch, train_loss, _loss(net, held_set, config)))
        report(
            f"epoch {epoch}: validation loss {history[-1].validation_loss:.4f}",
            0.3 + 0.65 * epoch / config.epochs,
        )
        if best.record(net, history[-1].validation_loss, config):
            break
    if best.weights is not None:
        net.load_state_dict(best.weights)
    return history


def _epoch(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Tensors,
    generator: torch.Generator,
    config: TrainConfig,
) -> float:
    """One pass over ``data`` in minibatches shuffled by ``generator``; the mean training loss
    over every rank's rows. With several ranks each takes its share of a ``batch_size`` batch,
    and all take as many steps as the rank with the most rows needs (DDP averages the gradients
    of each step over the ranks, so they step together); a rank that runs out of rows first
    goes on with a fresh shuffle of its own."""
    net.train()
    rows = -(-config.batch_size // collective.world())  # this rank's share of a batch
    steps = collective.largest(-(-len(data.labels) // rows))
    order = _shuffled(len(data.labels), (steps - 1) * rows + 1, generator)
    total, count = 0.0, 0
    for step in range(steps):
        batch = order[step * rows : (step + 1) * rows]
        total += _step(net, optimizer, data, batch, config) * len(batch)
        count += len(batch)
    total, count = collective.total([total, count])
    return float(total / count)


def _shuffled(rows: int, at_least: int, generator: torch.Generator) -> torch.Tensor:
    """A random order of ``rows`` row numbers, followed by further ones until there are
    ``at_least`` (one order, unless this rank has fewer rows than another)."""
    if not rows:
        raise DataTooShortError(
            f"rank {collective.rank()} of {collective.world()} has no training examples; train "
            "with fewer processes"
        )
    orders = [torch.randperm(rows, generator=generator)]
    while sum(len(o) for o in orders) < at_least:
        orders.append(torch.randperm(rows, generator=generator))
    return torch.cat(orders)


def _step(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Tensors,
    batch: torch.Tensor,
    config: TrainConfig,
) -> float:
    """One optimiser step on the rows ``batch``, the gradient norm clipped at
    ``gradient_clip_norm``; the batch's mean loss."""
    optimizer.zero_grad()
    logits = net(data.sequences[batch].to(config.device), data.tabular[batch].to(config.device))
    loss = ziln_loss(data.labels[batch].to(config.device), logits).mean()
    loss.backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(net.parameters(), config.gradient_clip_norm)
    optimizer.step()
    return loss.item()


@torch.no_grad()
def _loss(net: torch.nn.Module, data: Tensors, config: TrainConfig) -> float:
    """The mean loss on ``data``, ``evaluation_batch_size`` rows per forward pass."""
    net.eval()
    total, size = 0.0, config.evaluation_batch_size
    for start in range(0, len(data.labels), size):
        rows = slice(start, start + size)
        logits = net(data.sequences[rows].to(config.device), data.tabular[rows].to(config.device))
        total += float(ziln_loss(data.labels[rows].to(config.device), logits).sum())
    total, count = collective.total([total, len(data.labels)])  # every rank's
    return float(total / max(count, 1))


def _copy(net: torch.nn.Module) -> Weights:
    """A detached copy of ``net``'s weights, which training goes on changing in place."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}
