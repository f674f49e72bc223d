"""The knobs of the simulated shop. Defaults give ~3 orders and ~30 events per customer over two
years, a mean order of about 60 in the shop currency, ~2% zero-value orders and ~4% refunds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Shift:
    """From ``day`` on, customers acquired through ``channel`` buy ``factor`` times as often."""

    day: int
    channel: str = "paid_social"
    factor: float = 0.3


@dataclass(frozen=True)
class ShopConfig:
    customers: int = 10_000
    days: int = 730
    start: date = date(2024, 1, 1)
    horizon_days: int = 365
    seed: int = 42
    currency: str = "USD"
    # Purchase rate per day while alive: lambda ~ Gamma(r, 1/alpha)  (Pareto/NBD, Schmittlein 1987)
    r: float = 0.9
    alpha: float = 130.0
    # Dropout rate per day: mu ~ Gamma(s, 1/beta); lifetime ~ Exponential(mu)
    s: float = 0.8
    beta: float = 400.0
    # Order value: z ~ Gamma(p, 1/nu), nu ~ Gamma(q, 1/gamma)  (Gamma-Gamma, Fader et al. 2005)
    p: float = 5.0
    q: float = 3.5
    gamma: float = 30.0
    first_order_share: float = 0.7  # customers acquired with an order (the others browse first)
    zero_value_share: float = 0.02
    refund_share: float = 0.04
    browse_sessions_per_order: float = 0.8  # background sessions per expected order while alive
    sessions_before_order: float = 1.2  # extra sessions in the days before an order
    social_coverage: float = 0.4
    third_party_coverage: float = 0.35
    chunk_customers: int = 5_000
    shift: Shift | None = field(default=None)
    seasons: bool = True  # weekly and yearly cycles and promotion days; False: every day alike

    @property
    def total_days(self) -> int:
        """Days simulated: the observation window and the future window of the ground truth."""
        return self.days + self.horizon_days
