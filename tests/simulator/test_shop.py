"""The simulated shop: deterministic, consistent with its truth, faithful to its parameters."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.simulator.calendar import daily_multipliers
from service.simulator.config import Shift, ShopConfig
from service.simulator.files import write_shop

CONFIG = ShopConfig(customers=4_000, days=730, horizon_days=180, seed=7, chunk_customers=1_500)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.open()]


def read_truth(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    write_shop(CONFIG, folder, with_future=True)
    return folder


def test_same_seed_same_shop_and_another_seed_another(shop: Path, tmp_path: Path) -> None:
    write_shop(CONFIG, tmp_path / "again", with_future=True)
    write_shop(ShopConfig(**{**vars(CONFIG), "seed": 8}), tmp_path / "other")

    for name in ("events.jsonl", "profiles.jsonl", "truth.csv", "catalogue.csv", "future.jsonl"):
        assert (shop / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    assert (shop / "events.jsonl").read_bytes() != (
        tmp_path / "other" / "events.jsonl"
    ).read_bytes()


def test_truth_matches_the_future_events_and_the_observed_ones(shop: Path) -> None:
    observed: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    future: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    end = datetime.combine(CONFIG.start, datetime.min.time()) + timedelta(days=CONFIG.days)
    for event in read_jsonl(shop / "events.jsonl"):
        assert datetime.fromisoformat(event["occurred_at"][:-1]) < end
        if event["type"] == "purchase":
            observed[event["customer_id"]][0] += 1
            observed[event["customer_id"]][1] += float(event["amount"])
    for event in read_jsonl(shop / "future.jsonl"):
        assert datetime.fromisoformat(event["occurred_at"][:-1]) >= end
        if event["type"] == "purchase":
            future[event["customer_id"]][0] += 1
            future[event["customer_id"]][1] += float(event["amount"])
        if event["type"] == "refund":
            future[event["customer_id"]][2] += float(event["amount"])

    for row in read_truth(shop / "truth.csv"):
        customer = row["customer_id"]
        assert float(row["orders_observed"]) == observed[customer][0]
        assert float(row["spend_observed"]) == pytest.approx(observed[customer][1], abs=1e-6)
        assert float(row["orders_future"]) == future[customer][0]
        assert float(row["spend_future"]) == pytest.approx(future[customer][1], abs=1e-6)
        assert float(row["refunds_future"]) == pytest.approx(future[customer][2], abs=1e-6)
        if row["alive_at_end"] == "False":
            assert float(row["orders_future"]) == 0


def _expected_observed_orders(truth: list[dict[str, str]], config: ShopConfig) -> float:
    """first orders + rate x integral of the seasonal multiplier over each customer's life."""
    cumulative = np.concatenate([[0.0], np.cumsum(daily_multipliers(config.start, config.days))])

    def integral(t: np.ndarray) -> np.ndarray:
        day = np.minimum(t.astype(int), config.days - 1)
        return cumulative[day] + (t - day) * (cumulative[day + 1] - cumulative[day])

    acquired = np.array([float(r["acquired_day"]) for r in truth])
    stop = np.minimum(np.array([float(r["death_day"]) for r in truth]), config.days)
    rate = np.array([float(r["purchase_rate"]) for r in truth])
    repeat = rate * np.maximum(integral(stop) - integral(np.minimum(acquired, stop)), 0)
    return float(config.first_order_share * len(truth) + repeat.sum())


def test_realised_statistics_match_the_parameters(shop: Path) -> None:
    truth = read_truth(shop / "truth.csv")
    events = read_jsonl(shop / "events.jsonl")
    kinds = Counter(event["type"] for event in events)
    amounts = [float(e["amount"]) for e in events if e["type"] == "purchase"]

    # Orders: the thinned seasonal process realises its expectation (Poisson noise ~0.5%).
    assert kinds["purchase"] == pytest.approx(_expected_observed_orders(truth, CONFIG), rel=0.03)
    # Order values: Gamma-Gamma mean p * gamma / (q - 1), about the zero-value share.
    expected_mean = CONFIG.p * CONFIG.gamma / (CONFIG.q - 1) * (1 - CONFIG.zero_value_share)
    assert np.mean(amounts) == pytest.approx(expected_mean, rel=0.12)  # profile multipliers
    assert np.mean(np.array(amounts) == 0) == pytest.approx(CONFIG.zero_value_share, abs=0.006)
    assert kinds["refund"] / kinds["purchase"] == pytest.approx(0.04, abs=0.01)
    # Future window: the oracle's expected orders average out to the realised ones.
    realised = sum(float(r["orders_future"]) for r in truth)
    expected = sum(float(r["expected_orders_future"]) for r in truth)
    assert realised == pytest.approx(expected, rel=0.05)


def test_the_shop_behaves_like_a_shop(shop: Path) -> None:
    truth = read_truth(shop / "truth.csv")
    events = read_jsonl(shop / "events.jsonl")
    profiles = read_jsonl(shop / "profiles.jsonl")
    purchases = [e for e in events if e["type"] == "purchase"]
    days = [date.fromisoformat(e["occurred_at"][:10]) for e in purchases]

    # Cohorts: customers arrive throughout the window, more of them later.
    acquired = np.array([float(r["acquired_day"]) for r in truth])
    assert np.quantile(acquired, 0.1) > 30
    assert (acquired > 365).mean() > 0.55
    # Weekly and yearly seasonality, promotion days.
    per_weekday = Counter(d.weekday() for d in days)
    assert per_weekday[5] > 1.07 * per_weekday[0]  # first orders (on arrival) dilute it
    december = sum(d.month == 12 for d in days) / 2
    june = sum(d.month == 6 for d in days) / 2
    assert december > 1.2 * june
    per_day = Counter(days)
    promotions = {date(2025, 11, 28), date(2025, 12, 1)}  # Black Friday, Cyber Monday
    ordinary = [
        per_day[date(2025, 11, d)] for d in range(1, 31) if date(2025, 11, d) not in promotions
    ]
    assert per_day[date(2025, 11, 28)] > 1.8 * np.mean(ordinary)
    # Coverage of the extra sources.
    sources = Counter(p["source"] for p in profiles)
    assert sources["platform"] == CONFIG.customers
    assert sources["social"] / CONFIG.customers == pytest.approx(0.4, abs=0.03)
    assert sources["third_party"] / CONFIG.customers == pytest.approx(0.35, abs=0.03)


