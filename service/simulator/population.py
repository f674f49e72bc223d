"""Customers of the simulated shop: when they arrive, who they are, and their latent behaviour.

Latent behaviour follows the Pareto/NBD and Gamma-Gamma assumptions (purchase rate, dropout rate
and spend level drawn from gamma distributions), nudged by profile attributes so that the profile
carries a modest real signal: age band, region and acquisition channel shift the rates, income band
shifts spend. Gender has no effect by construction, which later fairness audits can confirm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.simulator.catalogue import CATEGORIES
from service.simulator.config import ShopConfig

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_SHARE = (0.15, 0.3, 0.25, 0.18, 0.12)
AGE_RATE = (0.8, 1.0, 1.15, 1.1, 0.95)
AGE_SPEND = (0.75, 0.95, 1.1, 1.15, 1.05)
GENDERS = ("female", "male", "non-binary", "undisclosed")
GENDER_SHARE = (0.5, 0.44, 0.02, 0.04)
REGIONS = ("north", "south", "east", "west")
REGION_SHARE = (0.3, 0.25, 0.2, 0.25)
REGION_RATE = (1.05, 0.95, 0.9, 1.05)
CHANNELS = ("organic", "paid_search", "paid_social", "referral", "email")
CHANNEL_SHARE = (0.35, 0.25, 0.2, 0.1, 0.1)
CHANNEL_RATE = (1.0, 0.95, 0.8, 1.25, 1.1)
CHANNEL_DROPOUT = (1.0, 1.1, 1.4, 0.7, 0.9)
INCOME_BANDS = ("low", "middle", "high")
INCOME_SHARE = (0.3, 0.5, 0.2)
INCOME_SPEND = (0.75, 1.0, 1.45)


@dataclass
class Population:
    """One chunk of customers; arrays are indexed by position in the chunk."""

    ids: list[str]
    acquired: np.ndarray  # day (fractional) of the first visit
    death: np.ndarray  # day the customer stops buying (may lie beyond the simulated window)
    rate: np.ndarray  # purchases per day while alive (before seasonality)
    dropout: np.ndarray  # mu
    nu: np.ndarray  # Gamma-Gamma scale: mean order value is p / nu
    taste: np.ndarray  # (customers, categories) purchase probabilities
    age_band: np.ndarray
    gender: np.ndarray
    region: np.ndarray
    channel: np.ndarray
    income: np.ndarray
    followers: np.ndarray
    shares: np.ndarray
    has_social: np.ndarray
    has_third_party: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _pick(rng: np.random.Generator, shares: tuple[float, ...], size: int) -> np.ndarray:
    return rng.choice(len(shares), size=size, p=np.asarray(shares) / sum(shares))


def draw_population(
    rng: np.random.Generator, config: ShopConfig, first_index: int, size: int
) -> Population:
    # Arrivals over the observation window, more of them later on (a growing shop).
    growth = rng.random(size) < 0.5
    acquired = np.where(growth, np.sqrt(rng.random(size)), rng.random(size)) * config.days
    age = _pick(rng, AGE_SHARE, size)
    gender = _pick(rng, GENDER_SHARE, size)
    region = _pick(rng, REGION_SHARE, size)
    channel = _pick(rng, CHANNEL_SHARE, size)
    income = _pick(rng, INCOME_SHARE, size)

    rate_multiplier = np.take(AGE_RATE, age) * np.take(REGION_RATE, region)
    rate_multiplier *= np.take(CHANNEL_RATE, channel)
    rate = rng.gamma(config.r, 1.0 / config.alpha, size) * rate_multiplier
    dropout = rng.gamma(config.s, 1.0 / config.beta, size) * np.take(CHANNEL_DROPOUT, channel)
    death = acquired + rng.exponential(1.0 / dropout)
    spend_multiplier = np.take(AGE_SPEND, age) * np.take(INCOME_SPEND, income)
    nu = rng.gamma(config.q, 1.0 / config.gamma, size) / spend_multiplier

    # Category taste: personal noise, tilted towards premium categories for big spenders.
    premium = np.array([category.premium for category in CATEGORIES])
    log_value = np.log(config.p / nu)
    tilt = (log_value - log_value.mean()) / (log_value.std() + 1e-9)
    logits = rng.normal(0.0, 1.0, (size, len(CATEGORIES))) + 1.2 * tilt[:, None] * (premium - 0.5)
    taste = np.exp(logits)
    taste /= taste.sum(axis=1, keepdims=True)

    # Social reach rises a little with purchase propensity; shares with both.
    followers = np.round(rng.lognormal(4.0 + 0.15 * np.log1p(rate * 365), 1.2)).astype(int)
    shares = rng.poisson(0.5 + 4.0 * rate * 30)
    return Population(
        ids=[f"C{first_index + i:07d}" for i in range(size)],
        acquired=acquired,
        death=death,
        rate=rate,
        dropout=dropout,
        nu=nu,
        taste=taste,
        age_band=age,
        gender=gender,
        region=region,
        channel=channel,
        income=income,
        followers=followers,
        shares=shares,
        has_social=rng.random(size) < config.social_coverage,
        has_third_party=rng.random(size) < config.third_party_coverage,
    )
