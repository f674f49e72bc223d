"""Product-text embedding: TF-IDF over product names, categories and descriptions, reduced with
truncated SVD (latent semantic analysis), fitted on the training catalogue.

A customer's embedding is the mean of the embeddings of the products they bought (weight 2 per
unit) and viewed (weight 1), which equals projecting the weighted mean of their TF-IDF vectors,
because the projection is linear. Products unseen at fitting time are embedded from their text.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from service.ml.features import FeatureDef

GROUP = "product text"
_WORD = re.compile(r"\b[^\W\d_]{2,}\b")
"""A word: two or more letters. Codes and numbers ("85123A", "2024") are not: each names one
product, so to LSA they are noise, not meaning."""


def product_text(catalogue: pd.DataFrame) -> pd.Series:
    """One document per SKU: name, category and description, where known."""
    columns = [column for column in ("name", "category", "description") if column in catalogue]
    parts = [catalogue[column].fillna("") for column in columns]
    text = parts[0].str.cat(parts[1:], sep=" ") if parts else pd.Series("", index=catalogue.index)
    return pd.Series(text.to_numpy(), index=catalogue["sku"].to_numpy())


def unusable_text(catalogue: pd.DataFrame) -> str | None:
    """Why the catalogue's text cannot be embedded, or None when it can. LSA needs at least two
    products, two of them described in words and two distinct words among them: with less, every
    product lands on one point (or the SVD refuses), and the group would only add noise."""
    if catalogue.empty:
        return "no products in the events (no line items)"
    texts = product_text(catalogue)
    if texts.index.nunique() < 2:
        return "one product only; a text embedding needs at least 2"
    words = [set(_WORD.findall(text.lower())) for text in texts]
    described = sum(1 for found in words if found)
    distinct = len(set().union(*words))
    if described < 2 or distinct < 2:
        return (
            f"the product texts hold {distinct} distinct word(s) over {described} product(s) "
            "(codes and numbers are not words); a text embedding needs at least 2 of each"
        )
    return None


PROJECTED_TEXTS = 100_000
"""Product texts whose projection a process keeps (a few hundred bytes each), then starts over."""


class ProductTextEmbedder:
    def __init__(self, components: int = 8, seed: int = 0) -> None:
        self.components = components
        self.seed = seed
        self._projected: dict[str, np.ndarray] = {}

    def fit(self, catalogue: pd.DataFrame) -> ProductTextEmbedder:
        texts = product_text(catalogue)
        self.vectorizer_ = TfidfVectorizer(sublinear_tf=True, min_df=1, ngram_range=(1, 2))
        matrix = self.vectorizer_.fit_transform(texts.to_numpy())
        components = max(1, min(self.components, matrix.shape[0] - 1, matrix.shape[1] - 1))
        self.svd_ = TruncatedSVD(n_components=components, random_state=self.seed)
        self.product_vectors_ = (
            pd.DataFrame(self.svd_.fit_transform(matrix), index=texts.index).groupby(level=0).last()
        )
        return self

    def state(self) -> dict[str, Any]:
        """What reproduces the fitted embedding: vocabulary, IDF weights, SVD components."""
        return {
            "components": self.components,
            "seed": self.seed,
            "vocabulary": {term: int(i) for term, i in self.vectorizer_.vocabulary_.items()},
            "idf": self.vectorizer_.idf_.tolist(),
            "svd_components": self.svd_.components_.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ProductTextEmbedder:
        embedder = cls(state["components"], state["seed"])
        vectorizer = TfidfVectorizer(
            sublinear_tf=True, ngram_range=(1, 2), vocabulary=state["vocabulary"]
        )
        vectorizer.fit([""])  # the vocabulary is fixed; the IDF weights are set next
        vectorizer.idf_ = np.asarray(state["idf"])
        svd = TruncatedSVD(n_components=len(state["svd_components"]))
        svd.components_ = np.asarray(state["svd_components"])
        embedder.vectorizer_, embedder.svd_ = vectorizer, svd
        embedder.product_vectors_ = pd.DataFrame(columns=range(svd.n_components), dtype=float)
        return embedder

    def definitions(self) -> list[FeatureDef]:
        description = "Component {} of the product-text embedding (LSA)."
        return [
            FeatureDef(f"text_{i}", description.format(i), "unitless", GROUP)
            for i in range(self.svd_.n_components)
        ]

    def embed(self, catalogue: pd.DataFrame) -> pd.DataFrame:
        """(skus x components): known products from the fit, others from their text."""
        known = catalogue["sku"].isin(self.product_vectors_.index)
        unseen = product_text(catalogue.loc[~known])
        vectors = [self.product_vectors_.reindex(catalogue.loc[known, "sku"].unique())]
        if len(unseen):
            projected = pd.DataFrame(self._project(unseen.to_numpy()), index=unseen.index)
            vectors.append(projected[~projected.index.duplicated(keep="last")])
        return pd.concat(vectors)

    def _project(self, texts: np.ndarray) -> np.ndarray:
        """(texts x components), each distinct text projected once per process: a model scores
        the same catalogue for its whole life, and TF-IDF and SVD transforms of even one text
        cost milliseconds (a quarter of scoring one customer, before)."""
        cache, distinct = self._projected, set(texts)
        found = {text: vector for text in distinct if (vector := cache.get(text)) is not None}
        missing = [text for text in distinct if text not in found]
        if missing:
            matrix = self.svd_.transform(self.vectorizer_.transform(missing))
            if len(cache) + len(missing) > PROJECTED_TEXTS:
                cache.clear()
            for text, vector in zip(missing, matrix, strict=True):
                found[text] = cache[text] = vector
        return np.stack([found[text] for text in texts])

    def transform(self, products: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
        """(customers x text_i), indexed by customer_id; zeros for customers without products."""
        names = [d.name for d in self.definitions()]
        if products.empty:
            return pd.DataFrame(columns=names, index=pd.Index([], name="customer_id"), dtype=float)
        vectors = self.embed(catalogue[catalogue["sku"].isin(products["sku"])])
        weight = 2.0 * products["bought"].to_numpy() + products["viewed"].to_numpy()
        rows = vectors.reindex(products["sku"]).fillna(0.0).to_numpy() * weight[:, None]
        customer, customers = pd.factorize(products["customer_id"].to_numpy(), sort=True)
        total = np.bincount(customer, weights=weight, minlength=len(customers))
        summed = np.stack(
            [np.bincount(customer, weights=column, minlength=len(customers)) for column in rows.T],
            axis=1,
        )
        embedded = np.zeros_like(summed)
        np.divide(summed, total[:, None], out=embedded, where=total[:, None] > 0)
        return pd.DataFrame(embedded, columns=names, index=pd.Index(customers, name="customer_id"))
