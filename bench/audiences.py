"""Audiences over 1,000,000 scored customers on PostgreSQL: count, revenue and first page.

Loads ``--customers`` synthetic stored scores (the champion's, each with a 1,200-byte
attribution blob as real explained scores carry, 2% flagged, 10% cold start) and their profiles
(a ``platform`` source for everyone, a more trusted ``crm`` one overriding the region of 20%),
by COPY into a scratch database (dropped at the end); then merges the profiles as a worker
starting after the migration does (``merge_unmerged``, timed), and VACUUM ANALYZEs as
autovacuum would. For each representative audience it times what ``GET /v1/audiences/{id}``
(count and revenue) and the first ``GET /v1/audiences/{id}/members`` page run, each (the
service functions, one session): cold-ish (the first run, on a new connection right after the
load; the OS page cache holds what the load wrote, PostgreSQL's buffers do not hold it all) and
warm (p50 and max over ``--repeats``),
checks with EXPLAIN which indexes the count uses, and then times the same without the
audience indexes (the baseline, ``--baseline-repeats`` warm runs) for the ratio.

    .venv/bin/python bench/audiences.py [--customers 1000000 --repeats 5]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import func, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ClauseElement, Executable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import libpq_url, percentile, report, scratch_postgres
from service.audiences import repository, service
from service.audiences.schemas import AudienceCreate, AudienceFilters
from service.config import Settings
from service.customers.service import ProfilePolicy, merge_unmerged
from service.db.session import make_engine, make_session_factory
from service.ml.segments import SEGMENTS
from service.privacy import PiiHasher

VERSION, HORIZON = "clv-bench-audiences", 365
BLOB = bytes(range(256)) * 4 + bytes(176)  # 1,200 bytes, as an explained score's attributions
AUDIENCE_INDEXES = [
    "ix_scores_audience_clv",
    "ix_scores_audience_probability",
    "ix_scores_audience_segment",
    "ix_scores_audience_flags",
    "ix_customer_profiles_audience",
]
REGIONS = ["north", "south", "east", "west", "centre"]


def audiences(today: datetime) -> dict[str, dict[str, Any]]:
    window_end = (today + timedelta(days=180)).date().isoformat()
    return {
        "top two tiers": {"value_tier": {"min": 9}},
        "low churn, next order within 180 days": {
            "churn_risk": ["low"],
            "next_order_date": {"end": window_end},
        },
        "spend spike": {"risk_flags": ["spend_spike"]},
        "region north (merged profile)": {"profile": {"region": "north"}},
        "tiers 6+, high churn, at risk": {
            "value_tier": {"min": 6},
            "churn_risk": ["high"],
            "segment": ["at_risk", "hibernating"],
        },
    }


def score_frame(customers: int, now: datetime, rng: np.random.Generator) -> pd.DataFrame:
    ids = [f"C{i:08d}" for i in range(customers)]
    clv = rng.lognormal(4.0, 1.2, customers)
    probability = rng.beta(1.2, 1.8, customers)
    as_of = now - pd.to_timedelta(rng.uniform(0, 86_400, customers), unit="s")
    flags = np.where(
        rng.uniform(size=customers) < 0.02,
        json.dumps([{"flag": "spend_spike", "reason": "bench", "window_days": 30}]),
        "[]",
    )
    segments = rng.choice(SEGMENTS, customers, p=[0.1, 0.1, 0.1, 0.15, 0.15, 0.1, 0.1, 0.2])
    return pd.DataFrame(
        {
            "customer_id": ids,
            "model_version": VERSION,
            "horizon_days": HORIZON,
            "as_of": as_of,
            "computed_at": as_of,
            "trigger": "model",
            "clv": clv,
            "p10": clv * 0.2,
            "p50": clv * 0.8,
            "p90": clv * 2.5,
            "purchase_probability": probability,
            "probability_alive": np.minimum(probability * 1.3, 1.0),
            "expected_orders": probability * 2,
            "expected_order_value": clv / np.maximum(probability * 2, 0.1),
            "btyd_clv": clv * 0.9,
            "cold_start": rng.uniform(size=customers) < 0.1,
            "historic_revenue": clv * 1.5,
            "average_days_between_orders": rng.uniform(10, 200, customers),
            "segment": segments,
            "risk_flags": flags,
        }
    )


def copy_frame(connection: psycopg.Connection[Any], table: str, frame: pd.DataFrame) -> None:
    """COPY a frame in chunks of 100,000 rows (CSV text)."""
    columns = ", ".join(frame.columns)
    with connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as cp:
        for start in range(0, len(frame), 100_000):
            buffer = io.StringIO()
            frame.iloc[start : start + 100_000].to_csv(buffer, header=False, index=False)
            cp.write(buffer.getvalue())


def load(url: str, customers: int, now: datetime) -> dict[str, float]:
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    scores = score_frame(customers, now, rng)
    platform = pd.DataFrame(
        {
            "customer_id": scores["customer_id"],
            "source": "platform",
            "attributes": [
                json.dumps({"region": r, "age_band": a})
                for r, a in zip(
                    rng.choice(REGIONS, customers),
                    rng.choice(["18-24", "25-34", "35-44", "45-54", "55+"], customers),
                    strict=True,
                )
            ],
            "updated_at": now,
        }
    )
    crm = platform.sample(frac=0.2, random_state=3).assign(
        source="crm",
        attributes=lambda f: [json.dumps({"region": r}) for r in rng.choice(REGIONS, len(f))],
    )
    generated = time.perf_counter() - started
    deciles = np.quantile(scores["clv"], np.arange(1, 10) / 10).round(6).tolist()
    with psycopg.connect(libpq_url(url)) as connection:
        started = time.perf_counter()
        indexes = connection.execute(  # built after the load: faster than row by row
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('scores', 'customer_profiles') AND indexname NOT LIKE 'pk_%%'"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f"DROP INDEX {name}")
        connection.execute("CREATE TEMP TABLE staged (LIKE scores INCLUDING DEFAULTS)")
        copy_frame(connection, "staged", scores)
        columns = ", ".join(scores.columns)
        connection.execute(  # the attributions added in the server: 1.2 GB not sent as text
            f"INSERT INTO scores ({columns}, explanation) SELECT {columns}, %s FROM staged",
            [BLOB],
        )
        copy_frame(connection, "customer_attributes", pd.concat([platform, crm]))
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        for _, definition in indexes:
            connection.execute(definition)
        indexed = time.perf_counter() - started
        connection.execute(
            "INSERT INTO model_versions (version, architecture, horizon_days, "
            "trained_horizon_days, data_from, data_to, sha256, metrics, created_at, created_by) "
            "VALUES (%s, 'gru', %s, %s, %s, %s, '', '{}', %s, 'bench')",
            [VERSION, HORIZON, HORIZON, now - timedelta(days=720), now, now],
        )
        connection.execute(
            "INSERT INTO model_aliases (alias, version, updated_at) VALUES ('champion', %s, %s)",
            [VERSION, now],
        )
        connection.execute(
            "INSERT INTO score_deciles (model_version, horizon_days, boundaries, customers, "
            "computed_at) VALUES (%s, %s, %s, %s, %s)",
            [VERSION, HORIZON, json.dumps(deciles), customers, now],
        )
        connection.commit()
        started = time.perf_counter()
        settings = Settings(_env_file=None, database_url=url, worker="off")  # type: ignore[call-arg]
        engine = make_engine(settings)
        policy = ProfilePolicy.from_settings(settings, PiiHasher.from_settings(settings))
        merged = merge_unmerged(make_session_factory(engine), policy)
        engine.dispose()
        merged_s = time.perf_counter() - started
        connection.autocommit = True
        started = time.perf_counter()
        connection.execute("VACUUM ANALYZE scores, customer_attributes, customer_profiles")
        vacuumed = time.perf_counter() - started
        size = connection.execute("SELECT pg_total_relation_size('scores')").fetchone()
    return {
        "generate_s": round(generated, 1),
        "copy_s": round(loaded, 1),
        "index_build_s": round(indexed, 1),
        "profiles_merged": merged,
        "profiles_merge_s": round(merged_s, 1),
        "vacuum_analyze_s": round(vacuumed, 1),
        "scores_table_mib": round((size[0] if size else 0) / 2**20),
    }


def timed(settings: Settings, ids: dict[str, int], repeats: int) -> Iterator[tuple[str, Any]]:
    """Per audience: its count and first page's size, and the seconds of each run of what
    ``GET /v1/audiences/{id}`` runs (the count and revenue) and of what the first
    ``GET /v1/audiences/{id}/members`` page runs."""
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    try:
        for name, audience_id in ids.items():
            counting: list[float] = []
            paging: list[float] = []
            for _ in range(repeats):
                with factory() as session:
                    started = time.perf_counter()
                    customers = service.read(session, settings, audience_id).count.customers
                    counted = time.perf_counter()
                    page = service.member_page(session, settings, audience_id, None, 100)
                    counting.append(counted - started)
                    paging.append(time.perf_counter() - counted)
            yield name, ((customers, len(page.members)), counting, paging)
    finally:
        engine.dispose()


class Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement, its parameters bound as when it runs."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.statement, **kw))


def indexes_used(session: Session, settings: Settings, filters: AudienceFilters) -> list[str]:
    current = service.scope(session, settings)
    assert current is not None
    where = repository.conditions(session, filters, current)
    query = select(func.count(), func.sum(repository.S.clv)).where(*where)
    plan = session.execute(Explain(query)).scalar_one()
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            found.append(f"{node['Node Type']} {node['Index Name']}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return sorted(set(found))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _spread(seconds: list[float]) -> str:
    return f"p50 {_ms(percentile(seconds, 50))} max {_ms(max(seconds))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-repeats", type=int, default=2)
    args = parser.parse_args()
    now = datetime.now(UTC)
    result: dict[str, Any] = {"customers": args.customers}
    with scratch_postgres() as url:
        settings = Settings(_env_file=None, database_url=url, worker="off")  # type: ignore[call-arg]
        result |= load(url, args.customers, now)
        factory = make_session_factory(make_engine(settings))
        ids: dict[str, int] = {}
        with factory() as session, session.begin():
            for name, filters in audiences(now).items():
                body = AudienceCreate(name=name, filters=AudienceFilters.model_validate(filters))
                ids[name] = service.create(session, settings, body).id
        with factory() as session:
            for name, filters in audiences(now).items():
                used = indexes_used(session, settings, AudienceFilters.model_validate(filters))
                result[f"{name}: count uses"] = used or "no index (sequential scan)"
        cold = dict(timed(settings, ids, 1))
        warm = dict(timed(settings, ids, args.repeats))
        with factory() as session, session.begin():
            for index in AUDIENCE_INDEXES:
                session.execute(text(f"DROP INDEX {index}"))
        baseline = dict(timed(settings, ids, args.baseline_repeats + 1))
        for name in ids:
            (customers, page), first_count, first_page = cold[name]
            _, counts, pages = warm[name]
            _, base_counts, base_pages = baseline[name]
            result[name] = (
                f"{customers:,} customers, first page {page}; count: cold-ish "
                f"{_ms(first_count[0])}, warm {_spread(counts)}, without the audience indexes "
                f"{_spread(base_counts[1:])}; first page: cold-ish {_ms(first_page[0])}, warm "
                f"{_spread(pages)}, without {_spread(base_pages[1:])}"  # run 1 warms the cache
            )
    report("audiences", result)


if __name__ == "__main__":
    main()
