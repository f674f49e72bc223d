"""``GET /v1/features`` lists the serving model's product topics with their top words, beside
the feature definitions it always listed; without a model it still answers, with no topics."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.main import create_app
from tests.conftest import KeyFactory, ScoredShop, bearer


def test_the_feature_catalogue_lists_the_champions_topics(
    scored_shop: ScoredShop, make_key: KeyFactory
) -> None:
    headers = bearer(make_key("read"))
    with TestClient(create_app(scored_shop.settings)) as client:
        catalogue = client.get("/v1/features", headers=headers).json()
        model = client.get(f"/v1/models/{scored_shop.version}", headers=headers)

    assert catalogue["model_version"] == scored_shop.version
    topics = catalogue["topics"]
    assert len(topics) >= 2
    assert [t["feature"] for t in topics] == [f"topic_{i}" for i in range(len(topics))]
    for topic in topics:
        weights = [word["weight"] for word in topic["words"]]
        assert len(weights) == 8
        assert weights == sorted(weights, reverse=True)
        assert weights[0] > 0
    words = {word["word"] for topic in topics for word in topic["words"]}
    assert {"jewelry", "grocery"} & words  # the simulated shop's category names lead topics
    assert "frequency" in {feature["name"] for feature in catalogue["features"]}
    assert model.status_code == 200
    assert "product topics" not in model.json()["metrics"].get("omitted_feature_groups", {})


def test_without_a_model_the_catalogue_has_no_topics(
    client: TestClient, make_key: KeyFactory
) -> None:
    catalogue = client.get("/v1/features", headers=bearer(make_key("read"))).json()

    assert catalogue["model_version"] is None
    assert catalogue["topics"] == []
    assert len(catalogue["features"]) > 30
