"""BTYD models: likelihoods against direct numerical integration of the papers' individual-level
models, parameter recovery on data simulated from each model, and conditional expectations
against what the simulated customers then do."""

from __future__ import annotations

import mpmath
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import gammaln

from service.ml.btyd import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter


def _legendre(low: float, high: float, n: int = 800) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (high - low) / 2 * nodes + (high + low) / 2, weights * (high - low) / 2


def positive_line() -> tuple[np.ndarray, np.ndarray]:
    """Quadrature for integrals over (0, inf), on a log scale: smooth where the gamma densities
    with shape < 1 are singular, so 800 Gauss-Legendre points give ~1e-7 relative accuracy."""
    u, weights = _legendre(-30, 4)
    return np.exp(u), weights * np.exp(u)


def unit_interval() -> tuple[np.ndarray, np.ndarray]:
    """Quadrature for integrals over (0, 1), on the logit scale, for the same reason."""
    v, weights = _legendre(-40, 40)
    p = 1 / (1 + np.exp(-v))
    return p, weights * p * (1 - p)


def integrate_2d(
    integrand, first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> float:  # type: ignore[no-untyped-def]
    (a, wa), (b, wb) = first, second
    grid_a, grid_b = np.meshgrid(a, b, indexing="ij")
    return float((wa[:, None] * wb[None, :] * integrand(grid_a, grid_b)).sum())


def simulate_bgnbd(
    rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float, horizon: float
) -> dict[str, np.ndarray]:
    """Customers observed for T days after their first purchase, plus the next ``horizon`` days."""
    T = rng.uniform(60, 400, n)
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i] + horizon:
                break
            if t <= T[i]:
                x[i], t_x[i] = x[i] + 1, t
            else:
                future[i] += 1
            if rng.random() < p[i]:  # drops out after a repeat purchase
                break
    return {"x": x, "t_x": t_x, "T": T, "future": future}


def simulate_paretonbd(
    rng: np.random.Generator, n: int, r: float, alpha: float, s: float, beta: float, horizon: float
) -> dict[str, np.ndarray]:
    T = rng.uniform(60, 400, n)
    lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    death = rng.exponential(1 / mu)
    x, t_x, future, alive = np.zeros(n), np.zeros(n), np.zeros(n), death > T
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > min(death[i], T[i] + horizon):
                break
            if t <= T[i]:
                x[i], t_x[i] = x[i] + 1, t
            else:
                future[i] += 1
    return {"x": x, "t_x": t_x, "T": T, "future": future, "alive": alive}


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 50.0), (1, 20.0, 50.0), (4, 80.0, 120.0)])
def test_bgnbd_likelihood_equals_integrating_the_individual_model(
    x: int, t_x: float, T: float
) -> None:
    r, alpha, a, b = 0.8, 20.0, 1.2, 3.0

    def individual(lam: np.ndarray, p: np.ndarray) -> np.ndarray:
        stays = (1 - p) ** x * lam**x * np.exp(-lam * T)
        drops = p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x) if x > 0 else 0.0
        density = stats.gamma.pdf(lam, r, scale=1 / alpha) * stats.beta.pdf(p, a, b)
        return (stays + drops) * density

    numeric = integrate_2d(individual, positive_line(), unit_interval())
    closed = BetaGeoFitter().log_likelihood(
        np.array([r, alpha, a, b]), *map(np.array, ([x], [t_x], [T]))
    )
    assert np.exp(closed[0]) == pytest.approx(numeric, rel=1e-6)


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T"),
    [((0.7, 15.0, 0.6, 40.0), 2, 30.0, 90.0), ((1.3, 25.0, 1.5, 10.0), 0, 0.0, 60.0),
     ((0.9, 10.0, 0.8, 10.0), 5, 100.0, 150.0)],  # alpha > beta, alpha < beta, alpha = beta
)  # fmt: skip
def test_paretonbd_likelihood_equals_integrating_the_individual_model(
    params: tuple[float, ...], x: int, t_x: float, T: float
) -> None:
    r, alpha, s, beta = params

    def individual(lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
        died = lam**x * mu / (lam + mu) * np.exp(-(lam + mu) * t_x)
        alive = lam ** (x + 1) / (lam + mu) * np.exp(-(lam + mu) * T)
        density = stats.gamma.pdf(lam, r, scale=1 / alpha) * stats.gamma.pdf(mu, s, scale=1 / beta)
        return (died + alive) * density

    numeric = integrate_2d(individual, positive_line(), positive_line())
    closed = ParetoNBDFitter().log_likelihood(np.array(params), *map(np.array, ([x], [t_x], [T])))
    assert np.exp(closed[0]) == pytest.approx(numeric, rel=1e-6)


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T"),
    [((0.7, 92.0, 73.9, 46536.0), 200, 350.0, 365.0),  # 2F1 past the largest float
     ((1.0, 20.0, 0.5, 1e5), 100, 150.0, 1500.0), ((2.0, 5.0, 2.0, 1e4), 500, 750.0, 1500.0)],
)  # fmt: skip
def test_paretonbd_likelihood_of_heavy_buyers_is_finite_and_right(
    params: tuple[float, ...], x: int, t_x: float, T: float
) -> None:
    """The closed form's 2F1 gave NaN for customers with hundreds of orders: P(alive) NaN,
    read as certain churn and no orders for the best customers. Against the likelihood as one
    integral over the moment of dropping out (the rates integrated in closed form)."""
    r, alpha, s, beta = params

    def log_died_density(tau: float) -> float:
        return float(
            -(r + x) * np.log(alpha + tau)
            + np.log(s / beta)
            + (s + 1) * np.log(beta / (beta + tau))
        )

    top = log_died_density(t_x)
    died, _ = integrate.quad(
        lambda tau: np.exp(log_died_density(tau) - top), t_x, T, epsabs=0, epsrel=1e-12, limit=500
    )
    alive = -(r + x) * np.log(alpha + T) + s * np.log(beta / (beta + T))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    numeric = common + np.logaddexp(alive, top + np.log(died))
    fitter = ParetoNBDFitter()
    fitter.params_ = dict(zip(fitter.param_names, params, strict=True))
    data = [np.array([value], dtype=float) for value in (x, t_x, T)]
    assert fitter.log_likelihood(np.array(params), *data)[0] == pytest.approx(numeric, abs=1e-6)
    assert np.exp(common + alive - numeric) == pytest.approx(
        fitter.conditional_probability_alive(*data)[0], abs=1e-6
    )


