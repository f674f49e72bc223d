"""ZILN networks over a customer's recent events and the portrait's tabular features.

Inputs are float tensors only (events one-hot encoded, not embedded from ids), so gradient-based
explainers can attribute to every input:
- ``sequence``: (n, L, E) the last L events, oldest first, left-padded with zero rows; channel 0
  is 1 for a real event (see ``service.ml.sequences``);
- ``tabular``: (n, F) standardised portrait and BTYD features.
Output: (n, 3) ZILN logits (``service.ml.losses``).
"""

from __future__ import annotations

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


class GruZiln(nn.Module):
    """A GRU reads the event sequence; its last state joins an MLP of the tabular features."""

    def __init__(
        self, event_features: int, tabular_features: int, hidden: int = 32, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.gru = nn.GRU(event_features, hidden, batch_first=True)
        self.tabular = _mlp(tabular_features, 2 * hidden, dropout)
        self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, sequence: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(
            torch.cat([self.last_state(sequence), self.tabular(tabular)], dim=1)
        )
        return logits

    def last_state(self, sequence: torch.Tensor) -> torch.Tensor:
        """The GRU's state after each customer's events: the GRU module (float, or quantized
        to int8) one step at a time, keeping the state where a row holds no event (the padding,
        on the left), from the first step any row uses.

        The same function as packing the events (``pack_padded_sequence``), which this replaced:
        that sliced the packed input at every step, and each step's backward pass zero-filled
        the whole input (59.5% of an explanation's CPU in ``SliceBackward``). A customer with no
        events reads its last (zero) row, as a packed length of 1 did."""
        present = sequence[..., 0].detach() > 0.5
        present[:, -1] |= ~present.any(dim=1)
        used = present.any(dim=0).nonzero()
        state = sequence.new_zeros(1, len(sequence), self.gru.hidden_size)  # (layers, n, hidden)
        if not len(used):  # no customers
            return state[0]
        # unbind: one backward op stacks the steps' gradients (a slice per step zero-filled the
        # whole input in its backward pass: 79% of an explanation's CPU)
        steps = sequence.unbind(dim=1)
        for step in range(int(used[0]), sequence.shape[1]):
            _, stepped = self.gru(steps[step][:, None], state)
            state = torch.where(present[None, :, step, None], stepped, state)
        return state[0]


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
def mlp_ziln(**config: int | float) -> nn.Module:
    return MlpZiln(**config)  # type: ignore[arg-type]
