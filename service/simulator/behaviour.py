"""What the simulated customers do: orders, refunds and browsing sessions, as API events.

Orders follow a Pareto/NBD process made seasonal by thinning: while alive, a customer's orders
arrive at ``rate * multiplier(day)``. Order values are Gamma-Gamma. Browsing runs at a rate
proportional to the purchase rate and rises in the days before each order, so browsing carries
signal. Everything is drawn per chunk of customers, vectorised, from one seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from itertools import pairwise
from typing import Any

import numpy as np

from service.simulator.catalogue import Catalogue
from service.simulator.config import ShopConfig
from service.simulator.population import CHANNELS, Population

MINUTE = 1.0 / 1440.0
_VIEWS_PER_SESSION = 1.2  # beyond the first view
_CART_RATE = 0.2
_REMOVE_RATE = 0.3


@dataclass
class Timeline:
    """Every event of a chunk as parallel arrays, sorted by customer and time."""

    customer: np.ndarray  # index into the population
    time: np.ndarray  # fractional days from the shop's start
    kind: np.ndarray  # index into KINDS
    order: np.ndarray  # index into the order arrays for purchases and refunds, else -1
    product: np.ndarray  # product index for views and cart events, else -1


KINDS = (
    "purchase",
    "refund",
    "view",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "session_start",
)
PURCHASE, REFUND, VIEW, CART, REMOVE, CHECKOUT, SESSION = range(len(KINDS))


@dataclass
class Orders:
    customer: np.ndarray
    time: np.ndarray
    cents: np.ndarray  # order total in cents
    items: list[list[tuple[int, int, int]]]  # per order: (product, quantity, unit price cents)
    refund_time: np.ndarray  # NaN when not refunded
    refund_cents: np.ndarray


def _thinned(
    rng: np.random.Generator,
    rate: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    multipliers: np.ndarray,
    factor: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Event times of inhomogeneous Poisson processes, one per customer, by thinning.

    ``rate`` (n,) per day, on [start, stop); intensity rate * multipliers[day] * factor[i, day>=..].
    ``factor`` (n, days) optional per-customer multiplier. Returns (customer index, time).
    """
    ceiling = multipliers.max()
    exposure = np.maximum(stop - start, 0.0)
    counts = rng.poisson(rate * ceiling * exposure)
    who = np.repeat(np.arange(len(rate)), counts)
    when = start[who] + rng.random(len(who)) * exposure[who]
    day = np.minimum(when.astype(int), len(multipliers) - 1)
    accept = multipliers[day] / ceiling
    if factor is not None:
        accept = accept * factor[who, day]
    keep = rng.random(len(who)) < accept
    return who[keep], when[keep]


def _shift_factor(config: ShopConfig, population: Population) -> np.ndarray | None:
    if config.shift is None:
        return None
    affected = population.channel == CHANNELS.index(config.shift.channel)
    factor = np.ones((len(population), config.total_days))
    factor[np.ix_(affected, np.arange(config.shift.day, config.total_days))] = config.shift.factor
    return factor


def _products(
    rng: np.random.Generator, catalogue: Catalogue, taste: np.ndarray, who: np.ndarray
) -> np.ndarray:
    """A product for each entry of ``who``: mostly from the customer's taste, some at random."""
    cumulative = taste.cumsum(axis=1)[who]
    category = (cumulative < rng.random(len(who))[:, None]).sum(axis=1)
    category = np.minimum(category, taste.shape[1] - 1)
    random_category = rng.integers(taste.shape[1], size=len(who))
    category = np.where(rng.random(len(who)) < 0.8, category, random_category)
    per_category = len(catalogue.by_category[0])
    return category * per_category + rng.integers(per_category, size=len(who))


def draw_orders(
    rng: np.random.Generator,
    config: ShopConfig,
    population: Population,
    catalogue: Catalogue,
    multipliers: np.ndarray,
) -> Orders:
    n = len(population)
    stop = np.minimum(population.death, config.total_days)
    who, when = _thinned(
        rng,
        population.rate,
        population.acquired,
        stop,
        multipliers,
        _shift_factor(config, population),
    )
    first = np.flatnonzero(rng.random(n) < config.first_order_share)
    who = np.concatenate([first, who])
    when = np.concatenate([population.acquired[first] + 5 * MINUTE, when])
    order = np.lexsort((when, who))
    who, when = who[order], when[order]

    value = rng.gamma(config.p, 1.0 / population.nu[who])
    free = rng.random(len(who)) < config.zero_value_share
    item_count = np.minimum(1 + rng.poisson(0.6, len(who)), 5)
    item_owner = np.repeat(np.arange(len(who)), item_count)
    products = _products(rng, catalogue, population.taste, who[item_owner])
    quantities = 1 + rng.poisson(0.25, len(item_owner))
    list_total = np.bincount(
        item_owner, weights=catalogue.list_prices[products] * quantities, minlength=len(who)
    )
    scale = np.where(free, 0.0, value / list_total)
    unit_cents = np.round(catalogue.list_prices[products] * scale[item_owner] * 100).astype(int)
    cents = np.bincount(item_owner, weights=unit_cents * quantities, minlength=len(who))
    cents = cents.astype(np.int64)
    bounds = np.concatenate([[0], np.cumsum(item_count)])
    items = [
        list(
            zip(
                products[a:b].tolist(),
                quantities[a:b].tolist(),
                unit_cents[a:b].tolist(),
                strict=True,
            )
        )
        for a, b in pairwise(bounds)
    ]

    refunded = (cents > 0) & (rng.random(len(who)) < config.refund_share)
    partial = rng.random(len(who)) < 0.3
    fraction = np.where(partial, rng.uniform(0.2, 0.8, len(who)), 1.0)
    refund_cents = np.where(refunded, np.round(cents * fraction), 0).astype(np.int64)
    refund_time = np.where(refunded, when + rng.uniform(2, 20, len(who)), np.nan)
    return Orders(who, when, cents, items, refund_time, refund_cents)


