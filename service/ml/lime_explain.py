"""LIME attributions of a CLV score (Ribeiro, Singh & Guestrin 2016), beside the SHAP ones.

LIME explains one prediction by a linear model fitted, locally, to the model's outputs on
perturbed copies of the input. Here the input is the one the SHAP explainer attributes
(``service.ml.explain``): each tabular feature and each event channel (summed over the sequence's
positions) is one interpretable feature, switched on (the customer's own value) or off (the
value of a background customer: the same k-means medoids, with the same weights, that SHAP
integrates from). A perturbed copy's output is the served score averaged over the background
rows, the horizon kept at the customer's (asked, not explained), as in SHAP.

The surrogate is LIME's: ``SAMPLES`` on/off masks, the first the customer itself and the others
with a uniformly drawn number of features switched off (``LimeTextExplainer``'s sampling, the
one LIME uses for on/off representations), weighted by LIME tabular's kernel
sqrt(exp(-d^2 / w^2)), d the Euclidean distance from the all-on mask and w = 0.75 sqrt(features),
fitted by ``Ridge(alpha=1)``, LIME's default regressor; all features are kept (LIME's
"highest weights" selection of every feature). Its coefficients are the attributions and its
intercept the base: a local linear surrogate, so intercept plus weights (``local_prediction``)
approximate the score without adding up to it, unlike SHAP's.

The masks come from a generator seeded with ``SEED`` and the customer's id: the same customer
gets the same explanation whichever batch or process computes it.

Why not the ``lime`` package: its last release (0.2.0.1) is from 2020, it installs scikit-image
for image explanations we do not use, and its tabular explainer perturbs each column by
sampling from training statistics, which cannot express "this event channel takes a background
customer's values along the whole sequence". Its generic core (``lime_base.LimeBase``: kernel,
feature selection, weighted ridge) is what is reproduced here on scikit-learn (docs/decisions.md).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge

from service.ml.btyd import explain as btyd_explain
from service.ml.clv_model import ClvModel
from service.ml.examples import HORIZON_FEATURE, Examples
from service.ml.explain import Background
from service.ml.losses import ziln_mean

SAMPLES = 1000
"""Perturbed copies per explanation (LIME's default is 5,000), each costing one network pass per
background row. In ``bench/lime.py`` (2,000 simulated customers, 40 explained) explanations at
1,000 agree with those at 5,000 (Spearman 0.80 over the top 10) about as well as with SHAP's
(0.84), at a tenth of the cost: more samples buy a request little."""
SEED = 0
KERNEL_WIDTH = 0.75
"""LIME tabular's kernel width, times sqrt(number of features)."""
RIDGE_ALPHA = 1.0
_ROWS = 8192  # network rows per forward pass


@dataclass(frozen=True)
class LimeAttributions:
    """Per customer: the surrogate's intercept, one weight per tabular feature and per event
    channel (in the shop currency over the horizon), the score explained, the surrogate's value
    at the customer and its weighted R^2 on the samples."""

    intercept: np.ndarray  # (n,)
    tabular: np.ndarray  # (n, F)
    sequence: np.ndarray  # (n, E)
    score: np.ndarray  # (n,)
    local_prediction: np.ndarray  # (n,)
    r2: np.ndarray  # (n,)


def explain(model: ClvModel, examples: Examples, samples: int = SAMPLES) -> LimeAttributions:
    """LIME attributions of ``model.predict(examples)["clv"]``, one customer at a time (LIME
    fits one surrogate per customer), with the inputs and background of ``model.explain``."""
    if model.background is None:
        raise ValueError("this model was saved without an explanation background; retrain")
    n, features = len(examples.customers), len(model.feature_names)
    channels = examples.sequences.shape[2]
    out = LimeAttributions(
        np.zeros(n), np.zeros((n, features)), np.zeros((n, channels)), *np.zeros((3, n))
    )
    served = model.predict(examples)["clv"].to_numpy()
    values = _ValueFunction(model, examples, served)
    fixed = model.feature_names.index(HORIZON_FEATURE)
    explained = np.array([i for i in range(features + channels) if i != fixed])
    for row, customer in enumerate(examples.customers):
        masks = _masks(len(explained), samples, _rng(str(customer)))
        full = np.ones((samples, features + channels), dtype=bool)
        full[:, explained] = masks
        outputs = values(row, full)
        surrogate, r2 = _surrogate(masks, outputs)
        weights = np.zeros(features + channels)
        weights[explained] = surrogate.coef_
        out.intercept[row] = surrogate.intercept_
        out.tabular[row], out.sequence[row] = weights[:features], weights[features:]
        out.score[row] = served[row]
        out.local_prediction[row] = surrogate.intercept_ + surrogate.coef_.sum()
        out.r2[row] = r2
    return out


def _rng(customer: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(customer.encode())])


