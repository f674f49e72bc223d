"""Category mix: what share of a customer's purchases and browsing falls in each category."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from service.ml.features import FeatureDef

GROUP = "category mix"
UNCATEGORISED = "uncategorised"


def slug(category: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", category.lower()).strip("_") or "none"


def category_vocabulary(catalogue: pd.DataFrame) -> tuple[list[str], str | None]:
    """(the categories a model gets columns for, why none when empty).

    The mix needs at least two named categories: with one (or only products without a
    category, which count as "uncategorised") every share is 0 or 1 for the same reason, "bought
    something with items", and the entropy is always 0, so the group would only add noise. With
    two or more, "uncategorised" keeps its own column, as any other category.
    """
    named = catalogue["category"].dropna().astype(str)
    named = named[named.str.strip() != ""]
    if catalogue.empty:
        return [], "no products in the events (no line items)"
    if named.nunique() < 2:
        found = f"one category ('{named.iloc[0]}')" if len(named) else "no categories"
        return [], f"the products have {found}; a category mix needs at least 2"
    return sorted(catalogue["category"].fillna(UNCATEGORISED).unique()), None


def category_definitions(categories: Sequence[str]) -> list[FeatureDef]:
    defs = []
    for category in categories:
        name = slug(category)
        defs.append(
            FeatureDef(
                f"bought_share__{name}", f"Share of units bought in '{category}'.", "share", GROUP
            )
        )
        viewed = f"Share of products viewed or carted in '{category}'."
        defs.append(FeatureDef(f"viewed_share__{name}", viewed, "share", GROUP))
    defs.append(
        FeatureDef("categories_bought", "Distinct categories bought from.", "categories", GROUP)
    )
    defs.append(
        FeatureDef(
            "category_entropy", "Entropy of the bought-units mix (0 = one category).", "nats", GROUP
        )
    )
    return defs


def category_mix(
    products: pd.DataFrame, catalogue: pd.DataFrame, categories: Sequence[str] | None = None
) -> pd.DataFrame:
    """(customers x category_definitions(categories)), indexed by customer_id.

    ``categories`` fixes the columns (a model's vocabulary); by default, every category present.
    Products of categories outside the vocabulary count in the totals but get no column.
    """
    joined = products.merge(catalogue[["sku", "category"]], on="sku", how="left")
    joined["category"] = joined["category"].fillna(UNCATEGORISED)
    if categories is None:
        categories = sorted(joined["category"].unique())
    columns = [d.name for d in category_definitions(categories)]
    if joined.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="customer_id"), dtype=float)
    by = joined.groupby(["customer_id", "category"])[["bought", "viewed"]].sum()
    bought = by["bought"].unstack(fill_value=0)
    viewed = by["viewed"].unstack(fill_value=0)
    bought_share = bought.div(bought.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)
    viewed_share = viewed.div(viewed.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)
    out = pd.DataFrame(index=bought.index)
    for category in categories:
        name = slug(category)
        out[f"bought_share__{name}"] = bought_share.get(category, 0.0)
        out[f"viewed_share__{name}"] = viewed_share.get(category, 0.0)
    out["categories_bought"] = (bought > 0).sum(axis=1).astype(float)
    shares = bought_share.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["category_entropy"] = -np.where(shares > 0, shares * np.log(shares), 0.0).sum(axis=1)
    return out[columns].astype(float)
