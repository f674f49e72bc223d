"""The customer portrait as a model input: behaviour, category mix, product text and profile.

``FeaturePipeline`` is fitted on training data (the category vocabulary, the text embedding and
the profile encoding are learnt there) and then turns activity as of a cut-off into one row of
features per customer, with a definition (name, description, unit, group) for every column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from service.ml.activity import Activity
from service.ml.categories import category_definitions, category_mix
from service.ml.features import BEHAVIOUR_FEATURES, FeatureDef, behaviour_features
from service.ml.profile import ProfileEncoder
from service.ml.text import ProductTextEmbedder

Profiles = Mapping[str, Mapping[str, Any]]
Sources = Mapping[str, set[str]]


class FeaturePipeline:
    def __init__(self, text_components: int = 8, seed: int = 0) -> None:
        self.text_components = text_components
        self.seed = seed

    def fit(self, activity: Activity, profiles: Profiles, sources: Sources) -> FeaturePipeline:
        self.categories_: list[str] = sorted(
            activity.catalogue["category"].fillna("uncategorised").unique()
        )
        self.text_ = ProductTextEmbedder(self.text_components, self.seed).fit(activity.catalogue)
        self.profile_ = ProfileEncoder().fit(profiles, sources)
        return self

    def state(self) -> dict[str, Any]:
        return {
            "text_components": self.text_components,
            "seed": self.seed,
            "categories": self.categories_,
            "text": self.text_.state(),
            "profile": self.profile_.state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeaturePipeline:
        pipeline = cls(state["text_components"], state["seed"])
        pipeline.categories_ = list(state["categories"])
        pipeline.text_ = ProductTextEmbedder.from_state(state["text"])
        pipeline.profile_ = ProfileEncoder.from_state(state["profile"])
        return pipeline

    def definitions(self) -> list[FeatureDef]:
        return [
            *BEHAVIOUR_FEATURES,
            *category_definitions(self.categories_),
            *self.text_.definitions(),
            *self.profile_.definitions(),
        ]

    def transform(
        self, activity: Activity, profiles: Profiles, sources: Sources, as_of_day: int
    ) -> pd.DataFrame:
        """(customers x definitions()) for every customer with activity on or before the day."""
        days = activity.days[activity.days["day"] <= as_of_day]
        behaviour = behaviour_features(days, as_of_day)
        customers = behaviour.index
        products = activity.products[activity.products["customer_id"].isin(customers)]
        parts = [
            behaviour,
            category_mix(products, activity.catalogue, self.categories_),
            self.text_.transform(products, activity.catalogue),
            self.profile_.transform(customers, profiles, sources),
        ]
        joined = pd.concat([part.reindex(customers) for part in parts], axis=1).fillna(0.0)
        return joined[[d.name for d in self.definitions()]]
