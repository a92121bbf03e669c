"""Monitoring: admins, the builders' latest readings, and the history of readings.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "builder_readings",
        sa.Column("builder", sa.String(100), primary_key=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("readings", sa.Text, nullable=False),
    )
    op.create_table(
        "samples",
        sa.Column("source", sa.String(120), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, primary_key=True),
        sa.Column("readings", sa.Text, nullable=False),
    )
    op.create_index("samples_age_idx", "samples", ["step", "at"])


def downgrade() -> None:
    op.drop_index("samples_age_idx", "samples")
    for table in ("samples", "builder_readings", "admins"):
        op.drop_table(table)
