"""The Kubernetes manifests in ``deploy/k8s`` (issue 19): each valid against the Kubernetes
schemas (kubernetes-validate, strict: an unknown field is an error), and wired together as the
service needs: probes on /healthz and /readyz, the commands the README and Dockerfile use,
autoscalers and disruption budgets that reach the Deployments they name."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "deploy" / "k8s"
KUBERNETES = "1.30.0"
"""The oldest Kubernetes the manifests are checked against (autoscaling/v2, policy/v1)."""


def _manifests() -> dict[str, dict[str, Any]]:
    """Every object by kind/name, the kustomization's resources and the secret's example."""
    listed = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())["resources"]
    found = {}
    for name in [*listed, "secret.example.yaml"]:
        for document in yaml.safe_load_all((FOLDER / name).read_text()):
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


MANIFESTS = _manifests()


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_each_manifest_is_valid_against_the_kubernetes_schemas(name: str) -> None:
    kubernetes_validate.validate(MANIFESTS[name], KUBERNETES, strict=True)


def test_the_validation_catches_a_mistake() -> None:
    broken = copy.deepcopy(MANIFESTS["Deployment/clv-api"])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_every_file_is_applied_or_is_the_secrets_example() -> None:
    listed = set(yaml.safe_load((FOLDER / "kustomization.yaml").read_text())["resources"])
    on_disk = {path.name for path in FOLDER.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk - listed == {"secret.example.yaml"}


def _container(kind_name: str) -> dict[str, Any]:
    [container] = MANIFESTS[kind_name]["spec"]["template"]["spec"]["containers"]
    return container


def test_the_api_probes_and_commands_match_the_service() -> None:
    api, worker = _container("Deployment/clv-api"), _container("Deployment/clv-worker")
    migrate = _container("Job/clv-migrate")
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["command"][:2] == ["clv", "serve"]
    assert "clv serve --host 0.0.0.0 --port 8000" in dockerfile
    assert api["ports"][0]["containerPort"] == int(
        api["command"][api["command"].index("--port") + 1]
    )
    assert worker["command"] == ["clv", "worker"]
    assert migrate["command"] == shlex.split("clv db upgrade")
    assert "clv db upgrade" in dockerfile
    # API pods leave the background work to the workers
    assert MANIFESTS["ConfigMap/clv-config"]["data"]["CLV_WORKER"] == "off"
    assert api["command"][api["command"].index("--event-workers") + 1] == "0"
    for container in (api, worker, migrate):
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"clv-config", "clv-secrets"}


def test_autoscalers_and_disruption_budgets_reach_their_deployments() -> None:
    for component in ("api", "worker"):
        deployment = MANIFESTS[f"Deployment/clv-{component}"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        scaler = MANIFESTS[f"HorizontalPodAutoscaler/clv-{component}"]["spec"]
        assert scaler["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"clv-{component}",
        }
        budget = MANIFESTS[f"PodDisruptionBudget/clv-{component}"]["spec"]
        assert budget["selector"]["matchLabels"].items() <= labels.items()
    service = MANIFESTS["Service/clv-api"]["spec"]
    api_labels = MANIFESTS["Deployment/clv-api"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= api_labels.items()
    [metric] = MANIFESTS["HorizontalPodAutoscaler/clv-worker"]["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "clv_pending_events"  # on /metrics
