"""Product topics: latent Dirichlet allocation over product names, categories and descriptions,
fitted on the training catalogue; a customer's features are their topic shares.

LDA models word counts (a bag of words per product), so it is fitted on a ``CountVectorizer``'s
counts, not on TF-IDF weights, whose scaled values are no counts of anything. Words are two or
more letters (codes and numbers name one product each, see ``service.ml.text``), without English
stop words, which every topic would otherwise share.

A product's topic distribution is computed from its text once per process (``_distributions``,
cached like the LSA projection); a customer's shares are the weighted mean of their products'
distributions (bought: 2 per unit, viewed: 1, as the text embedding weighs them), computed with
``bincount`` over all customers at once, never an LDA transform per customer.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import LatentDirichletAllocation
from sklearn.decomposition._lda import _dirichlet_expectation_2d
from sklearn.feature_extraction.text import CountVectorizer

from service.ml.features import FeatureDef
from service.ml.text import PROJECTED_TEXTS, product_text, unusable_text

GROUP = "product topics"
MAX_TOPICS = 10
"""Topics at most: each is a network input and an attribution, and ten themes already describe a
catalogue at the grain a marketer reads (the simulated shop's twelve categories fall into ten
topics with a normalised mutual information of about 0.6, ``tests/ml/test_topics.py``)."""
TOP_WORDS = 8
"""Words shown per topic (``GET /v1/features``, the feature descriptions)."""
MAX_ITER = 20
"""Passes of batch variational Bayes: on the simulated catalogue, 10, 20 and 50 passes find
topics of the same quality (NMI with the categories within 0.02) and 20 cost 1 s for 480
products."""
_TOKENS = r"(?u)\b[^\W\d_]{2,}\b"
_WORD = re.compile(_TOKENS)


def topic_count(catalogue: pd.DataFrame) -> int:
    """How many topics to fit: the shop's own number of categories where it names at least two
    (the merchant's grouping of the products is the best prior on how many themes their texts
    hold), else the square root of the number of distinct texts (a common rule for clustering
    without a prior); between 2 and ``MAX_TOPICS``, and never more than the products described
    in words (a topic per product would only memorise them)."""
    texts = product_text(catalogue)
    described = sum(1 for text in texts.unique() if _WORD.search(text.lower()))
    categories = catalogue["category"].dropna().nunique() if "category" in catalogue else 0
    wanted = categories if categories >= 2 else round(math.sqrt(texts.nunique()))
    return max(2, min(wanted, MAX_TOPICS, described))


def unusable_topics(catalogue: pd.DataFrame) -> str | None:
    """Why the catalogue cannot be modelled into topics, or None when it can: as for the text
    embedding, at least two products, two described in words and two distinct words."""
    return unusable_text(catalogue)


class ProductTopics:
    def __init__(self, topics: int = MAX_TOPICS, seed: int = 0) -> None:
        self.topics = topics
        self.seed = seed
        self._distributions_cache: dict[str, np.ndarray] = {}

    def fit(self, catalogue: pd.DataFrame) -> ProductTopics:
        """Raises ``ValueError`` when no word is left to model (every one a stop word)."""
        texts = product_text(catalogue)
        self.vectorizer_ = CountVectorizer(token_pattern=_TOKENS, stop_words="english")
        counts = self.vectorizer_.fit_transform(texts.unique())
        self.lda_ = LatentDirichletAllocation(
            n_components=self.topics,
            learning_method="batch",
            max_iter=MAX_ITER,
            random_state=self.seed,
        ).fit(counts)
        return self

    def state(self) -> dict[str, Any]:
        """What reproduces the fitted topics: the vocabulary and the topic-word weights."""
        vocabulary = self.vectorizer_.get_feature_names_out().tolist()
        return {
            "topics": self.topics,
            "seed": self.seed,
            "vocabulary": vocabulary,
            "doc_topic_prior": float(self.lda_.doc_topic_prior_),
            "components": self.lda_.components_.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ProductTopics:
        """The fitted model rebuilt from ``state``: the E-step that ``transform`` runs needs
        only the topic-word weights (``components_``), their Dirichlet expectation and the
        document-topic prior."""
        topics = cls(state["topics"], state["seed"])
        vocabulary = {word: i for i, word in enumerate(state["vocabulary"])}
        vectorizer = CountVectorizer(token_pattern=_TOKENS, vocabulary=vocabulary)
        vectorizer.fit([""])  # a fixed vocabulary: nothing is learnt
        components = np.asarray(state["components"], dtype=np.float64)
        lda = LatentDirichletAllocation(n_components=len(components), learning_method="batch")
        lda.components_ = components
        lda.exp_dirichlet_component_ = np.exp(_dirichlet_expectation_2d(components))
        lda.doc_topic_prior_ = state["doc_topic_prior"]
        lda.n_features_in_ = components.shape[1]
        topics.vectorizer_, topics.lda_ = vectorizer, lda
        return topics

    def top_words(self, count: int = TOP_WORDS) -> list[list[tuple[str, float]]]:
        """Per topic, its ``count`` most probable words with their probability in the topic."""
        words = self.vectorizer_.get_feature_names_out()
        weights = self.lda_.components_ / self.lda_.components_.sum(axis=1, keepdims=True)
        return [
            [(str(words[i]), float(row[i])) for i in np.argsort(-row, kind="stable")[:count]]
            for row in weights
        ]

    def definitions(self) -> list[FeatureDef]:
        return [
            FeatureDef(
                f"topic_{i}",
                f"Share of product topic {i} ({', '.join(w for w, _ in words[:5])}, ...) in the "
                "products bought (twice per unit) and viewed.",
                "share",
                GROUP,
            )
            for i, words in enumerate(self.top_words())
        ]

    def _distributions(self, texts: np.ndarray) -> np.ndarray:
        """(texts x topics), each distinct text's topic distribution computed once per process:
        a model scores the same catalogue for its whole life. A text without a known word gets
        the prior's (uniform) distribution: nothing is known about it."""
        cache, distinct = self._distributions_cache, list(dict.fromkeys(texts))
        missing = [text for text in distinct if text not in cache]
        if missing:
            if len(cache) + len(missing) > PROJECTED_TEXTS:
                cache.clear()
            matrix = self.lda_.transform(self.vectorizer_.transform(missing))
            cache.update(zip(missing, matrix, strict=True))
        if not len(texts):
            return np.zeros((0, self.lda_.n_components))
        return np.stack([cache[text] for text in texts])

    def transform(self, products: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
        """(customers x topic_i), indexed by customer_id; zeros for customers without products.
        ``products``: (customer_id, sku, bought, viewed) rows, as ``Activity.products``."""
        names = [f"topic_{i}" for i in range(self.lda_.n_components)]
        if products.empty:
            return pd.DataFrame(columns=names, index=pd.Index([], name="customer_id"), dtype=float)
        texts = product_text(catalogue[catalogue["sku"].isin(products["sku"])])
        texts = texts[~texts.index.duplicated(keep="last")]
        by_sku = pd.DataFrame(self._distributions(texts.to_numpy()), index=texts.index)
        weight = 2.0 * products["bought"].to_numpy() + products["viewed"].to_numpy()
        rows = by_sku.reindex(products["sku"]).fillna(0.0).to_numpy()
        customer, customers = pd.factorize(products["customer_id"].to_numpy(), sort=True)
        n = len(customers)
        total = np.bincount(customer, weights=weight, minlength=n)
        summed = np.stack(
            [np.bincount(customer, weights=column * weight, minlength=n) for column in rows.T],
            axis=1,
        )
        shares = np.zeros_like(summed)
        np.divide(summed, total[:, None], out=shares, where=total[:, None] > 0)
        return pd.DataFrame(shares, columns=names, index=pd.Index(customers, name="customer_id"))
