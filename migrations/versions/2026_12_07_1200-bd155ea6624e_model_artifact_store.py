"""The model store: each registered version's artifact files (size, sha256) and their bytes in
chunks of a mebibyte, so every replica loads a version from the database; the local model
directory becomes a cache. Schema only: a version registered before this revision keeps loading
from the folder of the machine that trained it and is stored at its next promotion or rollback
there (docs/operations.md).

Revision ID: bd155ea6624e
Revises: c8d9d78351ff
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bd155ea6624e"
down_revision: str | None = "c8d9d78351ff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_artifact_files",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name=op.f("fk_model_artifact_files_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("version", "name", name=op.f("pk_model_artifact_files")),
    )
    op.create_table(
        "model_artifact_chunks",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version", "name"],
            ["model_artifact_files.version", "model_artifact_files.name"],
            name=op.f("fk_model_artifact_chunks_version_model_artifact_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version", "name", "number", name=op.f("pk_model_artifact_chunks")),
    )


def downgrade() -> None:
    op.drop_table("model_artifact_chunks")
    op.drop_table("model_artifact_files")
