"""`clv demo` end to end, as a user runs it: simulate, import, train, score, serve; then the
three curl commands it prints, run as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow  # the whole demo in a subprocess: simulate, train, serve


def _run(curl: str) -> Any:
    done = subprocess.run(shlex.split(curl), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered 200")


def test_the_demo_serves_and_its_printed_curl_commands_work(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CLV_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "CLV_MODEL_DIR": str(tmp_path / "models"),
        "CLV_LOG_LEVEL": "WARNING",
        "COLUMNS": "400",  # one curl command per line
    }
    command = [sys.executable, "-m", "service.cli", "demo", "--port", str(port)]
    command += ["--customers", "400", "--shop", str(tmp_path / "shop")]
    demo = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert demo.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if len(curls := [x.strip() for x in lines if x.startswith("curl ")]) == 3:
                break
        assert len(curls) == 3, "".join(lines)
        _wait_until_ready(f"http://127.0.0.1:{port}/readyz")
        score, ingested = _run(curls[0]), _run(curls[1])
        history = _run(curls[2])
        deadline = time.monotonic() + 30  # the worker rescores the customer after the order
        while history["entries"][0]["trigger"] != "events" and time.monotonic() < deadline:
            time.sleep(0.2)
            history = _run(curls[2])
    finally:
        demo.terminate()
        demo.wait(timeout=60)

    printed = "".join(lines)
    assert re.search(r"API key \(demo-[\d-]+, all scopes\): clv_\S+", printed)
    assert f"http://127.0.0.1:{port}/docs" in printed
    assert score["source"] == "stored"
    assert score["explanation"]["features"]
    assert score["value_tier"] == 10
    assert ingested["accepted"] == 1
    assert [entry["trigger"] for entry in history["entries"]] == ["events", "model"]
