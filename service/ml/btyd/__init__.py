"""Buy-Till-You-Die models: BG/NBD and Pareto/NBD for purchase counts, Gamma-Gamma for spend."""

from service.ml.btyd.bgnbd import BetaGeoFitter
from service.ml.btyd.gammagamma import GammaGammaFitter
from service.ml.btyd.paretonbd import ParetoNBDFitter

__all__ = ["BetaGeoFitter", "GammaGammaFitter", "ParetoNBDFitter"]
