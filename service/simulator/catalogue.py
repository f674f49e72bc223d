"""The simulated shop's catalogue: categories with a price level, products with descriptive text.

Premium categories are expensive; customers who spend more per order lean towards them, so a
customer's category mix carries real information about their value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Category:
    name: str
    list_price: float  # typical unit price
    premium: float  # 0 = everyday, 1 = luxury
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("grocery", 6.0, 0.05, ("coffee", "tea", "chocolate", "olive oil", "granola", "honey")),
    Category("beauty", 22.0, 0.35, ("face cream", "serum", "shampoo", "lipstick", "perfume")),
    Category("books", 16.0, 0.25, ("novel", "cookbook", "travel guide", "biography", "atlas")),
    Category("toys", 28.0, 0.3, ("puzzle", "board game", "building set", "plush bear", "kite")),
    Category("apparel", 38.0, 0.45, ("t-shirt", "hoodie", "jeans", "dress", "rain jacket")),
    Category("shoes", 75.0, 0.55, ("running shoe", "hiking boot", "sneaker", "sandal", "loafer")),
    Category("home", 45.0, 0.45, ("lamp", "cushion", "bed linen", "vase", "kettle", "towel set")),
    Category("sports", 55.0, 0.55, ("yoga mat", "tennis racket", "bike helmet", "dumbbell set")),
    Category("garden", 40.0, 0.4, ("planter", "hose", "pruning shears", "seed kit", "bird feeder")),
    Category(
        "electronics", 190.0, 0.9, ("headphones", "smart watch", "speaker", "tablet", "camera")
    ),
    Category("furniture", 260.0, 0.95, ("armchair", "desk", "bookshelf", "dining table", "sofa")),
    Category("jewelry", 210.0, 1.0, ("necklace", "ring", "bracelet", "earrings", "watch")),
)

_ADJECTIVES = (
    "classic", "organic", "premium", "compact", "deluxe", "vintage", "lightweight", "handmade",
    "waterproof", "wireless", "ergonomic", "recycled", "limited edition", "everyday", "family",
)  # fmt: skip
_MATERIALS = (
    "cotton", "leather", "steel", "bamboo", "ceramic", "wool", "glass", "oak", "silicone", "linen",
)  # fmt: skip
_USES = (
    "for daily use", "for travel", "for the outdoors", "as a gift", "for small spaces",
    "for beginners", "for professionals", "for kids", "for winter", "for summer evenings",
)  # fmt: skip


@dataclass(frozen=True)
class Catalogue:
    skus: list[str]
    names: list[str]
    descriptions: list[str]
    category_index: np.ndarray  # (products,) index into CATEGORIES
    list_prices: np.ndarray  # (products,)
    by_category: list[np.ndarray]  # product indices of each category

    @property
    def categories(self) -> list[str]:
        return [category.name for category in CATEGORIES]


def build_catalogue(rng: np.random.Generator, products_per_category: int = 40) -> Catalogue:
    skus: list[str] = []
    names: list[str] = []
    descriptions: list[str] = []
    category_index: list[int] = []
    prices: list[float] = []
    by_category: list[np.ndarray] = []
    for c, category in enumerate(CATEGORIES):
        start = len(skus)
        for i in range(products_per_category):
            noun = category.nouns[i % len(category.nouns)]
            adjective = _ADJECTIVES[rng.integers(len(_ADJECTIVES))]
            material = _MATERIALS[rng.integers(len(_MATERIALS))]
            use = _USES[rng.integers(len(_USES))]
            skus.append(f"{category.name[:3].upper()}-{i:04d}")
            names.append(f"{adjective.capitalize()} {material} {noun}")
            descriptions.append(f"{adjective.capitalize()} {noun} in {material}, {use}.")
            category_index.append(c)
            prices.append(round(category.list_price * float(rng.lognormal(0.0, 0.35)), 2))
        by_category.append(np.arange(start, len(skus)))
    return Catalogue(
        skus=skus,
        names=names,
        descriptions=descriptions,
        category_index=np.array(category_index),
        list_prices=np.array(prices),
        by_category=by_category,
    )
