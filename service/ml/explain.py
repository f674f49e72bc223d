"""SHAP attributions of a CLV score: expected gradients over a small summarised background.

The estimand is shap's ``GradientExplainer``'s (expected gradients: SHAP values of a
differentiable model, averaging integrated gradients from every background row), computed
differently, for two reasons measured on our networks (``bench/score.py``):

- ``GradientExplainer`` draws a background row and a point on the path at random for each of its
  ``nsamples``; with its default 200 samples and a background of 100 customers, its
  contributions plus base value missed the score by 18% to 47% on average (``bench/score.py``).
  Here the path integral is a Gauss-Legendre quadrature (``NODES`` points)
  from each of ``BACKGROUND_ROWS`` k-means medoids of the training customers, weighted by their
  cluster's size: the same quantity, deterministic, and adaptive (a customer whose sum misses
  by more than ``ADDITIVITY_TOLERANCE`` is integrated again with four times the nodes).
- The sequence network packs each customer's events by their count (the "present" channel), a
  step function no gradient sees: along a straight path the count jumps and the jump's effect is
  lost: a second source of ``GradientExplainer``'s error. Here the path first takes the
  customer's event mask (the jump is evaluated exactly and credited to the number of recent
  events), then integrates the rest, so contributions plus base value equal the score up to the
  quadrature's error (``ADDITIVITY_TOLERANCE``, tested).

``tests/ml/test_explain.py`` checks that on the tabular features these attributions agree with
``shap.GradientExplainer``'s at many samples: the same estimand, computed faster and exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from sklearn.cluster import KMeans

from service.ml.losses import ziln_mean

BACKGROUND_ROWS = 8
NODES = 16
MAX_NODES = 1024
"""The last refinement: 256 left 4 of 1,200 customers of the test shop past the bound once the
portrait had product topics (up to 5.4%, on scores of 2 to 4); at 1,024 nodes all four were
within 0.9% (one refinement more, for those few customers only)."""
ADDITIVITY_TOLERANCE = 0.02
"""|base + sum(contributions) - clv| <= ADDITIVITY_TOLERANCE * max(clv, 1): the stated bound.
The error is the ReLU kinks between quadrature nodes; it halves with each doubling of nodes, and
only a customer past the bound is integrated again (refining past 1% instead cost a third of the
throughput: 39% of customers went to 64 nodes). Measured on 2,000 customers of a 3,000-customer
shop: 0.64% on average; one customer in 2,000 stayed past the bound at ``MAX_NODES`` (3.4% of a
score of 0.95)."""
_PATH_ROWS = 4096  # path points per forward/backward pass


@dataclass(frozen=True)
class Background:
    """Representative customers: scaled tabular rows, their event sequences, and the share of
    the training customers each stands for."""

    sequences: torch.Tensor  # (K, L, E)
    tabular: torch.Tensor  # (K, F), scaled as the network sees it
    weights: torch.Tensor  # (K,), summing to 1

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "background.sequences": self.sequences,
            "background.tabular": self.tabular,
            "background.weights": self.weights,
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Background:
        return cls(
            tensors["background.sequences"],
            tensors["background.tabular"],
            tensors["background.weights"],
        )


def summarise(
    sequences: np.ndarray, tabular: np.ndarray, rows: int = BACKGROUND_ROWS, seed: int = 0
) -> Background:
    """K-means over the scaled tabular features; each cluster is represented by its medoid
    (a real customer, so its event sequence is a real one too), weighted by the cluster's size."""
    rows = min(rows, len(tabular))
    clusters = KMeans(rows, n_init=3, random_state=seed).fit(tabular)
    medoids = [
        int(np.argmin(((tabular - centre) ** 2).sum(axis=1)))
        for centre in clusters.cluster_centers_
    ]
    weights = np.bincount(clusters.labels_, minlength=rows) / len(tabular)
    return Background(
        torch.as_tensor(sequences[medoids], dtype=torch.float32),
        torch.as_tensor(tabular[medoids], dtype=torch.float32),
        torch.as_tensor(weights, dtype=torch.float32),
    )


@dataclass(frozen=True)
class Attributions:
    """Per customer: base value, one contribution per tabular feature and per event channel
    (summed over the sequence's positions), all in the shop currency over the horizon."""

    base: np.ndarray  # (n,)
    tabular: np.ndarray  # (n, F)
    sequence: np.ndarray  # (n, E)

    def totals(self) -> np.ndarray:
        total: np.ndarray = self.base + self.tabular.sum(axis=1) + self.sequence.sum(axis=1)
        return total


@lru_cache(maxsize=8)
def _legendre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]."""
    alphas, weights = np.polynomial.legendre.leggauss(nodes)
    return (alphas + 1) / 2, weights / 2


_CUDNN_OFF = threading.Lock()


@contextmanager
def _gradients_through_rnn(device: str) -> Iterator[None]:
    """cuDNN's recurrent layers refuse a backward pass in eval mode; the native kernels do not.
    The switch is process-wide, so explanations on CUDA take turns: one thread leaving the
    context must not turn cuDNN back on under another's backward pass."""
    if not device.startswith("cuda"):
        yield
        return
    with _CUDNN_OFF, torch.backends.cudnn.flags(enabled=False):
        yield


