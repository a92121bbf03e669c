"""Statistics pages: read a project's daily downloads by project, not by scanning every day.

Revision ID: 0007_stats_pages
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007_stats_pages"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "stats_daily_project_idx", "stats_daily", ["kind", "dimension", "project", "day"]
    )


def downgrade() -> None:
    op.drop_index("stats_daily_project_idx", table_name="stats_daily")
