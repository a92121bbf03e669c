"""Project status markers (PEP 792) as the upstream's pages state them.

``status_key`` is a register like the others (the page read that last set the status);
``status_marker`` (``active``, ``archived``, ``deprecated``, ``quarantined``; NULL: never read,
so active) and ``status_reason`` travel with it.

Revision ID: 0013_project_status
Revises: 0011_rebuilds
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_project_status"
down_revision = "0011_rebuilds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("status_key", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column("projects", sa.Column("status_marker", sa.String(32)))
    op.add_column("projects", sa.Column("status_reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("status_reason")
        batch.drop_column("status_marker")
        batch.drop_column("status_key")