def _masks(features: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(samples, features) on/off masks: the first all on, each other with a uniformly drawn
    number (1 to features - 1) of features off, chosen at random."""
    off_count = rng.integers(1, max(features, 2), size=samples - 1)
    ranks = rng.random((samples - 1, features)).argsort(axis=1).argsort(axis=1)
    masks = np.ones((samples, features), dtype=bool)
    masks[1:] = ranks >= off_count[:, None]
    return masks


def _surrogate(masks: np.ndarray, outputs: np.ndarray) -> tuple[Ridge, float]:
    """LIME's weighted ridge on the masks, and its weighted R^2."""
    distance = np.sqrt((~masks).sum(axis=1))
    width = KERNEL_WIDTH * np.sqrt(masks.shape[1])
    kernel = np.sqrt(np.exp(-(distance**2) / width**2))
    surrogate = Ridge(alpha=RIDGE_ALPHA).fit(masks.astype(np.float64), outputs, kernel)
    return surrogate, float(surrogate.score(masks.astype(np.float64), outputs, kernel))


class _ValueFunction:
    """The served score of a customer with their inputs switched off (to the background's) by a
    mask, averaged over the background rows: the network's for customers it serves, scaled to
    the served score as SHAP's attributions are; the BTYD model's, over its four inputs, for
    customers with an order where a BTYD model serves."""

    def __init__(self, model: ClvModel, examples: Examples, served: np.ndarray) -> None:
        assert model.background is not None
        self.model, self.background = model, model.background
        self.sequences = torch.as_tensor(examples.sequences)
        self.tabular = model.tabular_tensor(examples.tabular)
        raw = ziln_mean(model.logits(examples)).numpy().astype(np.float64)
        self.scale = np.where(raw > 1e-12, served / np.maximum(raw, 1e-12), 1.0)
        chosen = model.serving.served if model.serving is not None else "deep"
        bought = examples.portrait["has_purchased"].to_numpy() > 0
        self.btyd = bought & (chosen in model.baselines)
        self.portrait = examples.portrait

    def __call__(self, row: int, masks: np.ndarray) -> np.ndarray:
        """(samples,) outputs for (samples, F + E) masks of customer ``row``."""
        if self.btyd[row]:
            return self._btyd(row, masks)
        return self._network(row, masks)

    def _network(self, row: int, masks: np.ndarray) -> np.ndarray:
        model, bg = self.model, self.background
        features = self.tabular.shape[1]
        keep = torch.as_tensor(masks)
        tabular = torch.where(keep[:, None, :features], self.tabular[row], bg.tabular[None])
        sequences = torch.where(
            keep[:, None, None, features:], self.sequences[row], bg.sequences[None]
        )  # (S, K, L, E): a channel off takes a background row's values at every position
        net = (model.float_net or model.net).eval()
        shift = torch.tensor([0.0, model.log_calibration, 0.0])
        flat_seq, flat_tab = sequences.flatten(0, 1), tabular.flatten(0, 1)
        scores = []
        with torch.no_grad():
            for start in range(0, len(flat_tab), _ROWS):
                logits = net(
                    flat_seq[start : start + _ROWS].to(model.device),
                    flat_tab[start : start + _ROWS].to(model.device),
                )
                scores.append(ziln_mean(logits.float().cpu() + shift))
        per_row = torch.cat(scores).view(len(masks), -1).double().numpy()
        weighted: np.ndarray = per_row @ bg.weights.double().numpy() * self.scale[row]
        return weighted

    def _btyd(self, row: int, masks: np.ndarray) -> np.ndarray:
        model = self.model
        columns = [model.feature_names.index(name) for name in btyd_explain.INPUTS]
        background, weights = _btyd_background(model, self.background)
        own = self.portrait[list(btyd_explain.INPUTS)].to_numpy(np.float64)[row]
        keep = masks[:, columns]  # (S, 4)
        mixed = np.where(keep[:, None, :], own, background[None])  # (S, K', 4)
        assert model.serving is not None
        baseline = model.baselines[model.serving.served]
        cutoff = self.portrait[list(btyd_explain.CUTOFF)].to_numpy(np.float64)[row]
        clv = btyd_explain.clv_of(baseline, mixed.reshape(-1, 4), model.horizon_days, cutoff)
        weighted: np.ndarray = clv.reshape(len(masks), -1) @ weights
        return weighted


def _btyd_background(model: ClvModel, background: Background) -> tuple[np.ndarray, np.ndarray]:
    """The background's raw BTYD inputs and weights, its customers with an order (all where none
    has one), as ``ClvModel._btyd_attributions`` takes them."""
    columns = [model.feature_names.index(name) for name in btyd_explain.INPUTS]
    logged = background.tabular.numpy().astype(np.float64) * model.scaler_std + model.scaler_mean
    raw = np.sign(logged) * np.expm1(np.abs(logged))
    weights = background.weights.numpy().astype(np.float64)
    buyers = raw[:, model.feature_names.index("has_purchased")] > 0.5
    if buyers.any():
        raw, weights = raw[buyers], weights[buyers]
    return raw[:, columns], weights / weights.sum()


def frame(attributions: LimeAttributions, model: ClvModel, customers: pd.Index) -> pd.DataFrame:
    """The weights as a (customers x features and channels) frame, named as in
    ``model.definitions``: for reports and the benchmark."""
    tabular, channels = model.definitions
    names = [d.name for d in [*tabular, *channels]]
    weights = np.concatenate([attributions.tabular, attributions.sequence], axis=1)
    return pd.DataFrame(weights, index=customers, columns=names)
