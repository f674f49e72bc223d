"""Whether a holdout can judge a model at all: enough customers known at its start, enough of
them buying inside it.

A learning run and a backtest judge models on the customers known at a holdout's start against
what they spent in it. With (almost) none of them buying, the judgement is noise recorded as if
it meant something: the normalised Gini is 0 against 0, the decile MAPE undefined, and the
aggregate revenue error divides by nothing (3e16). So both refuse (409, ``holdout_too_thin``) a
holdout below ``CLV_HOLDOUT_MIN_CUSTOMERS`` known customers or ``CLV_HOLDOUT_MIN_BUYERS`` buyers
among them, and say from when a fair one is possible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import ConflictError
from service.events import repository as events


class ThinHoldoutError(ConflictError):
    code = "holdout_too_thin"


@dataclass(frozen=True)
class HoldoutContent:
    """What (start, end] holds: the customers known at ``start``, every order inside, and how
    many of the known customers bought inside (the ones a judgement compares spend of)."""

    start: datetime
    end: datetime
    customers: int
    orders: int
    buyers: int

    @classmethod
    def read(cls, session: Session, start: datetime, end: datetime) -> HoldoutContent:
        orders, buyers = events.purchases_between(session, start, end)
        return cls(start, end, events.known_customers(session, start), orders, buyers)

    def is_fair(self, settings: Settings) -> bool:
        return (
            self.customers >= settings.holdout_min_customers
            and self.buyers >= settings.holdout_min_buyers
        )

    def describe(self) -> str:
        days = round((self.end - self.start) / timedelta(days=1))
        return (
            f"the {days}-day holdout {self.start.date()}..{self.end.date()} holds "
            f"{self.orders} orders; {self.buyers} of the {self.customers} customers known at its "
            "start bought in it"
        )


def refuse_thin(
    session: Session,
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    run: str,
    as_of_for: Callable[[datetime], datetime] = lambda end: end,
    not_before: datetime | None = None,
) -> HoldoutContent:
    """The holdout (start, end]'s content, or ``ThinHoldoutError`` naming what it lacks and when a
    fair ``run`` is possible. ``as_of_for`` turns a holdout's end into the run's as_of (a
    backtest's as_of is its holdout's start); ``not_before``: the earliest end allowed (a
    learning run's champion must not have seen its holdout)."""
    found = HoldoutContent.read(session, start, end)
    if found.is_fair(settings):
        return found
    needs = (
        f"a fair {run} needs at least {settings.holdout_min_buyers} buyers among at least "
        f"{settings.holdout_min_customers} known customers (CLV_HOLDOUT_MIN_BUYERS, "
        "CLV_HOLDOUT_MIN_CUSTOMERS)"
    )
    advice = _advice(session, settings, found, as_of_for, not_before)
    raise ThinHoldoutError(f"{found.describe()}: {needs}; {advice}")


def _advice(
    session: Session,
    settings: Settings,
    thin: HoldoutContent,
    as_of_for: Callable[[datetime], datetime],
    not_before: datetime | None,
) -> str:
    """The latest fair as_of the stored orders allow (the holdout ending with the day of the last
    order), or else that new orders are needed."""
    last = events.last_purchase_at(session)
    if last is None:
        return "there are no orders yet: a fair run is possible once they arrive"
    length = thin.end - thin.start
    end = min(datetime.combine(last.date(), time.max, UTC), thin.end)
    allowed = end < thin.end and (not_before is None or end >= not_before)
    if allowed and HoldoutContent.read(session, end - length, end).is_fair(settings):
        return (
            f"the orders end on {last.date()}: a fair run is possible as of "
            f"{as_of_for(end).date()} (the latest the data allow)"
        )
    return (
        f"the orders end on {last.date()}: a fair run is possible once new orders after "
        f"{max(thin.start, last).date()} bring that many buyers into a holdout"
    )
