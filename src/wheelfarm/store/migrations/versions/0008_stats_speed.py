"""Raw hits keyed by (day, hit): new rows go to the end of the table, not to random places.

On SQLite the old key, a random 64-bit hash, was the row id itself, so every hit written went
to a random page of a table of hundreds of megabytes: ingesting a log slowed down as the table
grew (issue 15). With the day first, a batch touches the pages of its own days only; the day
index is the key's prefix and goes.

Revision ID: 0008_stats_speed
Revises: 0007_stats_pages
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_stats_speed"
down_revision = "0007_stats_pages"
branch_labels = None
depends_on = None

_COLUMNS = "hit, day, at, kind, project, version, filename, target, client, agent"


def _hits_table(name: str, key: list[str], hit: sa.types.TypeEngine[int]) -> None:
    op.create_table(
        name,
        sa.Column("hit", hit, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255)),
        sa.Column("filename", sa.String(512)),
        sa.Column("target", sa.String(100)),
        sa.Column("client", sa.String(16), nullable=False),
        sa.Column("agent", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(*key, name=f"stats_hits_{'_'.join(key)}_pkey"),
    )


def _rebuild(key: list[str], hit: sa.types.TypeEngine[int]) -> None:
    _hits_table("stats_hits_rebuilt", key, hit)
    op.execute(
        f"INSERT INTO stats_hits_rebuilt ({_COLUMNS}) "
        f"SELECT {_COLUMNS} FROM stats_hits ORDER BY day"
    )
    op.drop_table("stats_hits")
    op.rename_table("stats_hits_rebuilt", "stats_hits")


def upgrade() -> None:
    op.drop_index("stats_hits_day_idx", table_name="stats_hits")
    _rebuild(["day", "hit"], sa.BigInteger())


def downgrade() -> None:
    _rebuild(["hit"], sa.BigInteger().with_variant(sa.Integer(), "sqlite"))  # the row id
    op.create_index("stats_hits_day_idx", "stats_hits", ["day"])
