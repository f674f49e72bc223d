"""Runs the simulated shop chunk by chunk and hands events, profiles and truth to a sink.

Chunks of customers are independent (each has its own generator, seeded from the shop seed and
the chunk number), so memory stays bounded by one chunk and the output is the same for a given
seed and configuration, however it is consumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import numpy as np

from service.simulator.behaviour import (
    CART,
    KINDS,
    PURCHASE,
    REFUND,
    REMOVE,
    VIEW,
    Orders,
    Timeline,
    build_timeline,
    draw_orders,
    timestamps,
)
from service.simulator.calendar import daily_multipliers
from service.simulator.catalogue import CATEGORIES, Catalogue, build_catalogue
from service.simulator.config import ShopConfig
from service.simulator.oracle import expected_orders
from service.simulator.population import (
    AGE_BANDS,
    CHANNELS,
    GENDERS,
    INCOME_BANDS,
    REGIONS,
    Population,
    draw_population,
)


@dataclass
class Chunk:
    events: list[dict[str, Any]]  # observed: occurred before the end of the observation window
    future: list[dict[str, Any]]  # in the future window, summarised by the truth
    profiles: list[dict[str, Any]]  # attribute updates: {"customer_id", "source", "attributes"}
    truth: list[dict[str, Any]]


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class Shop:
    def __init__(self, config: ShopConfig) -> None:
        self.config = config
        self.catalogue: Catalogue = build_catalogue(np.random.default_rng([config.seed, 0]))
        self.multipliers = daily_multipliers(config.start, config.total_days, config.seasons)
        self.origin = datetime.combine(config.start, time(), tzinfo=UTC)

    def chunks(self) -> Iterator[Chunk]:
        size = self.config.chunk_customers
        for number, first in enumerate(range(0, self.config.customers, size)):
            rng = np.random.default_rng([self.config.seed, 1, number])
            count = min(size, self.config.customers - first)
            yield self._chunk(rng, draw_population(rng, self.config, first, count))

    def _chunk(self, rng: np.random.Generator, population: Population) -> Chunk:
        orders = draw_orders(rng, self.config, population, self.catalogue, self.multipliers)
        timeline = build_timeline(
            rng, self.config, population, self.catalogue, orders, self.multipliers
        )
        events = self._events(population, orders, timeline)
        observed = timeline.time < self.config.days
        return Chunk(
            events=[event for event, seen in zip(events, observed, strict=True) if seen],
            future=[event for event, seen in zip(events, observed, strict=True) if not seen],
            profiles=self._profiles(population),
            truth=self._truth(population, orders),
        )

    def _events(
        self, population: Population, orders: Orders, timeline: Timeline
    ) -> list[dict[str, Any]]:
        when = timestamps(self.config.start, timeline.time)
        # Sequence number within each customer (the timeline is sorted by customer, then time).
        first_of_customer = np.searchsorted(timeline.customer, timeline.customer)
        sequence = np.arange(len(timeline.customer)) - first_of_customer
        events = []
        for i in range(len(timeline.customer)):
            customer_id = population.ids[timeline.customer[i]]
            kind = int(timeline.kind[i])
            event: dict[str, Any] = {
                "event_id": f"{customer_id}-{sequence[i]:05d}",
                "customer_id": customer_id,
                "type": KINDS[kind],
                "occurred_at": when[i],
                "source": "app" if timeline.customer[i] % 3 == 0 else "web",
            }
            if kind == PURCHASE:
                order = timeline.order[i]
                event["amount"] = _money(int(orders.cents[order]))
                event["currency"] = self.config.currency
                event["items"] = [
                    self._item(product, quantity, _money(price))
                    for product, quantity, price in orders.items[order]
                ]
            elif kind == REFUND:
                event["amount"] = _money(int(orders.refund_cents[timeline.order[i]]))
                event["currency"] = self.config.currency
            elif kind in (VIEW, CART, REMOVE):
                event["items"] = [self._item(int(timeline.product[i]))]
            events.append(event)
        return events

    def _item(self, product: int, quantity: int = 1, price: str | None = None) -> dict[str, Any]:
        catalogue = self.catalogue
        item: dict[str, Any] = {
            "sku": catalogue.skus[product],
            "category": CATEGORIES[catalogue.category_index[product]].name,
            "name": catalogue.names[product],
            "quantity": quantity,
        }
        if price is not None:
            item["price"] = price
        return item

    def _profiles(self, population: Population) -> list[dict[str, Any]]:
        profiles = []
        for i, customer_id in enumerate(population.ids):
            signup = self.origin.date().toordinal() + int(population.acquired[i])
            platform = {
                "age_band": AGE_BANDS[population.age_band[i]],
                "gender": GENDERS[population.gender[i]],
                "region": REGIONS[population.region[i]],
                "acquisition_channel": CHANNELS[population.channel[i]],
                "signup_date": datetime.fromordinal(signup).date().isoformat(),
            }
            profiles.append(
                {"customer_id": customer_id, "source": "platform", "attributes": platform}
            )
            if population.has_social[i]:
                social = {
                    "followers": int(population.followers[i]),
                    "shares": int(population.shares[i]),
                }
                profiles.append(
                    {"customer_id": customer_id, "source": "social", "attributes": social}
                )
            if population.has_third_party[i]:
                income = {"income_band": INCOME_BANDS[population.income[i]]}
                profiles.append(
                    {"customer_id": customer_id, "source": "third_party", "attributes": income}
                )
        return profiles

    def _truth(self, population: Population, orders: Orders) -> list[dict[str, Any]]:
        config = self.config
        n = len(population)
        observed = orders.time < config.days
        future = ~observed
        refund_future = (orders.refund_time >= config.days) & (
            orders.refund_time < config.total_days
        )

        def per_customer(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
            chosen = orders.customer[mask]
            return np.bincount(
                chosen, weights=None if weights is None else weights[mask], minlength=n
            )

        shift = config.shift
        expected = expected_orders(
            config,
            config.days,
            config.horizon_days,
            rate=population.rate,
            dropout=population.dropout,
            acquired=population.acquired,
            death=population.death,
            shifted=population.channel == CHANNELS.index(shift.channel)
            if shift
            else np.zeros(n, bool),
        )
        mean_order = config.p / population.nu * (1 - config.zero_value_share)
        columns = {
            "orders_observed": per_customer(observed),
            "spend_observed": per_customer(observed, orders.cents) / 100,
            "orders_future": per_customer(future),
            "spend_future": per_customer(future, orders.cents) / 100,
            "refunds_future": per_customer(refund_future, orders.refund_cents) / 100,
            "expected_orders_future": expected,
            "expected_spend_future": expected * mean_order,
        }
        return [
            {
                "customer_id": customer_id,
                "acquired_day": round(float(population.acquired[i]), 4),
                "alive_at_end": bool(population.death[i] > config.days),
                "death_day": round(float(population.death[i]), 2),
                "purchase_rate": float(population.rate[i]),
                "dropout_rate": float(population.dropout[i]),
                "p": config.p,
                "nu": float(population.nu[i]),
                "mean_order_value": round(float(config.p / population.nu[i]), 4),
                "acquisition_channel": CHANNELS[population.channel[i]],
                **{name: float(values[i]) for name, values in columns.items()},
            }
            for i, customer_id in enumerate(population.ids)
        ]
