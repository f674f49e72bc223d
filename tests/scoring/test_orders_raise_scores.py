"""An order never lowers a customer's expected orders where the network serves, through the
whole live path: the order posted to the API, the customer scored from the stored aggregates,
latest events and the day's orders (``service.portrait.service``), and read back. A cheap order
(the demo's case) and a dear one, which the network alone reads as fewer orders: it raises the
expected order value more than it raises the network's spend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.db.session import make_session_factory
from service.events.worker import drain
from service.main import create_app
from service.ml.clv_model import ClvModel
from service.ml.examples import EventLog
from service.model_versions import service as registry
from service.portrait import repository as portrait
from service.training import data
from tests.conftest import KeyFactory, ScoredShop, bearer


def test_an_order_cheap_or_dear_does_not_lower_the_expected_orders_the_network_serves(
    scored_shop: ScoredShop, db: Engine, shop_model: ClvModel, make_key: KeyFactory
) -> None:
    assert shop_model.serving is not None
    model = replace(shop_model, serving=replace(shop_model.serving, served="deep"))
    factory = make_session_factory(db)
    settings = scored_shop.settings
    with factory() as session, session.begin():
        version = registry.register(session, settings.model_dir, model, {}, "test").version
    with factory() as session:
        log = EventLog.from_frames(list(portrait.event_frames(session, until=datetime.now(UTC))))
        customers = sorted(set(log.events["customer_id"]))
        profiles, sources = data.profiles(session, settings, customers)
    # a day after the shop's last event, when its customers are fresh
    moment = datetime.fromtimestamp(int(log.events["seconds"].max()), UTC) + timedelta(days=1)
    scores = model.predict(model.examples(log, profiles, sources, moment))
    chosen = scores.nlargest(12, "expected_orders")  # changes show in 4 decimals
    shares = np.tile([1 / 3, 3.0], 6)  # a third of their order value, or three times it
    amounts = np.round(chosen["expected_order_value"].to_numpy() * shares, 4)
    more = model.examples(log.with_orders(chosen.index, amounts, moment), profiles, sources, moment)
    floored = model.predict(more).loc[chosen.index]
    unfloored = model.predict(replace(more, earlier=None)).loc[chosen.index]  # the network's
    lowered = unfloored["expected_orders"] < chosen["expected_orders"] - 1e-3
    assert lowered.sum() >= 3, "the network alone lowers too few: nothing for the floor to hold"
    headers = bearer(make_key("read", "ingest", "admin"))

    def read() -> dict[str, dict[str, Any]]:
        params = {"as_of": moment.isoformat()}
        return {
            c: client.get(f"/v1/customers/{c}/clv", params=params, headers=headers).json()
            for c in chosen.index
        }

    with TestClient(create_app(settings)) as client:
        client.post(f"/v1/models/{version}/promote", json={}, headers=headers)
        before = read()
        sent = [
            {
                "event_id": f"now-{customer}",
                "customer_id": customer,
                "type": "purchase",
                "occurred_at": moment.isoformat(),
                "amount": f"{amount:.4f}",
            }
            for customer, amount in zip(chosen.index, amounts, strict=True)
        ]
        posted = client.post("/v1/events", json={"events": sent}, headers=headers)
        drain(factory)
        after = read()

    assert posted.json()["accepted"] == len(chosen)
    for customer in chosen.index:
        was, now = before[customer], after[customer]
        assert was["model_version"] == now["model_version"] == version
        # from the store as in memory from every event, floored (the response rounds
        # expected orders to 4 decimals, money to cents)
        expected = floored.loc[customer, "expected_orders"]
        assert now["expected_orders"] == pytest.approx(expected, rel=1e-4, abs=1e-4)
        assert now["expected_orders"] >= was["expected_orders"], customer
        value_moved = now["expected_order_value"] / was["expected_order_value"]
        assert now["clv"] >= was["clv"] * value_moved * (1 - 1e-3), customer
