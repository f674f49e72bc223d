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


def ziln_initial_logits(labels: torch.Tensor) -> torch.Tensor:
    """Logits (3,) of the single ZILN distribution that best fits ``labels``: the share with
    spend > 0, and the mean and spread of the log spend among them. Starting the output layer's
    bias there spares the network from learning the scale of money first; without it, a small
    shop's few optimiser steps end with mu near 0 and a huge sigma, whose mean explodes."""
    positive = labels[labels > 0].double()
    share = min(max(len(positive) / max(len(labels), 1), 1e-3), 1 - 1e-3)
    logged = torch.log(positive) if len(positive) else torch.zeros(1, dtype=torch.float64)
    sigma = max(float(logged.std()) if len(logged) > 1 else 1.0, 0.1)
    return torch.tensor(
        [math.log(share / (1 - share)), float(logged.mean()), math.log(math.expm1(sigma))],
        dtype=torch.float32,
    )


MAX_LOG_MEAN = math.log(1e12)
"""The largest log expected spend: mu + sigma^2 / 2 past it means a network that has not learnt,
not a customer, and exp() of it overflows float32 near 88; an infinite score cannot be stored
(JSON has no Infinity: a rescoring batch of a 100,000-customer shop trained for 3 epochs failed
on one)."""


def ziln_mean(logits: torch.Tensor) -> torch.Tensor:
    """Expected spend p * exp(mu + sigma^2 / 2), shape (n,), its exponent at most
    ``MAX_LOG_MEAN``."""
    p, mu, sigma = ziln_parameters(logits)
    return p * torch.exp(torch.clamp(mu + sigma**2 / 2, max=MAX_LOG_MEAN))
