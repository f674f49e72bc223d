"""Scores keep the customer's revenue so far and mean days between purchase days, for
historic_clv, total_clv and average_days_between_orders (null in rows stored before).

Revision ID: 3a9c7e5b2d18
Revises: 6d2e9b1f4a73
Create Date: 2026-12-07 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3a9c7e5b2d18"
down_revision: str | None = "6d2e9b1f4a73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("scores", "score_history")
COLUMNS = ("historic_revenue", "average_days_between_orders")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.add_column(sa.Column(column, sa.Float(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in reversed(COLUMNS):
                batch.drop_column(column)
