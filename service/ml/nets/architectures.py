"""ZILN networks over a customer's recent events and the portrait's tabular features.

Inputs are float tensors only (events one-hot encoded, not embedded from ids), so gradient-based
explainers can attribute to every input:
- ``sequence``: (n, L, E) the last L events, oldest first, left-padded with zero rows; channel 0
  is 1 for a real event (see ``service.ml.sequences``);
- ``tabular``: (n, F) standardised portrait and BTYD features.
Output: (n, 3) ZILN logits (``service.ml.losses``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from service.ml.nets.registry import register_model


def _mlp(inputs: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
    )


Step = Callable[[torch.Tensor, tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]
"""One recurrent step: ((n, 1, E) events, state tensors of (layers, n, hidden)) -> new state."""


def recurrent_last_state(
    sequence: torch.Tensor, hidden: int, parts: int, step: Step
) -> torch.Tensor:
    """A recurrent layer's (n, hidden) output state after each customer's events: the layer
    (float, or quantized to int8) one step at a time, keeping the state where a row holds no
    event (the padding, on the left), from the first step any row uses. ``parts``: tensors in
    the state (1 for a GRU; 2, hidden and cell, for an LSTM).

    The same function as packing the events (``pack_padded_sequence``), which this replaced:
    that sliced the packed input at every step, and each step's backward pass zero-filled
    the whole input (59.5% of an explanation's CPU in ``SliceBackward``). A customer with no
    events reads its last (zero) row, as a packed length of 1 did."""
    present = _present(sequence)
    used = present.any(dim=0).nonzero()
    zeros = sequence.new_zeros(1, len(sequence), hidden)  # (layers, n, hidden)
    state = tuple(zeros for _ in range(parts))
    if not len(used):  # no customers
        return state[0][0]
    # unbind: one backward op stacks the steps' gradients (a slice per step zero-filled the
    # whole input in its backward pass: 79% of an explanation's CPU)
    steps = sequence.unbind(dim=1)
    for number in range(int(used[0]), sequence.shape[1]):
        stepped = step(steps[number][:, None], state)
        keep = present[None, :, number, None]
        state = tuple(torch.where(keep, new, old) for new, old in zip(stepped, state, strict=True))
    return state[0][0]


def _present(sequence: torch.Tensor) -> torch.Tensor:
    """(n, L) True where a row holds an event (channel 0), and at the last position of a
    customer without any (it reads its zero row). Detached: a step function no gradient sees,
    which the explainer evaluates as a jump (``service.ml.explain``)."""
    present = sequence[..., 0].detach() > 0.5
    present[:, -1] |= ~present.any(dim=1)
    return present


class RecurrentZiln(nn.Module):
    """A recurrent layer reads the event sequence; its last state joins an MLP of the tabular
    features. The layer is the attribute ``layer_name`` (``gru``, ``lstm``): the name its
    weights are saved under, and that pruning and int8 quantization replace."""

    layer_name: ClassVar[str]
    parts: ClassVar[int]  # tensors in the layer's state (``recurrent_last_state``)
    layer_type: ClassVar[type[nn.GRU] | type[nn.LSTM]]

    def __init__(
        self, event_features: int, tabular_features: int, hidden: int = 32, dropout: float = 0.1
    ) -> None:
        super().__init__()
        setattr(self, self.layer_name, self.layer_type(event_features, hidden, batch_first=True))
        self.tabular = _mlp(tabular_features, 2 * hidden, dropout)
        self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    @property
    def recurrent(self) -> nn.Module:
        """The layer: float, pruned or int8."""
        return self.get_submodule(self.layer_name)

    def forward(self, sequence: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(
            torch.cat([self.last_state(sequence), self.tabular(tabular)], dim=1)
        )
        return logits

    def last_state(self, sequence: torch.Tensor) -> torch.Tensor:
        """The layer's hidden state after each customer's events (``recurrent_last_state``)."""
        hidden = int(self.recurrent.hidden_size)  # type: ignore[arg-type]
        return recurrent_last_state(sequence, hidden, self.parts, self.step)

    def step(
        self, events: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


class GruZiln(RecurrentZiln):
    """The GRU: one state tensor."""

    layer_name, parts, layer_type = "gru", 1, nn.GRU

    def step(self, events: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        return (self.recurrent(events, state[0])[1],)


class LstmZiln(RecurrentZiln):
    """An LSTM (a cell state beside the hidden one, four gates instead of three): the recurrent
    layer the method's article names beside the GRU."""

    layer_name, parts, layer_type = "lstm", 2, nn.LSTM

    def step(
        self, events: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _, (h, c) = self.recurrent(events, (state[0], state[1]))
        return h, c


class EncoderLayer(nn.Module):
    """A pre-norm transformer encoder layer (Xiong et al. 2020): x + attention(norm(x)), then
    x + feed-forward(norm(x)), padding never attended to.

    Written out rather than ``nn.TransformerEncoderLayer``, whose inference fast path reads its
    feed-forward layers' weights as tensors: once int8-quantized (``CLV_QUANTIZE``) or pruned
    (``service.ml.pruning``) they are not, and it fails. GELU rather than ReLU: a smooth network
    is what the explainer's quadrature integrates best (``service.ml.explain``)."""

    def __init__(self, width: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.feedforward_norm = nn.LayerNorm(width)
        self.feedforward = nn.Sequential(
            nn.Linear(width, feedforward),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(feedforward, width),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, encoded: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """(n, L, width) -> (n, L, width); ``padding``: (n, L) True where no event is."""
        normed = self.attention_norm(encoded)
        attended, _ = self.attention(
            normed, normed, normed, key_padding_mask=padding, need_weights=False
        )
        encoded = encoded + self.dropout(attended)
        fed: torch.Tensor = encoded + self.dropout(self.feedforward(self.feedforward_norm(encoded)))
        return fed


class TransformerZiln(nn.Module):
    """Self-attention over the events: the events projected to ``hidden`` dimensions plus a
    sinusoidal encoding of each event's place counted from the newest (the sequence is
    left-padded, so place 0 is always the latest event whatever the history's length),
    ``layers`` pre-norm encoder layers (``EncoderLayer``) and the mean over the customer's
    events; joined with the tabular MLP as in ``GruZiln``."""

    def __init__(
        self,
        event_features: int,
        tabular_features: int,
        hidden: int = 32,
        dropout: float = 0.1,
        heads: int = 2,
        layers: int = 1,
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        self.width = hidden
        self.embed = nn.Linear(event_features, hidden)
        self.encoder = nn.ModuleList(
            EncoderLayer(hidden, heads, 2 * hidden, dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(hidden)
        self.tabular = _mlp(tabular_features, 2 * hidden, dropout)
        self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, sequence: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(
            torch.cat([self.pooled(sequence), self.tabular(tabular)], dim=1)
        )
        return logits

    def pooled(self, sequence: torch.Tensor) -> torch.Tensor:
        """(n, hidden): the encoded events averaged over each customer's real ones."""
        present = _present(sequence)
        places = _positions(sequence.shape[1], self.width).to(sequence.device)
        encoded = self.embed(sequence) + places
        for layer in self.encoder:
            encoded = layer(encoded, ~present)
        weights = present.to(encoded.dtype)[..., None]
        pooled: torch.Tensor = (self.norm(encoded) * weights).sum(dim=1) / weights.sum(dim=1)
        return pooled


def _positions(length: int, width: int) -> torch.Tensor:
    """(length, width) sinusoidal encodings (Vaswani et al. 2017, section 3.5) of the places
    length - 1 .. 0: the last row, the newest event, is place 0."""
    place = torch.arange(length - 1, -1, -1, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(1e4) / width))
    encoding = torch.zeros(length, width)
    encoding[:, 0::2] = torch.sin(place * rate)
    encoding[:, 1::2] = torch.cos(place * rate[: width // 2])
    return encoding


class MlpZiln(nn.Module):
    """The tabular features only: a baseline architecture, and a fast one."""

    def __init__(
        self, event_features: int, tabular_features: int, hidden: int = 64, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.body = _mlp(tabular_features, hidden, dropout)
        self.head = nn.Linear(hidden, 3)

    def forward(self, sequence: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.body(tabular))
        return logits


def output_layer(net: nn.Module) -> nn.Linear:
    """The layer that emits the three ZILN logits: every architecture ends in one."""
    layers = [m for m in net.modules() if isinstance(m, nn.Linear) and m.out_features == 3]
    if not layers:
        raise TypeError(f"{type(net).__name__} has no linear layer with the 3 ZILN outputs")
    return layers[-1]


@register_model
def gru_ziln(**config: int | float) -> nn.Module:
    return GruZiln(**config)  # type: ignore[arg-type]


@register_model
def lstm_ziln(**config: int | float) -> nn.Module:
    return LstmZiln(**config)  # type: ignore[arg-type]


@register_model
def transformer_ziln(**config: int | float) -> nn.Module:
    return TransformerZiln(**config)  # type: ignore[arg-type]


@register_model
def mlp_ziln(**config: int | float) -> nn.Module:
    return MlpZiln(**config)  # type: ignore[arg-type]
