"""A trained CLV model: feature pipeline, BTYD baselines, scaler, ZILN network, and what serves.

``predict`` turns examples (``service.ml.examples``) into scores. For customers with an order,
expected spend in the horizon (``clv``) comes from the candidate the selection rule picked
(``service.ml.selection``: the network, a BTYD model, or the blend of both); customers without
one are always the network's (the BTYD models start at a first purchase). The interval is the
served value's, calibrated on the selection window; the probability of any purchase is the
served model's (the churn probability is its complement); the probability of being alive is
Pareto/NBD's, which grades one-order customers and is 1 right after a purchase (BG/NBD's where
Pareto/NBD did not converge on the shop); the expected
order value is Gamma-Gamma's and expected orders are clv over it.

An order never lowers expected orders, so it lowers clv only through a lower expected order
value. The BTYD models are so by structure; where the network ranks customers (deep or blend),
expected orders are floored at the most the same candidate gives the customer at the same moment
without the orders of the day before it (``Examples.earlier``, ``_floored``).

Within the span of label windows it was trained on, the horizon is
the network's own input; outside it (data too short for labels at the asked horizon, or a horizon
shorter than any window) its outputs at the nearest end of the span are carried to the asked
horizon by the ratio of the BTYD expected purchases at both.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch.ao.quantization import quantize_dynamic

from service.ml.activity import Activity
from service.ml.btyd import explain as btyd_explain
from service.ml.btyd.baseline import BtydBaseline
from service.ml.examples import (
    EXTRA_DEFINITIONS,
    HORIZON_FEATURE,
    EventLog,
    Examples,
    Profiles,
    RecentEvents,
    Sources,
    assemble,
    build,
    build_without_events,
)
from service.ml.explain import Attributions, Background, expected_gradients
from service.ml.features import FeatureDef
from service.ml.losses import ziln_mean, ziln_parameters
from service.ml.portrait import FeaturePipeline
from service.ml.prefixes import Orders
from service.ml.selection import Serving
from service.ml.sequences import channel_definitions

if TYPE_CHECKING:  # training builds models: importing it here would be circular
    from service.ml.training.report import TrainingReport

SCORE_COLUMNS = (
    "clv",
    "p10",
    "p50",
    "p90",
    "purchase_probability",
    "expected_orders",
    "probability_alive",
    "expected_order_value",
    "btyd_clv",
)


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): tames counts and money, which span orders of magnitude."""
    logged: np.ndarray = np.sign(values) * np.log1p(np.abs(values))
    return logged


