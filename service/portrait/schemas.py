"""Public schemas of the customer portrait."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PortraitRead(BaseModel):
    customer_id: str = Field(description="The customer's id.")
    as_of: datetime = Field(description="The time the features describe (events up to it).")
    segment: str = Field(
        description="RFM segment: prospect, champions, new, loyal, potential, at_risk, "
        "hibernating or lost (scheme in GET /v1/features)."
    )
    features: dict[str, float] = Field(
        description="Feature values by name; definitions (description, unit) in GET /v1/features."
    )


class FeatureDefinitionRead(BaseModel):
    name: str = Field(description="Feature name; category-mix names end in the category.")
    description: str = Field(description="What the feature measures.")
    unit: str = Field(description="Unit of the value (days, currency, ratio, flag, ...).")
    group: str = Field(description="Feature group, e.g. purchase history, browsing.")


class TopicWordRead(BaseModel):
    word: str = Field(description="A word of the product texts.")
    weight: float = Field(description="Its probability in the topic (a topic's words sum to 1).")


class TopicRead(BaseModel):
    feature: str = Field(description="The feature holding a customer's share of it (topic_<i>).")
    words: list[TopicWordRead] = Field(description="Its most probable words, most probable first.")


class FeatureCatalogueRead(BaseModel):
    features: list[FeatureDefinitionRead] = Field(description="Every portrait feature.")
    segments: str = Field(description="How RFM segments are assigned.")
    model_version: str | None = Field(
        default=None,
        description="The model whose product topics are listed; null while none serves.",
    )
    topics: list[TopicRead] = Field(
        default_factory=list,
        description="The serving model's product topics (LDA over the product texts), each with "
        "its top words; empty while no model serves or when its training data had no usable "
        "product texts (the group is then among its omitted_feature_groups).",
    )
