"""The background loop shared by the event worker and the job runner: a daemon thread that does
turns of work while there is some, polls when there is none, and backs off exponentially while
turns fail (a database outage), so neither floods the log nor spins, and both recover by
themselves when the cause goes away."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


def backoff_seconds(base: float, failures: int) -> float:
    """How long to wait after ``failures`` failures in a row: doubling from ``base``, capped."""
    return min(MAX_BACKOFF_SECONDS, base * 2.0**failures)


class PollingLoop:
    """Subclasses implement ``turn``; ``run`` loops in the calling thread, ``start`` in a new
    daemon thread, and ``stop`` ends either after the current turn."""

    name = "clv-loop"

    def __init__(self, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def turn(self) -> bool:
        """One unit of work; True when there was some (the loop goes on without waiting)."""
        raise NotImplementedError

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                busy = self.turn()
            except Exception:
                failures += 1
                logger.exception("%s turn failed (%d in a row); retrying", self.name, failures)
                self._stop.wait(backoff_seconds(self.poll_seconds, failures))
                continue
            failures = 0
            if not busy:
                self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to end after its current turn, without waiting for it."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()
