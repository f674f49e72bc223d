"""Which profile attributes a training leaves out: fair by default.

The protected attributes (``CLV_FAIRNESS_ATTRIBUTES``) are no model input unless training with
them is asked for. Precedence, first match wins:

1. an explicit request: ``with_protected_attributes`` or ``without_protected_attributes`` set to
   true on ``POST /v1/models`` (``--with-protected-attributes`` / ``--without-protected-attributes``
   on ``clv train``); both at once is refused;
2. ``CLV_TRAIN_WITH_PROTECTED_ATTRIBUTES`` (default false: left out).

The learning loop has no request of its own: its challengers follow the setting.
"""

from __future__ import annotations

from service.config import Settings
from service.errors import InvalidRequestError

BOTH = "with_protected_attributes and without_protected_attributes contradict each other"


def requested(*, with_protected: bool, without_protected: bool) -> bool | None:
    """What a request asks for: True (with them), False (without) or None (the setting's
    choice). Each flag only counts when true, so a client that always sends the old default
    ``without_protected_attributes: false`` does not opt in by it."""
    if with_protected and without_protected:
        raise InvalidRequestError(BOTH)
    if with_protected:
        return True
    return False if without_protected else None


def excluded_attributes(settings: Settings, with_protected: bool | None = None) -> tuple[str, ...]:
    """The attributes to leave out: none when training with them (asked for, or by the
    setting when nothing was asked), the protected ones otherwise."""
    include = settings.train_with_protected_attributes if with_protected is None else with_protected
    return () if include else tuple(settings.fairness_attributes)
