"""The ZILN loss against scipy, and every registered architecture's forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from service.ml.losses import (
    MAX_LOG_MEAN,
    ziln_initial_logits,
    ziln_loss,
    ziln_mean,
    ziln_parameters,
)
from service.ml.nets import create_model, list_models, output_layer

LOGITS = torch.tensor([[0.3, 2.0, 0.1], [-1.2, 4.0, -0.7], [2.5, 0.5, 1.3]], dtype=torch.float64)


def test_ziln_loss_matches_bernoulli_and_lognormal_from_scipy() -> None:
    labels = torch.tensor([0.0, 35.0, 2.5], dtype=torch.float64)

    loss = ziln_loss(labels, LOGITS).numpy()

    p, mu, sigma = (t.numpy() for t in ziln_parameters(LOGITS))
    expected = [
        -np.log(1 - p[0]),
        -np.log(p[1]) - stats.lognorm.logpdf(35.0, s=sigma[1], scale=np.exp(mu[1])),
        -np.log(p[2]) - stats.lognorm.logpdf(2.5, s=sigma[2], scale=np.exp(mu[2])),
    ]
    np.testing.assert_allclose(loss, expected, rtol=1e-9, atol=1e-9)


def test_ziln_loss_has_finite_gradients_at_zero_labels() -> None:
    logits = LOGITS.clone().requires_grad_()
    ziln_loss(torch.zeros(3, dtype=torch.float64), logits).sum().backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()


def test_ziln_mean_matches_scipy() -> None:
    p, mu, sigma = (t.numpy() for t in ziln_parameters(LOGITS))

    mean = ziln_mean(LOGITS).numpy()

    np.testing.assert_allclose(mean, p * stats.lognorm.mean(s=sigma, scale=np.exp(mu)), rtol=1e-9)


def test_an_untrained_networks_huge_sigma_gives_a_finite_mean_not_an_overflow() -> None:
    """float32, as the network runs: exp(mu + sigma^2 / 2) overflows past 88; the mean is capped
    at exp(MAX_LOG_MEAN) instead, and ordinary outputs are untouched."""
    logits = torch.tensor([[5.0, 3.0, 14.0], [0.3, 2.0, 0.1]], dtype=torch.float32)
    p, mu, sigma = ziln_parameters(logits)
    assert float(mu[0] + sigma[0] ** 2 / 2) > 88  # what overflowed

    mean = ziln_mean(logits)

    assert torch.isfinite(mean).all()
    assert float(mean[0]) == pytest.approx(float(p[0]) * np.exp(MAX_LOG_MEAN), rel=1e-5)
    expected = float(p[1] * torch.exp(mu[1] + sigma[1] ** 2 / 2))
    assert float(mean[1]) == pytest.approx(expected, rel=1e-6)


def test_initial_logits_are_the_maximum_likelihood_ziln_fit() -> None:
    rng = np.random.default_rng(3)
    spend = np.where(rng.random(5000) < 0.3, rng.lognormal(4.0, 0.8, 5000), 0.0)
    p, mu, sigma = (float(t) for t in ziln_parameters(ziln_initial_logits(torch.tensor(spend))))

    shape, _, scale = stats.lognorm.fit(spend[spend > 0], floc=0)
    assert p == pytest.approx(np.mean(spend > 0), rel=1e-5)
    assert mu == pytest.approx(np.log(scale), rel=1e-4)
    assert sigma == pytest.approx(shape, rel=1e-2)  # sample std (n - 1) against the MLE (n)
    assert float(ziln_mean(ziln_initial_logits(torch.tensor(spend))[None])) == pytest.approx(
        spend.mean(), rel=0.05
    )


@pytest.mark.parametrize("name", list_models())
def test_every_architecture_runs_forward_and_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, event_features=6, tabular_features=4)
    sequence = torch.zeros(5, 8, 6)
    for row, length in enumerate([1, 3, 8, 2, 5]):
        sequence[row, 8 - length :, 0] = 1.0  # left-padded real events
        sequence[row, 8 - length :, 1:] = torch.randn(length, 5)
    tabular = torch.randn(5, 4)

    logits = model(sequence, tabular)
    ziln_loss(torch.tensor([0.0, 1.0, 20.0, 0.0, 3.0]), logits).mean().backward()

    assert logits.shape == (5, 3)
    assert output_layer(model).out_features == 3
    assert torch.isfinite(logits).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with pytest.raises(KeyError, match="unknown architecture"):
        create_model("no_such_net")


def test_padding_does_not_leak_into_the_gru() -> None:
    torch.manual_seed(1)
    model = create_model("gru_ziln", event_features=4, tabular_features=2).eval()
    events = torch.randn(3, 4)
    events[:, 0] = 1.0
    short = torch.zeros(1, 5, 4)
    short[0, 2:] = events
    longer = torch.zeros(1, 9, 4)
    longer[0, 6:] = events
    tabular = torch.randn(1, 2)

    assert torch.allclose(model(short, tabular), model(longer, tabular), atol=1e-6)
