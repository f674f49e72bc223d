"""Structured pruning for serving (``CLV_PRUNE``): a smaller network for scores without
explanations, as int8 quantization is (``service.scoring.engine.unexplained_model``).

Each layer pruned (below) loses ``amount`` of its units (rounded, one kept at least): those whose
weights in and out have the smallest L2 norm, chosen by ``torch.nn.utils.prune.ln_structured``.
A mask alone would compute as much as before, so the chosen units are then *removed*: the rows
of the layer that computes them and the columns of every layer that reads them are cut out, and
the network is rebuilt with the smaller layers. Pruned here:

- the recurrent layer's hidden units (GRU, LSTM): a unit's rows in every gate of both weight
  matrices, its column in the recurrent matrix and in the head. The step loop over the events
  is where a sequence network's time goes;
- the transformer's feed-forward units in each encoder layer (its model width, the residual
  stream every layer shares, is kept);
- the dense hidden layers of ``mlp_ziln``, which has nothing else. The sequence networks' dense
  layers (tabular MLP, head) are kept: pruning them at 0.3 took 13% off the GRU network's
  total on the benchmark shop (decile MAPE 0.149 -> 0.252), pruning its recurrent units 0.5%
  (0.150).

Serving has no labels to fine-tune on. Instead, what a removed unit fed each reader on average
is added to the reader's bias ("mean replacement"), the average taken over the model's
explanation background (k-means medoids of its training customers, weighted by cluster size):
the pruned network keeps the unpruned one's level. ``bench/architectures.py`` measures what is
left of the accuracy. The pruned network is a plain float network: int8 quantization applies on
top of it, and it can be explained (its attributions add up to its own scores).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from service.ml.clv_model import ClvModel
from service.ml.explain import Background
from service.ml.nets.architectures import MlpZiln, RecurrentZiln, TransformerZiln

Means = dict[str, torch.Tensor]  # by layer name: the mean of the input it reads, (inputs,)


def pruned(model: ClvModel, amount: float) -> ClvModel:
    """The model with ``amount`` of each hidden layer's units removed from its (float)
    network; the unpruned model is left as it was."""
    net = copy.deepcopy(model.float_net or model.net).cpu().eval()
    net = prune_network(net, amount, model.background)
    return replace(model, net=net.to(model.device).eval(), float_net=None)


@torch.no_grad()
def prune_network(net: nn.Module, amount: float, background: Background | None = None) -> nn.Module:
    """``net`` (changed in place and returned) with ``amount`` of the units of each of its
    hidden layers removed (see the module's docstring); without a ``background``, nothing
    replaces what the removed units fed."""
    if not 0 <= amount < 1:
        raise ValueError(f"the share of units to prune must be in [0, 1), not {amount}")
    if amount == 0:
        return net
    if isinstance(net, MlpZiln):
        means = _mean_inputs(net, background, ["body.3", "head"])
        _dense(net, "body.0", "body.3", 0, amount, means)
        _dense(net, "body.3", "head", 0, amount, means)
    elif isinstance(net, TransformerZiln):
        readers = [f"encoder.{i}.feedforward.3" for i in range(len(net.encoder))]
        means = _mean_inputs(net, background, readers)
        for reader in readers:
            _dense(net, reader.removesuffix("3") + "0", reader, 0, amount, means)
    elif isinstance(net, RecurrentZiln):
        name = net.layer_name
        _recurrent(net, name, amount, _mean_inputs(net, background, ["head.0", name]))
    else:
        raise TypeError(f"no pruning rule for {type(net).__name__}")
    return net


def pruned_units(units: int, amount: float) -> int:
    """How many of a layer's ``units`` ``amount`` removes: rounded as ``torch.nn.utils.prune``
    rounds a share, and never all of them."""
    return min(round(amount * units), units - 1)


def _mean_inputs(net: nn.Module, background: Background | None, names: list[str]) -> Means:
    """The background-weighted mean of what each named layer reads (for a recurrent layer, of
    the state it is given at each step), from one pass of the unpruned network."""
    if background is None:
        return {}
    weights = background.weights / background.weights.sum()
    sums: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def record(name: str) -> Any:
        def hook(_: nn.Module, args: tuple[Any, ...]) -> None:
            read = args[1] if len(args) > 1 else args[0]  # a recurrent layer's state, or input
            read = read[0] if isinstance(read, tuple) else read  # an LSTM's hidden state
            read = read.transpose(0, 1) if len(args) > 1 else read  # (n, ..., inputs)
            per_row = read.reshape(len(weights), -1, read.shape[-1]).mean(dim=1)
            sums[name].append(weights @ per_row)

        return hook

    with _hooks(net, {name: record(name) for name in names}):
        net(background.sequences, background.tabular)
    return {name: torch.stack(found).mean(dim=0) for name, found in sums.items() if found}


@contextmanager
def _hooks(net: nn.Module, hooks: dict[str, Any]) -> Iterator[None]:
    handles = [net.get_submodule(name).register_forward_pre_hook(h) for name, h in hooks.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _kept(weights_in: torch.Tensor, weights_out: torch.Tensor, amount: float) -> torch.Tensor:
    """Indices of the units to keep, in order: ``ln_structured`` (L2) over each unit's row of
    weights in (``weights_in``: (units, ...)) and out (``weights_out``: (units, ...)), so a unit
    that reads strongly but is hardly read (or the reverse) can go."""
    units = len(weights_in)
    rows = torch.cat([weights_in.reshape(units, -1), weights_out.reshape(units, -1)], 1)
    holder = nn.Module()
    holder.register_parameter("weight", nn.Parameter(rows))
    count = pruned_units(units, amount)
    prune.ln_structured(holder, "weight", amount=count, n=2, dim=0)  # type: ignore[no-untyped-call]
    mask: torch.Tensor = holder.get_buffer("weight_mask")
    return mask[:, 0].nonzero().squeeze(1)


def _dropped(keep: torch.Tensor, units: int) -> torch.Tensor:
    gone = torch.ones(units, dtype=torch.bool)
    gone[keep] = False
    return gone.nonzero().squeeze(1)


def _dense(
    net: nn.Module, name: str, reader: str, offset: int, amount: float, means: Means
) -> None:
    """Remove units of the linear layer ``name`` and the matching input columns, from
    ``offset`` on, of the linear layer ``reader``, whose bias takes what they fed it on
    average."""
    layer, reading = _linear_at(net, name), _linear_at(net, reader)
    units = layer.out_features
    columns = reading.weight[:, offset : offset + units]
    keep = _kept(torch.cat([layer.weight, layer.bias[:, None]], 1), columns.T, amount)
    bias = reading.bias + _replaced(columns, means.get(reader), offset, _dropped(keep, units))
    _set(net, name, _linear(layer.weight[keep], layer.bias[keep]))
    _set(net, reader, _linear(_cut_columns(reading.weight, offset, keep, units), bias))


def _replaced(
    columns: torch.Tensor, mean: torch.Tensor | None, offset: int, dropped: torch.Tensor
) -> torch.Tensor:
    """What the ``dropped`` columns of a block fed its reader on average: (outputs,)."""
    if mean is None:
        return torch.zeros(len(columns))
    replaced: torch.Tensor = columns[:, dropped] @ mean[offset + dropped]
    return replaced


_RECURRENT_PARAMETERS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _recurrent(net: RecurrentZiln, name: str, amount: float, means: Means) -> None:
    """Remove hidden units of the GRU or LSTM ``name`` and their columns in the head, whose
    biases take what the removed units fed them on average."""
    layer = net.get_submodule(name)
    if not isinstance(layer, nn.GRU | nn.LSTM):
        raise TypeError(f"{type(net).__name__}.{name} is not a GRU or an LSTM")
    w_ih, w_hh, b_ih, b_hh = (layer.get_parameter(p) for p in _RECURRENT_PARAMETERS)
    hidden = layer.hidden_size
    gates = len(w_ih) // hidden

    def per_unit(weight: torch.Tensor) -> torch.Tensor:
        """(gates * hidden, k) -> (hidden, gates * k): each unit's rows in every gate."""
        return weight.reshape(gates, hidden, -1).transpose(0, 1).reshape(hidden, -1)

    weights_in = torch.cat([per_unit(w) for w in (w_ih, w_hh, b_ih[:, None], b_hh[:, None])], 1)
    head = _linear_at(net, "head.0")
    keep = _kept(weights_in, torch.cat([w_hh.T, head.weight[:, :hidden].T], 1), amount)
    dropped, rows = _dropped(keep, hidden), torch.cat([keep + g * hidden for g in range(gates)])
    recurrent_bias = b_hh + _replaced(w_hh, means.get(name), 0, dropped)
    smaller = type(layer)(layer.input_size, len(keep), batch_first=True)
    new = [w_ih[rows], w_hh[rows][:, keep], b_ih[rows], recurrent_bias[rows]]
    for parameter, value in zip(_RECURRENT_PARAMETERS, new, strict=True):
        smaller.get_parameter(parameter).copy_(value)
    _set(net, name, smaller)
    head_bias = head.bias + _replaced(head.weight, means.get("head.0"), 0, dropped)
    _set(net, "head.0", _linear(_cut_columns(head.weight, 0, keep, hidden), head_bias))


def _cut_columns(weight: torch.Tensor, offset: int, keep: torch.Tensor, width: int) -> torch.Tensor:
    """``weight`` with only the ``keep`` columns of its block [offset, offset + width)."""
    return torch.cat([weight[:, :offset], weight[:, offset + keep], weight[:, offset + width :]], 1)


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)
    return layer


def _linear_at(net: nn.Module, name: str) -> nn.Linear:
    layer = net.get_submodule(name)
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"{type(net).__name__}.{name} is not a linear layer")
    return layer


def _set(net: nn.Module, name: str, layer: nn.Module) -> None:
    """Put ``layer`` in place of the submodule at the dotted ``name``."""
    parent, _, child = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, child, layer)
