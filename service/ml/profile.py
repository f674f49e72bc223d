"""Profile features: customer attributes (merged over sources) encoded for a model.

Fitted on training profiles: an attribute with few distinct text values becomes one-hot columns,
a numeric attribute its log1p; each gets an explicit missing-value indicator, so "no third-party
data" is information rather than a zero that looks like a value. Which sources a customer has
is encoded too. Keyed hashes (email, phone) and free text with many values are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np
import pandas as pd

from service.ml import collective
from service.ml.categories import slug
from service.ml.features import FeatureDef
from service.privacy import HASH_PREFIX

GROUP = "profile"
MAX_LEVELS = 20
Profiles = Mapping[str, Mapping[str, Any]]


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Seen:
    """What the profiles show of one attribute: whether every value is a number, whether any is
    a keyed hash, and its distinct values as text (at most ``MAX_LEVELS`` + 1: past that it is
    not one-hot encoded, whatever the count)."""

    numeric: bool = True
    hashed: bool = False
    levels: set[str] = field(default_factory=set)

    def add(self, value: Any) -> None:
        self.numeric = self.numeric and _is_number(value)
        self.hashed = self.hashed or str(value).startswith(HASH_PREFIX)
        if len(self.levels) <= MAX_LEVELS:
            self.levels.add(str(value))

    def merge(self, other: _Seen) -> None:
        self.numeric, self.hashed = self.numeric and other.numeric, self.hashed or other.hashed
        self.levels = set(sorted(self.levels | other.levels)[: MAX_LEVELS + 1])


class ProfileEncoder:
    def fit(
        self, profiles: Mapping[str, Mapping[str, Any]], sources: Mapping[str, set[str]]
    ) -> ProfileEncoder:
        """``profiles``: customer -> merged attributes; ``sources``: customer -> its sources.
        What every rank of a training saw of each attribute is merged (``collective``)."""
        seen: dict[str, _Seen] = {}
        for part in collective.gathered(_observed(profiles)):
            for name, observed in part.items():
                seen.setdefault(name, _Seen()).merge(observed)
        self.numeric_: list[str] = sorted(name for name, s in seen.items() if s.numeric)
        self.levels_: dict[str, list[str]] = {
            name: sorted(s.levels)
            for name, s in sorted(seen.items())
            if not s.numeric and len(s.levels) <= MAX_LEVELS and not s.hashed
        }
        found = {s for names in sources.values() for s in names}
        self.sources_: list[str] = sorted(set().union(*collective.gathered(found)))
        return self

    def state(self) -> dict[str, Any]:
        return {"numeric": self.numeric_, "levels": self.levels_, "sources": self.sources_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ProfileEncoder:
        encoder = cls()
        encoder.numeric_ = list(state["numeric"])
        encoder.levels_ = {name: list(levels) for name, levels in state["levels"].items()}
        encoder.sources_ = list(state["sources"])
        return encoder

    def definitions(self) -> list[FeatureDef]:
        defs = [
            FeatureDef(f"source__{slug(s)}", f"1 if the '{s}' source has data.", "flag", GROUP)
            for s in self.sources_
        ]
        for name in self.numeric_:
            defs.append(FeatureDef(f"{slug(name)}__log1p", f"log(1 + {name}).", "log", GROUP))
            missing = f"1 if {name} is unknown."
            defs.append(FeatureDef(f"{slug(name)}__missing", missing, "flag", GROUP))
        for name, levels in self.levels_.items():
            for level in levels:
                description = f"1 if {name} is '{level}'."
                defs.append(FeatureDef(f"{slug(name)}={slug(level)}", description, "flag", GROUP))
            defs.append(
                FeatureDef(f"{slug(name)}__missing", f"1 if {name} is unknown.", "flag", GROUP)
            )
        return defs

    def transform(
        self,
        customers: pd.Index,
        profiles: Mapping[str, Mapping[str, Any]],
        sources: Mapping[str, set[str]],
    ) -> pd.DataFrame:
        """One row per customer. The columns of each source, attribute and level are looked up
        once per call, not per customer: naming them took most of this call's time."""
        names = [d.name for d in self.definitions()]
        index = {name: position for position, name in enumerate(names)}
        source_column = {s: index[f"source__{slug(s)}"] for s in self.sources_}
        numeric = [
            (name, index[f"{slug(name)}__log1p"], index[f"{slug(name)}__missing"])
            for name in self.numeric_
        ]
        levelled = [
            (
                name,
                {level: index[f"{slug(name)}={slug(level)}"] for level in levels},
                index[f"{slug(name)}__missing"],
            )
            for name, levels in self.levels_.items()
        ]
        matrix = np.zeros((len(customers), len(names)))
        for row, customer in enumerate(customers):
            attributes = profiles.get(customer, {})
            for source in sources.get(customer, ()):
                if source in source_column:
                    matrix[row, source_column[source]] = 1.0
            for name, log_column, missing_column in numeric:
                value = attributes.get(name)
                if _is_number(value):
                    matrix[row, log_column] = np.log1p(max(float(value), 0.0))
                else:
                    matrix[row, missing_column] = 1.0
            for name, level_columns, missing_column in levelled:
                value = attributes.get(name)
                column = None if value is None else level_columns.get(str(value))
                matrix[row, missing_column if column is None else column] = 1.0
        return pd.DataFrame(matrix, index=customers, columns=names)


def _observed(profiles: Profiles) -> dict[str, _Seen]:
    seen: dict[str, _Seen] = {}
    for attributes in profiles.values():
        for name, value in attributes.items():
            seen.setdefault(name, _Seen()).add(value)
    return seen


def unusable_profiles(any_profiles: bool, encoder: ProfileEncoder) -> str | None:
    """Why ``encoder`` gives no columns (``any_profiles``: whether any customer it was fitted
    on has one), or None when it gives some."""
    if encoder.definitions():
        return None
    if not any_profiles:
        return "no customer profiles"
    return (
        "no profile attribute can be encoded (only keyed hashes or text with more than "
        f"{MAX_LEVELS} values)"
    )


def without_attributes(profiles: Profiles, excluded: Iterable[str]) -> Profiles:
    """``profiles`` without the ``excluded`` attributes: training without protected attributes
    drops them before the encoder is fitted, so they get no columns and scoring (which encodes
    only the fitted attributes) never reads them either."""
    dropped = set(excluded)
    if not dropped:
        return profiles
    return {
        customer: {name: value for name, value in attributes.items() if name not in dropped}
        for customer, attributes in profiles.items()
    }