@dataclass
class ClvModel:
    net: torch.nn.Module
    architecture: str
    net_config: dict[str, Any]
    pipeline: FeaturePipeline
    btyd: BtydBaseline
    feature_names: list[str]
    scaler_mean: np.ndarray
    scaler_std: np.ndarray
    sequence_length: int
    horizon_days: int
    trained_horizon_days: int
    shortest_horizon_days: int  # the shortest label window it was trained on
    log_calibration: float = 0.0  # added to mu
    device: str = "cpu"
    training_report: TrainingReport | None = None  # set by training: see ``report``
    background: Background | None = None  # for explanations: summarised training customers
    float_net: torch.nn.Module | None = None  # the float network behind a quantized ``net``
    baselines: dict[str, BtydBaseline] = field(default_factory=dict)  # every BTYD candidate
    serving: Serving | None = None  # set by training: what serves customers with an order

    @property
    def report(self) -> TrainingReport:
        """How training made this model: its data, windows, epochs and configuration, and
        what serves and why (``service.ml.training.report``)."""
        if self.training_report is None:
            raise ValueError("this model has no training report (a network only); retrain it")
        return self.training_report

    def tabular_tensor(self, tabular: pd.DataFrame) -> torch.Tensor:
        ordered = (
            tabular if list(tabular.columns) == self.feature_names else tabular[self.feature_names]
        )
        values = signed_log(ordered.to_numpy(dtype=np.float64))
        scaled = (values - self.scaler_mean) / self.scaler_std
        return torch.as_tensor(scaled, dtype=torch.float32)

    @property
    def network_horizon_days(self) -> int:
        """The horizon the network predicts for: the asked one when its label windows spanned it
        (the horizon is an input), else the nearest end of that span; from there its outputs are
        carried to the asked horizon (``_carry``)."""
        return min(max(self.horizon_days, self.shortest_horizon_days), self.trained_horizon_days)

    def examples(
        self,
        log: EventLog,
        profiles: Profiles,
        sources: Sources,
        as_of: datetime,
        label_days: int | None = None,
        activity: Activity | None = None,
    ) -> Examples:
        """Every customer with an event by ``as_of``, ready for ``predict``: the features describe
        the asked horizon, or the trained one when it is shorter (``predict`` carries the rest).
        ``activity``: the log's aggregates up to ``as_of``, when the caller has them already."""
        return build(
            log,
            profiles,
            sources,
            self.pipeline,
            self.btyd,
            as_of,
            self.network_horizon_days,
            self.sequence_length,
            label_days,
            activity,
            with_earlier=True,
        )

    def examples_from_portrait(
        self,
        activity: Activity,
        recent: RecentEvents,
        profiles: Profiles,
        sources: Sources,
        as_of: datetime,
        orders: Orders | None = None,
    ) -> Examples:
        """As ``examples``, from the aggregates at ``as_of`` and each customer's latest events
        rather than their whole log (``assemble``); ``orders``: their orders of the day, which
        ``floors`` needs (``recent`` then holds ``Orders.most`` events more)."""
        return assemble(
            activity,
            recent,
            profiles,
            sources,
            self.pipeline,
            self.btyd,
            as_of,
            self.network_horizon_days,
            self.sequence_length,
            orders,
        )

    def examples_without_events(
        self, customers: pd.Index, profiles: Profiles, sources: Sources
    ) -> Examples:
        """Customers known only from their attributes (``build_without_events``)."""
        return build_without_events(
            customers,
            profiles,
            sources,
            self.pipeline,
            self.btyd,
            self.network_horizon_days,
            self.sequence_length,
        )

    @torch.no_grad()
    def logits(self, examples: Examples, batch_size: int = 4096) -> torch.Tensor:
        """(n, 3) ZILN logits for the network's horizon, calibrated (mu shifted)."""
        self.net.eval()
        tabular = self.tabular_tensor(examples.tabular)
        sequences = torch.as_tensor(examples.sequences)
        parts = []
        for start in range(0, len(tabular), batch_size):
            part = self.net(
                sequences[start : start + batch_size].to(self.device),
                tabular[start : start + batch_size].to(self.device),
            )
            parts.append(part.float().cpu())
        logits = torch.cat(parts) if parts else torch.zeros((0, 3))
        logits[:, 1] += self.log_calibration
        return logits

    def network_clv(self, examples: Examples) -> np.ndarray:
        """The network's expected spend at the asked horizon, calibrated and carried."""
        return self.network_outputs(examples)[0]

    def network_outputs(self, examples: Examples) -> tuple[np.ndarray, np.ndarray]:
        """The network's (expected spend, probability of any purchase) at the asked horizon."""
        logits = self.logits(examples)
        p, _, _ = ziln_parameters(logits)
        clv: np.ndarray = ziln_mean(logits).numpy() * self._carry(examples.portrait)
        purchase = 1 - (1 - p.numpy()) ** (self.horizon_days / self.network_horizon_days)
        return clv, purchase

    def floored_network_outputs(self, examples: Examples) -> tuple[np.ndarray, np.ndarray]:
        """``network_outputs`` with the spend floored as the deep candidate serves it
        (``_floored``): what training judges the network on."""
        clv, purchase = self.network_outputs(examples)
        return self._floored("deep", examples, clv, self._before(examples)), purchase

    @property
    def floors(self) -> bool:
        """Whether its scores need ``Examples.earlier``: where the network ranks the
        customers with an order (deep or blend serving, or a network only)."""
        return self.serving is None or self.serving.served not in self.baselines

    def predict(self, examples: Examples) -> pd.DataFrame:
        serving = self._serving()
        deep, purchase = self.network_outputs(examples)
        portrait = examples.portrait
        bought = portrait["has_purchased"].to_numpy() > 0
        clv, purchase = self._served(examples, deep, purchase)
        p10, p50, p90 = serving.bands.apply(clv, self.horizon_days)
        scores = pd.DataFrame(
            {"clv": clv, "p10": p10, "p50": p50, "p90": p90, "purchase_probability": purchase},
            index=examples.customers,
        )
        order_value = self._order_values(examples)
        scores["expected_orders"] = clv / np.maximum(order_value, 1e-9)
        alive = self.baselines.get("paretonbd", self.btyd).probability_alive(portrait)
        scores["probability_alive"] = np.where(bought, alive, purchase)
        scores["expected_order_value"] = order_value
        scores["btyd_clv"] = (
            examples.tabular["btyd_clv"].to_numpy()
            if self.network_horizon_days == self.horizon_days
            else self.btyd.predict(portrait, self.horizon_days)["btyd_clv"].to_numpy()
        )
        return scores[list(SCORE_COLUMNS)].astype(float)

    def _serving(self) -> Serving:
        if self.serving is None:
            raise ValueError("this model has no serving choice (a network only); retrain it")
        return self.serving

    def _order_values(self, examples: Examples) -> np.ndarray:
        """Gamma-Gamma's expected order value: the customer's with an order, the population's
        without."""
        bought = examples.portrait["has_purchased"].to_numpy() > 0
        nobody = np.zeros(1)
        population = self.btyd.spend_.conditional_expected_average_profit(nobody, nobody)
        values: np.ndarray = np.where(
            bought, examples.tabular["btyd_order_value"].to_numpy(), population[0]
        )
        return values

    def _served(
        self, examples: Examples, deep: np.ndarray, purchase: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(clv, purchase probability) of the served candidate; the network's for customers
        without an order."""
        served, portrait = self._serving().served, examples.portrait
        if served not in self.baselines:
            return self._floored(served, examples, deep, self._before(examples)), purchase
        bought = portrait["has_purchased"].to_numpy() > 0
        baseline, days = self.baselines[served], self.horizon_days
        btyd = baseline.predict(portrait, days)["btyd_clv"].to_numpy()
        quiet = baseline.probability_no_purchase(portrait, days)
        return np.where(bought, btyd, deep), np.where(bought, 1 - quiet, purchase)

    def _ranked(self, candidate: str, examples: Examples, deep: np.ndarray) -> np.ndarray:
        """The spend of a candidate the network ranks: its own (deep), or the blend for the
        customers with an order (the network's ranking at the anchor's level)."""
        if candidate == "deep":
            return deep
        bought = examples.portrait["has_purchased"].to_numpy() > 0
        return np.where(bought, self._blend(deep), deep)

    def _before(self, examples: Examples) -> tuple[Examples, np.ndarray] | None:
        """``Examples.earlier`` and the network's spend on them, if built."""
        earlier = examples.earlier
        if earlier is None or not len(earlier.customers):
            return None
        return earlier, self.network_clv(earlier)

    def _floored(
        self,
        candidate: str,
        examples: Examples,
        deep: np.ndarray,
        before: tuple[Examples, np.ndarray] | None,
    ) -> np.ndarray:
        """A network-ranked candidate's spend (``_ranked``), raised where needed so that its
        expected orders (spend over ``_order_values``) are the most it gives the customer or any
        of their prefixes: the customer at the same moment less their last 1, 2, ... orders of
        the day before it (``service.ml.prefixes``). An order then never lowers expected orders
        when the customer is scored within the day, and lowers spend only through a lower
        expected order value, in proportion. The network alone does not guarantee it: a dear
        order raises the expected order value more than the network raises its spend, and a
        cheap one can read to it as a customer spending less. One prefix is not enough: the
        floor of the customer with the order must cover the floor without it."""
        clv = self._ranked(candidate, examples, deep)
        if before is None:
            return clv
        earlier, earlier_deep = before
        orders = self._ranked(candidate, earlier, earlier_deep) / self._order_values(earlier)
        most = pd.Series(orders, earlier.customers).groupby(level=0).max()
        floor = most.reindex(examples.customers).to_numpy() * self._order_values(examples)
        return np.where(floor > clv, floor, clv)  # NaN (no prefix): compares False

    def _blend(self, deep: np.ndarray) -> np.ndarray:
        blend = self._serving().blend
        if blend is None:
            raise ValueError("this model was saved without the blend's quantile map; retrain")
        return blend.apply(deep, self.horizon_days)

    def candidates(self, examples: Examples) -> pd.DataFrame:
        """Every candidate's expected spend (columns: deep, blend and each BTYD model that
        converged at the training time), whatever serves: for comparing them on later data
        (``bench/real_data.py``, backtests)."""
        deep, before = self.network_clv(examples), self._before(examples)
        bought = examples.portrait["has_purchased"].to_numpy() > 0
        columns = {name: self._floored(name, examples, deep, before) for name in ("deep", "blend")}
        for name, baseline in self.baselines.items():
            btyd = baseline.predict(examples.portrait, self.horizon_days)["btyd_clv"]
            columns[name] = np.where(bought, btyd.to_numpy(), deep)
        return pd.DataFrame(columns, index=examples.customers)

    def explain(self, examples: Examples) -> Attributions:
        """SHAP attributions of ``predict``'s ``clv`` (``service.ml.explain``): tabular features
        in ``feature_names`` order, then event channels as in ``definitions``. The blend's are
        the network's, scaled to the blended score (the quantile map is a per-customer factor
        on the network's score, shared in proportion); where a BTYD model serves, its exact
        Shapley values over its four inputs for the customers with an order
        (``service.ml.btyd.explain``), the network's for the others."""
        if self.background is None:
            raise ValueError("this model was saved without an explanation background; retrain")
        served = self._serving().served
        n, channels = len(examples.customers), examples.sequences.shape[2]
        attributions = Attributions(
            np.zeros(n), np.zeros((n, len(self.feature_names))), np.zeros((n, channels))
        )
        bought = examples.portrait["has_purchased"].to_numpy() > 0
        by_network = ~bought if served in self.baselines else np.ones(n, dtype=bool)
        if by_network.any():
            self._network_attributions(examples.subset(by_network), by_network, attributions)
        if (~by_network).any():
            self._btyd_attributions(examples.subset(~by_network), ~by_network, attributions)
        return attributions

    def _network_attributions(
        self, examples: Examples, rows: np.ndarray, attributions: Attributions
    ) -> None:
        """Expected gradients of the network, scaled to the served score."""
        assert self.background is not None
        deep, purchase = self.network_outputs(examples)
        served, _ = self._served(examples, deep, purchase)
        ratio = np.where(deep > 0, served / np.maximum(deep, 1e-12), 1.0)
        explained = expected_gradients(
            self.float_net or self.net,
            torch.as_tensor(examples.sequences),
            self.tabular_tensor(examples.tabular),
            self.background,
            log_calibration=self.log_calibration,
            scale=self._carry(examples.portrait) * ratio,
            fixed_column=self.feature_names.index(HORIZON_FEATURE),
            device=self.device,
        )
        attributions.base[rows] = explained.base
        attributions.tabular[rows] = explained.tabular
        attributions.sequence[rows] = explained.sequence

    def _btyd_attributions(
        self, examples: Examples, rows: np.ndarray, attributions: Attributions
    ) -> None:
        """The served BTYD model's exact Shapley values (the other features and the event
        channels contribute nothing), against the background customers with an order (the
        others are outside the model), or all of them when none has one."""
        assert self.background is not None
        columns = [self.feature_names.index(name) for name in btyd_explain.INPUTS]
        scaled = self.background.tabular.numpy().astype(np.float64)
        logged = scaled * self.scaler_std + self.scaler_mean
        raw = np.sign(logged) * np.expm1(np.abs(logged))
        weights = self.background.weights.numpy().astype(np.float64)
        buyers = raw[:, self.feature_names.index("has_purchased")] > 0.5
        if buyers.any():
            raw, weights = raw[buyers], weights[buyers]
        base, contributions = btyd_explain.attributions(
            self.baselines[self._serving().served],
            examples.portrait[list(btyd_explain.INPUTS)].to_numpy(np.float64),
            raw[:, columns],
            self.horizon_days,
            examples.portrait[list(btyd_explain.CUTOFF)].to_numpy(np.float64),
            weights,
        )
        attributions.base[rows] = base
        attributions.tabular[np.ix_(rows, np.array(columns))] = contributions

    def quantized(self) -> ClvModel:
        """The model with its linear and recurrent layers dynamically quantized to int8 (CPU
        only): faster scoring; explanations keep using the float network, which gradients need,
        and so do the scores they explain (``service.scoring``)."""
        net = quantize_dynamic(  # type: ignore[no-untyped-call]
            copy.deepcopy(self.float_net or self.net).cpu(),
            {torch.nn.Linear, torch.nn.GRU, torch.nn.LSTM},
            dtype=torch.qint8,
        )
        return replace(self, net=net, float_net=self.float_net or self.net, device="cpu")

    @cached_property
    def definitions(self) -> tuple[list[FeatureDef], list[FeatureDef]]:
        """What each attribution is about: (tabular features, event channels)."""
        tabular = [*self.pipeline.definitions(), *EXTRA_DEFINITIONS]
        return tabular, channel_definitions(self.pipeline.categories_, self.sequence_length)

    def _carry(self, portrait: pd.DataFrame) -> np.ndarray:
        """Per-customer factor from the network's horizon to the asked one (1 when equal): the
        BTYD purchase curve's ratio for customers it covers, linear in time for the others."""
        if self.network_horizon_days == self.horizon_days:
            return np.ones(len(portrait))
        full = self.btyd.expected_orders(portrait, self.horizon_days)
        short = self.btyd.expected_orders(portrait, self.network_horizon_days)
        linear = self.horizon_days / self.network_horizon_days
        return np.where(short > 1e-12, full / np.maximum(short, 1e-12), linear)