def _sessions(
    rng: np.random.Generator,
    config: ShopConfig,
    population: Population,
    orders: Orders,
    multipliers: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Browsing sessions: background visits while alive, rare visits after dropping out, a visit
    on arrival for those who did not order then, and a build-up before each order."""
    stop = np.minimum(population.death, config.total_days)
    alive_who, alive_when = _thinned(
        rng,
        population.rate * config.browse_sessions_per_order,
        population.acquired,
        stop,
        multipliers,
    )
    late_who, late_when = _thinned(
        rng,
        np.full(len(population), 0.004),
        stop,
        np.full(len(population), config.total_days),
        multipliers,
    )
    before = rng.poisson(config.sessions_before_order, len(orders.customer))
    before_owner = np.repeat(np.arange(len(orders.customer)), before)
    before_who = orders.customer[before_owner]
    before_when = orders.time[before_owner] - rng.uniform(0.05, 5.0, len(before_owner))
    arrival_who = np.arange(len(population))
    who = np.concatenate([alive_who, late_who, before_who, arrival_who])
    when = np.concatenate([alive_when, late_when, before_when, population.acquired])
    keep = (when >= population.acquired[who]) & (when < config.total_days)
    return who[keep], when[keep]


def build_timeline(
    rng: np.random.Generator,
    config: ShopConfig,
    population: Population,
    catalogue: Catalogue,
    orders: Orders,
    multipliers: np.ndarray,
) -> Timeline:
    parts: list[tuple[np.ndarray, ...]] = []

    def add(
        who: np.ndarray, when: np.ndarray, kind: int, order: Any = -1, product: Any = -1
    ) -> None:
        size = len(who)
        parts.append(
            (
                who,
                when,
                np.full(size, kind),
                np.broadcast_to(order, size).copy(),
                np.broadcast_to(product, size).copy(),
            )
        )

    order_index = np.arange(len(orders.customer))
    add(orders.customer, orders.time, PURCHASE, order_index)
    add(orders.customer, orders.time - 2 * MINUTE, CHECKOUT, order_index)
    add(orders.customer, orders.time - 25 * MINUTE, SESSION)
    lines = [(o, product) for o in range(len(orders.items)) for product, _, _ in orders.items[o]]
    if lines:
        line_order = np.array([o for o, _ in lines])
        line_product = np.array([p for _, p in lines])
        offset = rng.uniform(5, 20, len(lines)) * MINUTE
        add(
            orders.customer[line_order],
            orders.time[line_order] - offset - MINUTE,
            VIEW,
            product=line_product,
        )
        add(
            orders.customer[line_order],
            orders.time[line_order] - offset,
            CART,
            product=line_product,
        )
    refunded = np.flatnonzero(~np.isnan(orders.refund_time))
    add(orders.customer[refunded], orders.refund_time[refunded], REFUND, refunded)

    session_who, session_when = _sessions(rng, config, population, orders, multipliers)
    add(session_who, session_when, SESSION)
    views = 1 + rng.poisson(_VIEWS_PER_SESSION, len(session_who))
    view_owner = np.repeat(np.arange(len(session_who)), views)
    view_who = session_who[view_owner]
    view_when = session_when[view_owner] + rng.uniform(1, 30, len(view_owner)) * MINUTE
    view_product = _products(rng, catalogue, population.taste, view_who)
    add(view_who, view_when, VIEW, product=view_product)
    carted = rng.random(len(view_who)) < _CART_RATE
    add(view_who[carted], view_when[carted] + MINUTE, CART, product=view_product[carted])
    removed = carted & (rng.random(len(view_who)) < _REMOVE_RATE)
    add(view_who[removed], view_when[removed] + 3 * MINUTE, REMOVE, product=view_product[removed])

    customer, when, kind, order, product = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    keep = when < config.total_days
    customer, when, kind, order, product = (
        column[keep] for column in (customer, when, kind, order, product)
    )
    sort = np.lexsort((kind, when, customer))
    return Timeline(customer[sort], when[sort], kind[sort], order[sort], product[sort])


def timestamps(start: date, days: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings, to the second, for fractional days after ``start``."""
    base = np.datetime64(datetime.combine(start, time()), "s")
    seconds = np.round(days * 86400).astype("timedelta64[s]")
    return [text + "Z" for text in np.datetime_as_string(base + seconds, unit="s").tolist()]
