"""``clv serve`` as a real operating-system process, for the tests that kill, signal or scale it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx


class _Process:
    """A process of the service started in a session of its own, its output in ``log``."""

    log: Path
    process: subprocess.Popen[bytes] | None

    def kill(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 60.0) -> int:
        """Signal the whole process group (SIGKILL: no clean-up at all); the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        return self.process.wait(timeout)

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it (clean-up runs); SIGKILL if it hangs."""
        try:
            return self.kill(signal.SIGTERM, timeout=45)
        except subprocess.TimeoutExpired:
            return self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class ServerProcess(_Process):
    """``clv serve`` on a port, its output (JSON log lines) captured in a file.

    ``start`` waits until ``/healthz`` answers; ``kill`` sends a signal and waits for the exit;
    ``start`` again brings up a new process on the same port and database.
    """

    def __init__(
        self,
        port: int,
        env: dict[str, str],
        log: Path,
        *,
        workers: int = 1,
        event_workers: int | None = 0,
    ) -> None:
        self.port, self.env, self.log, self.workers = port, env, log, workers
        self.event_workers = event_workers
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        command = [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        if self.event_workers is not None:  # None: clv serve's default layout
            command += ["--event-workers", str(self.event_workers)]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal to the group reaches every worker process
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"clv serve exited:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"clv serve did not start:\n{self.output()}")
            time.sleep(0.1)

    def log_entries(self) -> list[dict[str, Any]]:
        """The JSON log lines (uvicorn's start-up banner aside)."""
        entries = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                entries.append(json.loads(line))
        return entries

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class WorkerProcess(_Process):
    """``clv worker`` as its own process (no HTTP: it is up once started), output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process = None

    def start(self) -> WorkerProcess:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "worker"],
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self
