"""System dependencies: per published file, and the distros' preinstalled packages.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_dependencies",
        sa.Column(
            "filename", sa.String(512), sa.ForeignKey("build_files.filename"), primary_key=True
        ),
        sa.Column("tool", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(512), primary_key=True),
    )
    op.create_table(
        "distros",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("loaded_at", sa.Float, nullable=False),
        sa.Column("source", sa.Text),
    )
    op.create_table(
        "distro_packages",
        sa.Column("distro", sa.String(100), sa.ForeignKey("distros.name"), primary_key=True),
        sa.Column("package", sa.String(100), primary_key=True),
    )


def downgrade() -> None:
    for table in ("distro_packages", "distros", "file_dependencies"):
        op.drop_table(table)
