"""``train_or_refuse``: data that cannot train become the caller's refusal, with the caller's
words ahead of what is missing. No database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.errors import InvalidRequestError
from service.ml.training import TrainConfig
from service.simulator.config import ShopConfig
from service.simulator.memory import shop_log
from service.training.runner import train_or_refuse

SMALL = ShopConfig(customers=60, days=120, horizon_days=30, seed=3, start=ShopConfig().start)


class SkippedError(Exception):
    """A caller's own refusal, as the learning loop's skipped run."""


def test_too_short_data_are_a_422_that_says_what_is_needed() -> None:
    log, profiles, sources = shop_log(SMALL)
    as_of = log.first_moment + timedelta(days=70)

    with pytest.raises(
        InvalidRequestError, match=r"^cannot train for 30 days: .*needs at least 88"
    ):
        train_or_refuse(
            log, profiles, sources, as_of, TrainConfig(30), refusal="cannot train for 30 days"
        )


def test_a_caller_may_refuse_with_its_own_error() -> None:
    log, profiles, sources = shop_log(SMALL)
    before_any_event = log.first_moment - timedelta(days=1)

    with pytest.raises(SkippedError, match=r"^cannot train a challenger: there are no events"):
        train_or_refuse(
            log,
            profiles,
            sources,
            before_any_event,
            TrainConfig(30),
            refusal="cannot train a challenger",
            refused=SkippedError,
        )
