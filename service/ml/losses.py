"""Zero-inflated lognormal (ZILN) loss and predictions (Wang, Liu & Miao 2019, "A Deep
Probabilistic Model for Customer Lifetime Value Prediction"; google/lifetime_value).

A customer's spend in the horizon is 0 with probability 1 - p, else lognormal(mu, sigma). The
network outputs ``logits`` of shape (n, 3): the logit of p, mu, and sigma before a softplus.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional

SIGMA_FLOOR = 1e-3
"""sigma is floored: a vanishing sigma would make the lognormal density (and the loss) explode."""


def ziln_parameters(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(p, mu, sigma), each of shape (n,), from logits of shape (n, 3)."""
    p = torch.sigmoid(logits[..., 0])
    mu = logits[..., 1]
    sigma = torch.clamp(functional.softplus(logits[..., 2]), min=SIGMA_FLOOR)
    return p, mu, sigma


def ziln_loss(labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-example negative log-likelihood, shape (n,): binary cross-entropy for spend > 0, plus
    the lognormal negative log-density of the spend where it is positive. Zero labels are
    replaced by 1 before the density (and then masked), so no log(0) reaches the gradient."""
    positive = (labels > 0).to(logits.dtype)
    classification = functional.binary_cross_entropy_with_logits(
        logits[..., 0], positive, reduction="none"
    )
    _, mu, sigma = ziln_parameters(logits)
    safe = positive * labels + (1 - positive)
    log_safe = torch.log(safe)
    log_density = (
        -log_safe - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
        - (log_safe - mu) ** 2 / (2 * sigma**2)
    )  # fmt: skip
    return classification - positive * log_density


def ziln_mean(logits: torch.Tensor) -> torch.Tensor:
    """Expected spend p * exp(mu + sigma^2 / 2), shape (n,)."""
    p, mu, sigma = ziln_parameters(logits)
    return p * torch.exp(mu + sigma**2 / 2)


def ziln_quantile(logits: torch.Tensor, q: float) -> torch.Tensor:
    """The q-quantile of the zero-inflated distribution, shape (n,): 0 while q <= 1 - p, else
    the lognormal's quantile at (q - (1 - p)) / p."""
    p, mu, sigma = ziln_parameters(logits)
    level = torch.clamp((q - (1 - p)) / p.clamp(min=1e-12), min=1e-12, max=1 - 1e-12)
    value = torch.exp(mu + sigma * torch.special.ndtri(level))
    return torch.where(q <= 1 - p, torch.zeros_like(value), value)
