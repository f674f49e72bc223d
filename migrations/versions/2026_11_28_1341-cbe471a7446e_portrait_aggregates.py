"""Portrait aggregates: activity per customer and day, per customer and product; products.

Events stored before this revision are not in the aggregates: run `clv portrait rebuild`.

Revision ID: cbe471a7446e
Revises: 7e28b4f583ad
Create Date: 2026-11-28 13:41:04.317371
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.types

revision: str = "cbe471a7446e"
down_revision: str | None = "7e28b4f583ad"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_days",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("spend_units", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("refunds", sa.Integer(), nullable=False),
        sa.Column("refunded_units", sa.BigInteger(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("carts", sa.Integer(), nullable=False),
        sa.Column("removes", sa.Integer(), nullable=False),
        sa.Column("checkouts", sa.Integer(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", name=op.f("pk_customer_days")),
    )
    op.create_table(
        "customer_products",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("bought", sa.Integer(), nullable=False),
        sa.Column("viewed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "sku", name=op.f("pk_customer_products")),
    )
    op.create_table(
        "products",
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("category", sa.String(length=128), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("seen_at", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_products")),
    )


def downgrade() -> None:
    op.drop_table("products")
    op.drop_table("customer_products")
    op.drop_table("customer_days")
