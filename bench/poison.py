"""What one bad event costs the worker: a turn of N good events alone, against the same turn
with one event among them that cannot be applied (it would take its customer's stored spend past
the largest a counter holds), in the same run on a scratch PostgreSQL database.

The worker bisects the failing batch within the turn (``service.events.worker``): the good events
are applied in that same turn and the bad one becomes a dead letter. The ratio says what the
isolation costs; the good events' delay is that turn's time, never a further turn.

    .venv/bin/python bench/poison.py [--events 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report, scratch_postgres
from service.config import Settings
from service.db.session import make_engine, make_session_factory
from service.events import service
from service.events.schemas import EventBatchCreate
from service.events.service import IngestRules
from service.events.worker import process_pending
from service.ml.activity import MAX_COUNTER
from service.portrait.models import CustomerDay
from service.privacy import PiiHasher

MOMENT = datetime(2026, 1, 15, 12, tzinfo=UTC)


def store(
    factory: sessionmaker[Session], rules: IngestRules, events: list[dict[str, object]]
) -> None:
    candidates = EventBatchCreate.model_validate({"events": events}).candidates()
    with factory() as session, session.begin():
        service.ingest(session, candidates, rules, max_events=len(candidates))


def purchase(event_id: str, customer: str, amount: str, day: int = 0) -> dict[str, object]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "type": "purchase",
        "occurred_at": (MOMENT + timedelta(days=day)).isoformat(),
        "amount": amount,
    }


def one_turn(
    factory: sessionmaker[Session], rules: IngestRules, n: int, tag: str, poison: bool
) -> float:
    good = [purchase(f"{tag}-{i}", f"c-{i % 2000}", "2.50", day=i % 30) for i in range(n)]
    bad = [purchase(f"{tag}-bad", "whale", "6")] if poison else []
    store(factory, rules, good[: n // 2] + bad + good[n // 2 :])
    started = time.perf_counter()
    taken = process_pending(factory, limit=n + 1)
    seconds = time.perf_counter() - started
    assert taken == n + len(bad), taken
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    with scratch_postgres() as url:
        settings = Settings(_env_file=None, database_url=url, worker="off")  # type: ignore[call-arg]
        engine = make_engine(settings)
        factory = make_session_factory(engine)
        rules = IngestRules.from_settings(settings, PiiHasher.from_settings(settings))
        store(factory, rules, [purchase("whale-0", "whale", "1")])
        process_pending(factory, limit=10)
        with factory() as session, session.begin():
            session.execute(update(CustomerDay).values(spend_units=MAX_COUNTER - 50_000))
        clean, poisoned = [], []
        for round_ in range(arguments.rounds):
            clean.append(one_turn(factory, rules, arguments.events, f"clean{round_}", False))
            poisoned.append(one_turn(factory, rules, arguments.events, f"bad{round_}", True))
        engine.dispose()
    result = {
        "events": arguments.events,
        "clean_turn_seconds": round(statistics.median(clean), 3),
        "poisoned_turn_seconds": round(statistics.median(poisoned), 3),
        "ratio": round(statistics.median(poisoned) / statistics.median(clean), 2),
        "rounds": arguments.rounds,
    }
    report("poison", result)


if __name__ == "__main__":
    main()
