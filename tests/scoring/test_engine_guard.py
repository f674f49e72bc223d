"""A customer whose score comes out as no finite number is left out of the batch and logged,
never stored as NaN nor allowed to break the scores of the others (``engine._score``)."""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import pytest

from service.ml.clv_model import SCORE_COLUMNS, ClvModel
from service.scoring import engine
from service.simulator.memory import end_of_observation, shop_log
from tests.conftest import SHOP


def test_a_customer_scored_nan_is_left_out_and_logged(
    shop_model: ClvModel, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a logger of its own: in the full suite the engine's record did not reach caplog (an
    # earlier test in the same process had reconfigured logging); this one propagates to it
    monkeypatch.setattr(engine, "logger", logging.getLogger("tests.engine_guard"))
    log, profiles, sources = shop_log(SHOP)
    as_of = end_of_observation(SHOP) - timedelta(days=30)
    examples = shop_model.examples(log.until(as_of), profiles, sources, as_of)
    examples = examples.subset(np.arange(len(examples.customers)) < 20)
    broken = examples.customers[3]
    # every input of one customer unreadable: the network's and the BTYD models' alike, so
    # the score is NaN whichever candidate serves them
    examples.tabular.loc[broken, :] = np.nan
    examples.portrait.loc[broken, examples.portrait.columns != "has_purchased"] = np.nan

    with caplog.at_level(logging.ERROR):
        computed = engine._score(shop_model, examples, explain=False)

    scores = computed.scores
    assert broken not in scores.index
    assert len(scores) == 19
    assert np.isfinite(scores[list(SCORE_COLUMNS)].to_numpy()).all()
    assert any(broken in record.getMessage() for record in caplog.records)
