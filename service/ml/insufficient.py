"""Data that cannot train a model at all, refused early with a message that says what is missing.

A shop may send very little (DESIGN: "inputs degrade, the service does not"): feature groups that
cannot be fitted are left out (``FeaturePipeline.omitted_``). But without orders there is nothing
to learn spend from, and every model (the BTYD baseline included) would fail deep inside an
optimiser instead. Training's ``DataTooShortError`` (data too short in time) is a kind of
``InsufficientDataError``: ``service.training.runner.train_or_refuse`` turns either into the
caller's refusal (a 422, a failed job, a skipped learning run).
"""

from __future__ import annotations

import pandas as pd

MIN_BUYERS = 2
"""Customers with an order, and customers with a repeat order of some value, below which the
BTYD models (the baseline, and features of the deep model) have nothing to fit: BG/NBD learns
from repeat purchases, Gamma-Gamma from the value of repeat orders. The finer limits (enough
buyers to hold some out for validation) are training's."""


class InsufficientDataError(ValueError):
    """The data cannot train a model at all; the message says what is missing."""


def require_events(events: pd.DataFrame) -> None:
    """Refuse an empty log: there is no first moment to plan windows from."""
    if events.empty:
        raise InsufficientDataError("there are no events: training needs orders")


def require_orders(days: pd.DataFrame) -> None:
    """Refuse activity (``days``: its day aggregates) with fewer than ``MIN_BUYERS`` customers
    with an order, or with a repeat order of positive amount. The message names what the data
    hold instead, so a shop that sent only refunds, browsing or single orders knows what to send.
    """
    purchase_days = days[days["orders"] > 0].sort_values(["customer_id", "day"])
    buyers = purchase_days["customer_id"].nunique()
    repeat = purchase_days[purchase_days.groupby("customer_id").cumcount() > 0]
    repeat_spend = repeat.groupby("customer_id")["spend_units"].sum()
    repeaters = int((repeat_spend > 0).sum())
    if buyers < MIN_BUYERS:
        refunds = int(days["refunds"].sum())
        also = f" and {refunds} refund(s)" if refunds else ""
        raise InsufficientDataError(
            f"the events hold {buyers} customer(s) with an order{also}; training needs purchases "
            f"(customer, time, amount) from at least {MIN_BUYERS} customers"
        )
    if repeaters < MIN_BUYERS:
        raise InsufficientDataError(
            f"{repeaters} of the {buyers} customers with an order ordered again for a positive "
            f"amount; training needs repeat orders from at least {MIN_BUYERS} customers (the "
            "BTYD models learn from them)"
        )
