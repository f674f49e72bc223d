"""The purchase-count models a BTYD report can fit, light enough for the CLI's options (its
``--help`` imports no database or numerical library)."""

from enum import StrEnum


class CountModel(StrEnum):
    """The purchase-count models a report can fit (``service.ml.btyd.baseline``)."""

    bgnbd = "bgnbd"
    paretonbd = "paretonbd"
