"""Risk flags on a simulated shop: how many ordinary customers get flagged, and how fast.

The simulated customers buy and refund by a stationary process (BG/NBD-like purchasing,
Gamma-Gamma spend, ~4% of orders refunded): nothing in it is a real anomaly, so every flag
is a false positive. The share flagged is measured at several cut-offs (every 30 days over the
last ``--cutoffs`` months of the observed period), among the customers with any event by the
cut-off and among those eligible for spend_spike (bought at least CLV_RISK_MIN_HISTORY_DAYS
before the window). Time: every customer at once (the rescoring path), per 1,000 customers,
and one customer alone (the profile path).

    .venv/bin/python bench/risk_flags.py [--shop FOLDER] [--customers 5000 --days 540 --seed 7]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile, report
from service.ml.activity import EVENT_COLUMNS, ITEM_COLUMNS, MONEY_UNITS, aggregate_frames
from service.risk.flags import (
    RiskRules,
    refund_spikes,
    risk_flags,
    risk_measures,
    spend_spikes,
)
from service.simulator.config import ShopConfig
from service.simulator.files import write_shop


def read_events(folder: Path) -> tuple[pd.DataFrame, int]:
    """The shop's observed events (``EVENT_COLUMNS``), and the last observed day number."""
    rows = []
    with (folder / "events.jsonl").open() as lines:
        for seq, line in enumerate(lines):
            event = json.loads(line)
            seconds = int(datetime.fromisoformat(event["occurred_at"]).timestamp())
            amount = int(Decimal(event.get("amount") or 0) * MONEY_UNITS)
            rows.append((seq, event["customer_id"], event["type"], seconds, amount))
    events = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    config = json.loads((folder / "shop.json").read_text())["config"]
    start = date.fromisoformat(config["start"])
    last_day = (start - date(1970, 1, 1)).days + int(config["days"]) - 1
    return events, last_day


def measure(days: pd.DataFrame, cutoffs: list[int], rules: RiskRules) -> pd.DataFrame:
    """Every customer's measures at every cut-off, stacked, and the seconds ``risk_flags`` took
    for everyone at each (in ``attrs``)."""
    parts, seconds = [], 0.0
    for cutoff in cutoffs:
        known = days[days["day"] <= cutoff]
        started = time.perf_counter()
        risk_flags(known, cutoff, rules)
        seconds += time.perf_counter() - started
        parts.append(risk_measures(known, cutoff, rules).reset_index())
    stacked = pd.concat(parts, ignore_index=True)
    stacked.attrs["seconds"] = seconds
    return stacked


def flagged_pct(measures: pd.DataFrame, rules: RiskRules) -> dict[str, float]:
    """The share of customer-cut-offs flagged, in %, among all, among those eligible for
    spend_spike, and among those who bought in the window."""
    spend, refund = spend_spikes(measures, rules), refund_spikes(measures, rules)
    eligible = measures["history_days"] >= rules.min_history_days
    buying = measures["recent_orders"] > 0

    def pct(flags: pd.Series, among: pd.Series) -> float:
        return round(100 * float(flags[among].sum()) / max(int(among.sum()), 1), 3)

    everyone = pd.Series(True, index=measures.index)
    return {
        "spend_spike_pct": pct(spend, everyone),
        "spend_spike_pct_of_eligible": pct(spend, eligible),
        "spend_spike_pct_of_recent_buyers": pct(spend, buying),
        "refund_spike_pct": pct(refund, everyone),
        "any_flag_pct": pct(spend | refund, everyone),
    }


def sensitivity(measures: pd.DataFrame) -> dict[str, float]:
    """spend_spike share (% of customer-cut-offs) under other thresholds: ratio x min spend."""
    return {
        f"ratio {ratio:g}, min spend {minimum:g}": flagged_pct(
            measures, RiskRules(spend_spike_ratio=ratio, min_spend=minimum)
        )["spend_spike_pct"]
        for minimum in (100.0, 250.0, 500.0)
        for ratio in (3.0, 5.0, 10.0)
    }


def one_customer_ms(days: pd.DataFrame, as_of_day: int, rules: RiskRules) -> float:
    """Median time of the flags of one customer alone (the profile's call), in ms."""
    customers = days["customer_id"].drop_duplicates().sample(200, random_state=1)
    timings = []
    for customer in customers:
        part = days[days["customer_id"] == customer]
        started = time.perf_counter()
        risk_flags(part, as_of_day, rules)
        timings.append((time.perf_counter() - started) * 1000)
    return percentile(timings, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shop", type=Path, help="A `clv simulate` folder (default: simulate).")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cutoffs", type=int, default=6, help="Monthly cut-offs measured.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.shop
        if folder is None:
            folder = Path(scratch)
            config = ShopConfig(customers=args.customers, days=args.days, seed=args.seed)
            write_shop(config, folder)
        events, last_day = read_events(folder)
    days = aggregate_frames(events, pd.DataFrame(columns=ITEM_COLUMNS)).days
    rules = RiskRules()
    cutoffs = [last_day - 30 * k for k in range(args.cutoffs)]
    measures = measure(days, cutoffs, rules)
    result: dict[str, Any] = {
        "rules": rules.__dict__,
        "shop": str(folder) if args.shop else f"{args.customers} customers, {args.days} days",
        "cutoffs": [str(date(1970, 1, 1) + timedelta(days=c)) for c in cutoffs],
        "customer_cutoffs": len(measures),
        "eligible_for_spend_spike": int((measures["history_days"] >= rules.min_history_days).sum()),
        "bought_in_window": int((measures["recent_orders"] > 0).sum()),
        **flagged_pct(measures, rules),
        "flagged": {
            "spend_spike": int(spend_spikes(measures, rules).sum()),
            "refund_spike": int(refund_spikes(measures, rules).sum()),
        },
        "spend_spike_pct_by_thresholds": sensitivity(measures),
        "ms_per_1000_customers": round(1e6 * measures.attrs["seconds"] / len(measures), 2),
        "ms_one_customer_p50": round(one_customer_ms(days, last_day, rules), 3),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report("risk_flags", result)


if __name__ == "__main__":
    main()
