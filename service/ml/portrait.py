"""The customer portrait as a model input: behaviour, category mix, product text, topics, profile.

``FeaturePipeline`` is fitted on training data (the category vocabulary, the text embedding and
the profile encoding are learnt there) and then turns activity as of a cut-off into one row of
features per customer, with a definition (name, description, unit, group) for every column.

Behaviour is always there; every other group is optional (DESIGN: a shop may send only
purchases). A group the training data cannot fit (no categories, no usable product text, no
profiles) is left out, contributing no columns, and ``omitted_`` says which and why, so the model
can report it. Data with no orders to learn from are refused (``InsufficientDataError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from service.ml import collective
from service.ml.activity import Activity, combined_catalogue
from service.ml.categories import GROUP as CATEGORY_MIX
from service.ml.categories import category_definitions, category_mix, category_vocabulary
from service.ml.features import BEHAVIOUR_FEATURES, FeatureDef, behaviour_features
from service.ml.insufficient import require_orders
from service.ml.profile import GROUP as PROFILE
from service.ml.profile import ProfileEncoder, unusable_profiles
from service.ml.text import GROUP as PRODUCT_TEXT
from service.ml.text import ProductTextEmbedder, unusable_text
from service.ml.topics import GROUP as PRODUCT_TOPICS
from service.ml.topics import ProductTopics, topic_count, unusable_topics

Profiles = Mapping[str, Mapping[str, Any]]
Sources = Mapping[str, set[str]]


class FeaturePipeline:
    def __init__(self, text_components: int = 8, seed: int = 0) -> None:
        self.text_components = text_components
        self.seed = seed

    def fit(self, activity: Activity, profiles: Profiles, sources: Sources) -> FeaturePipeline:
        """Fit every group the data support; the others go to ``omitted_`` with the reason.
        ``categories_`` is empty when the category mix is left out: the event sequences then
        keep only their "other" category channel (events with items)."""
        require_orders(activity.days)
        self.omitted_: dict[str, str] = {}
        catalogue = combined_catalogue(collective.gathered(activity.catalogue))  # every rank's
        self.categories_, reason = category_vocabulary(catalogue)
        if reason is not None:
            self.omitted_[CATEGORY_MIX] = reason
        self.text_ = self._fit_text(catalogue)
        self.topics_ = self._fit_topics(catalogue)
        self.profile_ = ProfileEncoder().fit(profiles, sources)
        reason = unusable_profiles(collective.any_rank(any(profiles.values())), self.profile_)
        if reason is not None:
            self.omitted_[PROFILE] = reason
        return self

    def _fit_text(self, catalogue: pd.DataFrame) -> ProductTextEmbedder | None:
        """The fitted embedding, or None (and the reason in ``omitted_``). The checks in
        ``unusable_text`` name the usual causes; a refusal they miss still degrades, not fails."""
        reason = unusable_text(catalogue)
        if reason is None:
            try:
                return ProductTextEmbedder(self.text_components, self.seed).fit(catalogue)
            except ValueError as error:
                reason = f"the product texts could not be embedded: {error}"
        self.omitted_[PRODUCT_TEXT] = reason
        return None

    def _fit_topics(self, catalogue: pd.DataFrame) -> ProductTopics | None:
        """The fitted topics, or None (and the reason in ``omitted_``), as ``_fit_text``."""
        reason = unusable_topics(catalogue)
        if reason is None:
            try:
                return ProductTopics(topic_count(catalogue), self.seed).fit(catalogue)
            except ValueError as error:
                reason = f"the product texts could not be modelled into topics: {error}"
        self.omitted_[PRODUCT_TOPICS] = reason
        return None

    def state(self) -> dict[str, Any]:
        return {
            "text_components": self.text_components,
            "seed": self.seed,
            "categories": self.categories_,
            "text": self.text_.state() if self.text_ is not None else None,
            "topics": self.topics_.state() if self.topics_ is not None else None,
            "profile": self.profile_.state(),
            "omitted": dict(self.omitted_),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeaturePipeline:
        """States saved before groups could be left out have no "omitted": nothing was; those
        saved before topics have no "topics" (and none in "omitted"): the group is absent."""
        pipeline = cls(state["text_components"], state["seed"])
        pipeline.categories_ = list(state["categories"])
        text_state = state.get("text")
        pipeline.text_ = (
            ProductTextEmbedder.from_state(text_state) if text_state is not None else None
        )
        topics_state = state.get("topics")  # none before topics were fitted
        pipeline.topics_ = (
            ProductTopics.from_state(topics_state) if topics_state is not None else None
        )
        pipeline.profile_ = ProfileEncoder.from_state(state["profile"])
        pipeline.omitted_ = dict(state.get("omitted", {}))
        return pipeline

    @property
    def _has_category_mix(self) -> bool:
        return CATEGORY_MIX not in self.omitted_

    def definitions(self) -> list[FeatureDef]:
        return [
            *BEHAVIOUR_FEATURES,
            *(category_definitions(self.categories_) if self._has_category_mix else []),
            *(self.text_.definitions() if self.text_ is not None else []),
            *(self.topics_.definitions() if self.topics_ is not None else []),
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
        parts = [behaviour, self.profile_.transform(customers, profiles, sources)]
        if self._has_category_mix:
            parts.append(category_mix(products, activity.catalogue, self.categories_))
        if self.text_ is not None:
            parts.append(self.text_.transform(products, activity.catalogue))
        if self.topics_ is not None:
            parts.append(self.topics_.transform(products, activity.catalogue))
        joined = pd.concat([part.reindex(customers) for part in parts], axis=1).fillna(0.0)
        return joined[[d.name for d in self.definitions()]]
