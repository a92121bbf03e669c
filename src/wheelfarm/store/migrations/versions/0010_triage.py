"""Failure triage and re-analysis: a failed build's category; whether a wheel was analysed.

``builds.category`` holds what :mod:`wheelfarm.farm.triage` read from a failed build's log;
builds stored before it have none until ``wheelfarm builds --retriage`` reads their logs.
``build_files.analysed`` says a wheel's system dependencies were analysed: true for the wheels
that have rows in ``file_dependencies``, false for the rest, which ``wheelfarm dependencies
--reanalyse`` analyses (a wheel that needs nothing has no rows, so it is analysed once more).

Revision ID: 0010_triage
Revises: 0008_stats_speed
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_triage"
down_revision = "0008_stats_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("builds", sa.Column("category", sa.String(32)))
    op.add_column(
        "build_files",
        sa.Column("analysed", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    build_files = sa.table("build_files", sa.column("filename"), sa.column("analysed"))
    file_dependencies = sa.table("file_dependencies", sa.column("filename"))
    op.execute(
        sa.update(build_files)
        .where(build_files.c.filename.in_(sa.select(file_dependencies.c.filename)))
        .values(analysed=True)
    )


def downgrade() -> None:
    op.drop_column("build_files", "analysed")
    op.drop_column("builds", "category")