def test_browsing_rises_before_orders_and_tracks_purchase_propensity(shop: Path) -> None:
    truth = {r["customer_id"]: r for r in read_truth(shop / "truth.csv")}
    events = read_jsonl(shop / "events.jsonl")
    sessions: dict[str, list[float]] = defaultdict(list)
    orders: dict[str, list[float]] = defaultdict(list)
    for event in events:
        moment = datetime.fromisoformat(event["occurred_at"][:-1]).timestamp() / 86400
        if event["type"] == "session_start":
            sessions[event["customer_id"]].append(moment)
        elif event["type"] == "purchase":
            orders[event["customer_id"]].append(moment)
    before = sum(
        sum(o - 5 <= s < o - 0.02 for s in sessions[c])
        for c, times in orders.items()
        for o in times
    ) / sum(len(t) for t in orders.values())
    after = sum(
        sum(o + 0.02 < s <= o + 5 for s in sessions[c])
        for c, times in orders.items()
        for o in times
    ) / sum(len(t) for t in orders.values())
    assert before > 2 * after

    rate = np.array([float(truth[c]["purchase_rate"]) for c in truth])
    visits = np.array([len(sessions[c]) for c in truth])
    high = rate > np.median(rate)
    assert visits[high].mean() > 1.5 * visits[~high].mean()


def test_big_spenders_lean_towards_premium_categories(shop: Path) -> None:
    truth = {r["customer_id"]: float(r["mean_order_value"]) for r in read_truth(shop / "truth.csv")}
    premium = {"electronics", "furniture", "jewelry"}
    share: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for event in read_jsonl(shop / "events.jsonl"):
        for item in event.get("items") or []:
            share[event["customer_id"]][0] += item["category"] in premium
            share[event["customer_id"]][1] += 1
    customers = [c for c in share if share[c][1] >= 5]
    values = np.array([truth[c] for c in customers])
    premium_share = np.array([share[c][0] / share[c][1] for c in customers])
    assert np.corrcoef(np.log(values), premium_share)[0, 1] > 0.2


def test_a_behaviour_shift_cuts_one_channels_orders_after_its_day(tmp_path: Path) -> None:
    base = ShopConfig(customers=3_000, days=730, horizon_days=30, seed=3)
    shifted = ShopConfig(
        **{**vars(base), "shift": Shift(day=500, channel="paid_social", factor=0.2)}
    )
    write_shop(base, tmp_path / "base")
    write_shop(shifted, tmp_path / "shifted")

    def orders_by_period(folder: Path) -> dict[tuple[str, bool], int]:
        channel = {
            r["customer_id"]: r["acquisition_channel"] for r in read_truth(folder / "truth.csv")
        }
        counts: Counter[tuple[str, bool]] = Counter()
        for event in read_jsonl(folder / "events.jsonl"):
            if event["type"] == "purchase":
                late = date.fromisoformat(event["occurred_at"][:10]) >= date(2025, 5, 15)
                counts[channel[event["customer_id"]] == "paid_social", late] += 1
        return counts

    before, after = orders_by_period(tmp_path / "base"), orders_by_period(tmp_path / "shifted")
    assert after[True, True] < 0.45 * before[True, True]  # the shifted cohort, after the day
    assert after[False, True] == before[False, True]  # everyone else is unchanged
    assert after[True, False] == pytest.approx(before[True, False], rel=0.05)


def test_the_oracle_at_any_as_of_matches_the_orders_that_follow(shop: Path) -> None:
    """Mid-window (at the end of a day, as backtests ask), the oracle counts every customer
    acquired by then, including that very day, and its expectation meets the realised spend."""
    import pandas as pd

    from service.simulator.oracle import expected_spend

    truth = pd.read_csv(shop / "truth.csv")
    origin = datetime(CONFIG.start.year, CONFIG.start.month, CONFIG.start.day, tzinfo=UTC)
    as_of = origin + timedelta(days=500, seconds=-1)  # the end of day 499
    spend = pd.Series(0.0, index=truth["customer_id"])
    for event in read_jsonl(shop / "events.jsonl"):
        moment = datetime.fromisoformat(event["occurred_at"])
        if event["type"] == "purchase" and as_of < moment <= as_of + timedelta(days=180):
            spend[event["customer_id"]] += float(event["amount"])

    oracle = expected_spend(truth, CONFIG, as_of, 180)

    same_day = truth["acquired_day"].between(499, 500).to_numpy()
    assert same_day.any()
    assert (oracle.to_numpy()[same_day] > 0).any()
    known = (truth["acquired_day"] < 500).to_numpy()  # later arrivals are no one's prediction
    assert oracle.sum() == pytest.approx(spend[known].sum(), rel=0.06)
    at_the_end = expected_spend(truth, CONFIG, origin + timedelta(days=CONFIG.days), 180)
    np.testing.assert_allclose(at_the_end.to_numpy(), truth["expected_spend_future"], rtol=1e-3)