def expected_gradients(
    net: torch.nn.Module,
    sequences: torch.Tensor,
    tabular: torch.Tensor,
    background: Background,
    *,
    log_calibration: float = 0.0,
    scale: np.ndarray | None = None,
    fixed_column: int | None = None,
    device: str = "cpu",
    nodes: int = NODES,
) -> Attributions:
    """Attributions of ``scale * ziln_mean(net(...))`` (the calibrated score; ``scale`` carries
    it to another horizon) for each customer. ``fixed_column``: a tabular column set to the
    customer's own value in the background (the horizon: asked, not explained).

    Adaptive: customers whose contributions miss their score by more than
    ``ADDITIVITY_TOLERANCE`` of it are integrated again with four times the nodes (up to
    ``MAX_NODES``)."""
    net.eval()
    path = _Path(net, background, log_calibration, fixed_column, device)
    n = len(tabular)
    scale = np.ones(n) if scale is None else scale
    base, scores = np.empty(n), np.empty(n)
    tab_out, seq_out = np.empty((n, tabular.shape[1])), np.empty((n, sequences.shape[2]))
    # Customers in chunks of similar event counts: the network's step loop starts at the first
    # step any row of a chunk uses, so short histories cost fewer steps.
    todo, current = np.argsort(sequences[..., 0].sum(dim=1).numpy(), kind="stable"), nodes
    with _gradients_through_rnn(device):
        while len(todo):
            per_chunk = max(1, _PATH_ROWS // (len(background.weights) * current))
            for start in range(0, len(todo), per_chunk):
                rows = todo[start : start + per_chunk]
                b, f, t, q = path.integrate(sequences[rows], tabular[rows], current)
                base[rows], scores[rows], tab_out[rows], seq_out[rows] = b, f, t, q
            totals = base[todo] + tab_out[todo].sum(axis=1) + seq_out[todo].sum(axis=1)
            # |error| <= ADDITIVITY_TOLERANCE * max(clv, 1), in the unscaled score's units
            allowed = (
                ADDITIVITY_TOLERANCE * np.maximum(scores[todo] * scale[todo], 1.0) / scale[todo]
            )
            missed = np.abs(totals - scores[todo]) > allowed
            todo, current = todo[missed], current * 4
            if current > MAX_NODES:
                break
    factor = scale[:, None]
    return Attributions(base * scale, tab_out * factor, seq_out * factor)


class _Path:
    """Integrated gradients from every background row to a customer, on one network."""

    def __init__(
        self,
        net: torch.nn.Module,
        background: Background,
        log_calibration: float,
        fixed_column: int | None,
        device: str,
    ) -> None:
        self.net, self.fixed_column, self.device = net, fixed_column, device
        self.shift = torch.tensor([0.0, log_calibration, 0.0], device=device)
        self.seq_bg = background.sequences.to(device)
        self.tab_bg = background.tabular.to(device)
        self.weights = background.weights.to(device)

    def score(self, sequence: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        return ziln_mean(self.net(sequence, tabular) + self.shift)

    def integrate(
        self, sequences: torch.Tensor, tabular: torch.Tensor, nodes: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(base, score, tabular contributions, channel contributions) for a chunk of
        customers; the references, the jump and the customers' own scores in one pass."""
        x_seq, x_tab = sequences.to(self.device), tabular.to(self.device)
        m, k = len(x_tab), len(self.weights)
        alphas, quadrature = _legendre(nodes)
        alpha = torch.as_tensor(alphas, dtype=torch.float32, device=self.device)
        weight = self.weights[:, None] * torch.as_tensor(
            quadrature, dtype=torch.float32, device=self.device
        )  # (K, J)
        # References per customer: (m, K, ...), the fixed column set to the customer's.
        r_tab = self.tab_bg[None].expand(m, -1, -1).clone()
        if self.fixed_column is not None:
            r_tab[..., self.fixed_column] = x_tab[:, None, self.fixed_column]
        r_seq = self.seq_bg[None].expand(m, -1, -1, -1).clone()
        masked_seq = r_seq.clone()
        masked_seq[..., 0] = x_seq[:, None, :, 0]  # the customer's event mask: the jump
        with torch.no_grad():
            flat_tab = r_tab.flatten(0, 1)
            scored = self.score(
                torch.cat([r_seq.flatten(0, 1), masked_seq.flatten(0, 1), x_seq]),
                torch.cat([flat_tab, flat_tab, x_tab]),
            )
        plain, masked = scored[: m * k].view(m, k), scored[m * k : 2 * m * k].view(m, k)
        r_seq = masked_seq
        d_seq = (x_seq[:, None] - r_seq)[:, :, None]  # (m, K, 1, L, E)
        d_tab = (x_tab[:, None] - r_tab)[:, :, None]  # (m, K, 1, F)
        path_seq = (r_seq[:, :, None] + alpha[None, None, :, None, None] * d_seq).detach()
        path_tab = (r_tab[:, :, None] + alpha[None, None, :, None] * d_tab).detach()
        path_seq.requires_grad_(True)
        path_tab.requires_grad_(True)
        out = self.score(path_seq.flatten(0, 2), path_tab.flatten(0, 2)).sum()
        # materialised: a network that reads no events (mlp_ziln) has zero gradients there
        g_seq, g_tab = torch.autograd.grad(
            out, [path_seq, path_tab], allow_unused=True, materialize_grads=True
        )
        w = weight[None, :, :]  # (1, K, J)
        tab_part = (g_tab * d_tab * w[..., None]).sum(dim=(1, 2))
        seq_part = (g_seq * d_seq * w[..., None, None]).sum(dim=(1, 2, 3))
        seq_part[:, 0] += ((masked - plain) * self.weights).sum(dim=1)
        return (
            (plain @ self.weights).cpu().numpy(),
            scored[2 * m * k :].double().cpu().numpy(),
            tab_part.detach().cpu().numpy(),
            seq_part.detach().cpu().numpy(),
        )
