"""The Prometheus alerting rules shipped in deploy/prometheus: valid, unit-tested with promtool,
and reading only metrics the service exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import service.ops.metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="needs promtool (Debian prometheus): make promtool")
def test_the_rules_are_valid_and_pass_their_unit_tests() -> None:
    assert PROMTOOL is not None
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(
            [PROMTOOL, *command], cwd=RULES, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_the_rules_read_is_one_the_service_exposes() -> None:
    """A renamed metric would leave its alert silent forever: promtool cannot know."""
    declared = set(re.findall(r'"(clv_[a-z_]+)"', Path(service.ops.metrics.__file__).read_text()))
    read = set(re.findall(r"\b(clv_[a-z_]+)\b", (RULES / "alerts.yml").read_text()))
    read = {name.removesuffix("_bucket") for name in read}

    assert read, "no metric found in the rules"
    assert read <= declared, sorted(read - declared)
