"""Training: the candidates judged on a time-later window, then the network on rolling cut-offs.

``train`` (``trainer``) first judges every candidate (``judging``, ``service.ml.selection``) on
the window before T: the BTYD models and a network fitted on the events before it, compared on
what customers then spent. Then it trains the network on everything up to T as below
(``network``, ``fitting``), refits the BTYD models at T (``baselines``), sets what serves and
leaves a ``TrainingReport`` on the model (``report``).

For an as-of time T and a horizon H: examples at cut-offs T - H, T - H - step, ... are labelled
with the spend in the H days after each; fresher ones at cut-offs after T - H with the spend up to
T (shorter windows; the horizon is an input of the network). Features at a cut-off use only events
at or before it. A fifth of the customers is held out of every window (``windows``): training
stops early when their loss stops improving, and the level is calibrated on them at the latest
full window. When the data are too short for labels at H, the network is trained at the longest
horizon they allow and carried to H (see ``ClvModel``); when they cannot support even
``MIN_HORIZON_DAYS``, ``DataTooShortError`` says what is needed. Every tuning constant is a
``TrainConfig`` field (``config``).
"""

from service.ml.training.config import (
    DataTooShortError,
    Progress,
    TrainConfig,
    TrainingCancelledError,
)
from service.ml.training.report import TrainingReport
from service.ml.training.trainer import train
from service.ml.training.windows import plan_windows

__all__ = [
    "DataTooShortError",
    "Progress",
    "TrainConfig",
    "TrainingCancelledError",
    "TrainingReport",
    "plan_windows",
    "train",
]