@pytest.mark.parametrize(
    ("x", "t_x", "T", "t"), [(50, 300, 365, 90), (300, 360, 365, 730), (1500, 1500, 1500, 1095)]
)
def test_bgnbd_expected_purchases_of_heavy_buyers_over_long_horizons(
    x: int, t_x: int, T: int, t: int
) -> None:
    """A customer who bought every day for four years, over a three-year horizon: ratio^(r+x)
    underflowed and 2F1 overflowed, 0 * inf = NaN. Against equation (10) in 60 digits."""
    params = {"r": 0.8, "alpha": 60.0, "a": 0.5, "b": 3.0}
    fitter = BetaGeoFitter()
    fitter.params_ = params
    with mpmath.workdps(60):
        r, alpha, a, b = (mpmath.mpf(params[name]) for name in ("r", "alpha", "a", "b"))
        c, ratio = a + b + x - 1, (alpha + T) / (alpha + T + t)
        exact = c / (a - 1) * (1 - ratio ** (r + x) * mpmath.hyp2f1(r + x, b + x, c, 1 - ratio))
    data = [np.array([value], dtype=float) for value in (x, t_x, T)]
    assert fitter.expected_if_alive(float(t), *data)[0] == pytest.approx(float(exact), rel=1e-9)


@pytest.mark.parametrize(("x", "m"), [(1, 30.0), (3, 55.5), (10, 12.0)])
def test_gamma_gamma_likelihood_equals_integrating_over_nu(x: int, m: float) -> None:
    p, q, v = 4.0, 3.0, 40.0

    def individual(nu: float) -> float:
        mean_density = x * stats.gamma.pdf(x * m, p * x, scale=1 / nu)
        return float(mean_density * stats.gamma.pdf(nu, q, scale=1 / v))

    numeric, _ = integrate.quad(individual, 0, np.inf, epsabs=1e-14, epsrel=1e-10)
    closed = GammaGammaFitter().log_likelihood(np.array([p, q, v]), np.array([x]), np.array([m]))
    assert np.exp(closed[0]) == pytest.approx(numeric, rel=1e-6)


def test_bgnbd_recovers_its_parameters_and_predicts_the_future() -> None:
    truth = {"r": 0.6, "alpha": 25.0, "a": 0.8, "b": 2.5}
    data = simulate_bgnbd(np.random.default_rng(1), 8_000, **truth, horizon=180)

    model = BetaGeoFitter().fit(data["x"], data["t_x"], data["T"])

    for name, value in truth.items():
        assert model.params_[name] == pytest.approx(value, rel=0.2), name
    expected = model.conditional_expected_number_of_purchases_up_to_time(
        180, data["x"], data["t_x"], data["T"]
    )
    assert expected.sum() == pytest.approx(data["future"].sum(), rel=0.05)
    busy = data["x"] >= 3
    assert expected[busy].mean() > 2 * expected[~busy].mean()


