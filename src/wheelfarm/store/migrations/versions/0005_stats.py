"""Statistics: user agents, raw hits (kept a configurable number of days), daily counts.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stats_agents",
        sa.Column("agent", _KEY, primary_key=True, autoincrement=False),
        sa.Column("installer", sa.String(64)),
        sa.Column("installer_version", sa.String(64)),
        sa.Column("implementation", sa.String(64)),
        sa.Column("python", sa.String(16)),
        sa.Column("distro", sa.String(128)),
        sa.Column("libc", sa.String(64)),
        sa.Column("arch", sa.String(32)),
        sa.Column("os", sa.String(64)),
        sa.Column("ci", sa.Boolean),
        sa.Column("bot", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "stats_hits",
        sa.Column("hit", _KEY, primary_key=True, autoincrement=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255)),
        sa.Column("filename", sa.String(512)),
        sa.Column("target", sa.String(100)),
        sa.Column("client", sa.String(16), nullable=False),
        sa.Column("agent", sa.BigInteger, nullable=False),
    )
    op.create_index("stats_hits_day_idx", "stats_hits", ["day"])
    op.create_table(
        "stats_daily",
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("dimension", sa.String(24), primary_key=True),
        sa.Column("value", sa.String(512), primary_key=True),
        sa.Column("hits", sa.BigInteger, nullable=False),
    )
    op.create_index("stats_daily_kind_idx", "stats_daily", ["kind", "dimension", "day"])


def downgrade() -> None:
    for table in ("stats_daily", "stats_hits", "stats_agents"):
        op.drop_table(table)
