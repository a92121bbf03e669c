"""Rebuilds: the build number a job's next build carries, why it was rebuilt, and per build.

Revision ID: 0011_rebuilds
Revises: 0010_triage
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_rebuilds"
down_revision = "0010_triage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("build_number", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("rebuild_reason", sa.Text))
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("build_number", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("build_number")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("rebuild_reason")
        batch.drop_column("build_number")