def test_paretonbd_recovers_its_parameters_and_who_is_alive() -> None:
    truth = {"r": 0.8, "alpha": 20.0, "s": 0.7, "beta": 150.0}
    data = simulate_paretonbd(np.random.default_rng(2), 8_000, **truth, horizon=180)

    model = ParetoNBDFitter().fit(data["x"], data["t_x"], data["T"])

    # The purchase process is well identified; of the dropout process, the mean rate s / beta
    # is (s and beta trade off against each other on a window of this length).
    assert model.params_["r"] == pytest.approx(truth["r"], rel=0.1)
    assert model.params_["alpha"] == pytest.approx(truth["alpha"], rel=0.1)
    mean_dropout = model.params_["s"] / model.params_["beta"]
    assert mean_dropout == pytest.approx(truth["s"] / truth["beta"], rel=0.15)
    alive = model.conditional_probability_alive(data["x"], data["t_x"], data["T"])
    assert alive.mean() == pytest.approx(data["alive"].mean(), abs=0.03)
    expected = model.conditional_expected_number_of_purchases_up_to_time(
        180, data["x"], data["t_x"], data["T"]
    )
    assert expected.sum() == pytest.approx(data["future"].sum(), rel=0.05)


def test_gamma_gamma_recovers_its_parameters_and_shrinks_towards_the_mean() -> None:
    rng = np.random.default_rng(3)
    p, q, v = 5.0, 3.5, 40.0
    nu = rng.gamma(q, 1 / v, 8_000)
    x = 1 + rng.poisson(3, 8_000)
    m = np.array([rng.gamma(p, 1 / nu_i, x_i).mean() for nu_i, x_i in zip(nu, x, strict=True)])

    model = GammaGammaFitter().fit(x, m)

    assert model.params_["p"] == pytest.approx(p, rel=0.15)
    assert model.params_["q"] == pytest.approx(q, rel=0.15)
    assert model.params_["v"] == pytest.approx(v, rel=0.2)
    population = p * v / (q - 1)
    one_order, many = model.conditional_expected_average_profit(
        np.array([1, 50]), np.array([500.0, 500.0])
    )
    assert population < one_order < many < 500.0  # one large order is trusted less than fifty
    assert model.conditional_expected_average_profit(np.array([0]), np.array([0.0]))[
        0
    ] == pytest.approx(model.params_["p"] * model.params_["v"] / (model.params_["q"] - 1))


@pytest.mark.parametrize("seasonal", [False, True])
def test_btyd_attributions_are_shaps_exact_values_and_add_up(seasonal: bool) -> None:
    """The vectorised exact Shapley values equal shap's ExactExplainer with an Independent
    masker on the same background, and base + contributions is the BTYD CLV; with a yearly
    season too, at the cut-off scored."""
    import shap

    from service.ml.btyd import explain
    from service.ml.btyd.baseline import BtydBaseline
    from service.ml.btyd.season import Season

    rng = np.random.default_rng(3)
    data = simulate_bgnbd(rng, 1500, r=0.8, alpha=20.0, a=0.8, b=2.5, horizon=0.0)
    features = pd.DataFrame(
        {
            "frequency": data["x"],
            "recency_days": data["t_x"],
            "age_days": data["T"],
            "monetary_value": np.where(data["x"] > 0, rng.gamma(4.0, 10.0, 1500), 0.0),
            "has_purchased": 1.0,
        }
    )
    baseline = BtydBaseline("paretonbd").fit(features)
    if seasonal:
        baseline.season_ = Season(0.25, -0.1)
    inputs = features[list(explain.INPUTS)].to_numpy()
    rows, background = inputs[:40], inputs[100:106]
    cutoff = np.array([np.sin(2.0), np.cos(2.0)])

    base, contributions = explain.attributions(
        baseline, rows, background, 90.0, np.tile(cutoff, (len(rows), 1))
    )

    masker = shap.maskers.Independent(background, max_samples=len(background))
    reference = shap.explainers.Exact(lambda x: explain.clv_of(baseline, x, 90.0, cutoff), masker)(
        rows, silent=True
    )
    np.testing.assert_allclose(contributions, reference.values, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(base, reference.base_values, rtol=1e-9)
    np.testing.assert_allclose(
        base + contributions.sum(axis=1), explain.clv_of(baseline, rows, 90.0, cutoff), rtol=1e-9
    )


def test_probability_of_no_purchase_matches_what_simulated_customers_do() -> None:
    """P(no purchase in the next 90 days) from each count model, on customers simulated from it,
    against the share who then make none, overall and in bands of the prediction."""
    rng = np.random.default_rng(11)
    cases = (
        (BetaGeoFitter(), simulate_bgnbd(rng, 6000, 0.8, 20.0, 0.8, 2.5, horizon=90.0)),
        (ParetoNBDFitter(), simulate_paretonbd(rng, 6000, 0.8, 20.0, 0.6, 80.0, horizon=90.0)),
    )
    for fitter, data in cases:
        fitter.fit(data["x"], data["t_x"], data["T"])
        quiet = fitter.conditional_probability_no_purchase(90.0, data["x"], data["t_x"], data["T"])
        observed = data["future"] == 0
        assert abs(quiet.mean() - observed.mean()) < 0.02
        for low, high in ((0.0, 0.5), (0.5, 0.8), (0.8, 1.01)):
            band = (quiet >= low) & (quiet < high)
            assert abs(quiet[band].mean() - observed[band].mean()) < 0.05
