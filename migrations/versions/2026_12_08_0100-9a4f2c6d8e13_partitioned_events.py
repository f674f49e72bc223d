"""Events partitioned by month on PostgreSQL, and event ids kept in a table of their own.

``pending_events`` gains each queued event's time, so a worker reading its batch searches only
the partitions of the months the batch spans.
``event_ids`` (event_id, customer_id) becomes the arbiter of "stored once", filled from the
stored events; ``events`` loses its unique event_id. On PostgreSQL ``events`` is rebuilt as a
table partitioned by range of ``occurred_at``: one partition per month from the month of its
oldest event (or this month) to two months ahead, and ``events_default`` for anything else; the
rows are copied in one statement, keeping their sequence numbers and the sequence. Its primary
key becomes (seq, occurred_at, customer_id): partitioning requires the partition key in it, and
a sharded PostgreSQL (Citus, distributing by customer_id) the distribution column, which
``score_history``'s key (id, customer_id) now holds too. This rewrites the event log: it holds
a lock on ``events`` for as long as the copy takes (about a minute per few million events);
run it in a maintenance window. Later months are created by the workers
(``service.events.partitions``, whose SQL this copies: a migration does not change with it).

Revision ID: 9a4f2c6d8e13
Revises: 5e0c1f7a9b42
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import service.db.types

revision: str = "9a4f2c6d8e13"
down_revision: str | None = "5e0c1f7a9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AHEAD_MONTHS = 2


def _month(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)


def upgrade() -> None:
    op.create_table(
        "event_ids",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_ids")),
    )
    op.create_index(op.f("ix_event_ids_customer_id"), "event_ids", ["customer_id"])
    op.execute(
        "INSERT INTO event_ids (event_id, customer_id) SELECT event_id, customer_id FROM events"
    )
    with op.batch_alter_table("pending_events") as batch:
        batch.add_column(
            sa.Column("occurred_at", service.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE pending_events SET occurred_at = "
        "(SELECT e.occurred_at FROM events e WHERE e.seq = pending_events.seq)"
    )
    with op.batch_alter_table("pending_events") as batch:
        batch.alter_column("occurred_at", nullable=False)
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("events") as batch:
            batch.drop_constraint("uq_events_event_id", type_="unique")
        return
    op.execute("ALTER SEQUENCE events_seq_seq OWNED BY NONE")
    op.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    op.execute("ALTER TABLE events_unpartitioned RENAME CONSTRAINT pk_events TO pk_events_old")
    op.execute("ALTER INDEX ix_events_customer_id_occurred_at RENAME TO ix_events_old_customer")
    op.execute(
        "CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (occurred_at)"
    )
    op.execute(
        "ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (seq, occurred_at, customer_id)"
    )
    op.create_index("ix_events_customer_id_occurred_at", "events", ["customer_id", "occurred_at"])
    oldest = op.get_bind().scalar(sa.text("SELECT min(occurred_at) FROM events_unpartitioned"))
    now = datetime.now(UTC)
    first = oldest.astimezone(UTC) if oldest is not None and oldest < now else now
    month = _month(first.year, first.month)
    last = _month(now.year, now.month + AHEAD_MONTHS)
    while month <= last:
        following = _month(month.year, month.month + 1)
        op.execute(
            f"CREATE TABLE events_y{month.year:04d}m{month.month:02d} PARTITION OF events "
            f"FOR VALUES FROM ('{month.isoformat()}') TO ('{following.isoformat()}')"
        )
        month = following
    op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
    op.execute("INSERT INTO events SELECT * FROM events_unpartitioned")
    op.execute("DROP TABLE events_unpartitioned")
    op.execute("ALTER SEQUENCE events_seq_seq OWNED BY events.seq")
    op.execute("ALTER TABLE score_history DROP CONSTRAINT pk_score_history")
    op.execute(
        "ALTER TABLE score_history ADD CONSTRAINT pk_score_history PRIMARY KEY (id, customer_id)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE score_history DROP CONSTRAINT pk_score_history")
        op.execute("ALTER TABLE score_history ADD CONSTRAINT pk_score_history PRIMARY KEY (id)")
        op.execute("ALTER SEQUENCE events_seq_seq OWNED BY NONE")
        op.execute("ALTER TABLE events RENAME TO events_partitioned")
        op.execute("ALTER TABLE events_partitioned RENAME CONSTRAINT pk_events TO pk_events_new")
        op.execute("ALTER INDEX ix_events_customer_id_occurred_at RENAME TO ix_events_new_customer")
        op.execute(
            "CREATE TABLE events (LIKE events_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (seq)")
        op.execute("INSERT INTO events SELECT * FROM events_partitioned")
        op.execute("DROP TABLE events_partitioned")  # its partitions with it
        op.execute("ALTER SEQUENCE events_seq_seq OWNED BY events.seq")
        op.create_index(
            "ix_events_customer_id_occurred_at", "events", ["customer_id", "occurred_at"]
        )
        op.create_unique_constraint("uq_events_event_id", "events", ["event_id"])
    else:
        with op.batch_alter_table("events") as batch:
            batch.create_unique_constraint("uq_events_event_id", ["event_id"])
    with op.batch_alter_table("pending_events") as batch:
        batch.drop_column("occurred_at")
    op.drop_index(op.f("ix_event_ids_customer_id"), table_name="event_ids")
    op.drop_table("event_ids")
