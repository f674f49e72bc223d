"""The kinds of event a storefront sends. Kept apart from the tables (``models.py``) so that what
only names them (the CLI's options) imports no database library."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    purchase = "purchase"
    refund = "refund"
    view = "view"
    add_to_cart = "add_to_cart"
    remove_from_cart = "remove_from_cart"
    checkout_started = "checkout_started"
    session_start = "session_start"


MONETARY_EVENT_TYPES = frozenset({EventType.purchase, EventType.refund})
"""Types whose ``amount`` is money that changed hands, and therefore required."""
