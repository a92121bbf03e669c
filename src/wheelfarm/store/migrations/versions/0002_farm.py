"""The farm: targets, builders, the job queue, builds, built files, skips.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "targets",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("platforms", sa.Text, nullable=False),
        sa.Column("distro", sa.String(100)),
    )
    op.create_table(
        "builders",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("target", sa.String(100)),
        sa.Column("python", sa.Text),
        sa.Column("os", sa.Text),
        sa.Column("last_seen", sa.Float),
        sa.Column("command", sa.String(16)),
    )
    op.create_table(
        "jobs",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), primary_key=True),
        sa.Column("target", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("priority", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("builder", sa.String(100)),
        sa.Column("lease_expires", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reason", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("jobs_claim_idx", "jobs", ["target", "state", "urgent", "priority"])
    op.create_index("jobs_lease_idx", "jobs", ["state", "lease_expires"])
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("builder", sa.String(100), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("duration", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("log", sa.LargeBinary),
        sa.Column("log_bytes", sa.Integer),
    )
    op.create_index("builds_release_idx", "builds", ["project", "version"])
    op.create_table(
        "build_files",
        sa.Column("filename", sa.String(512), primary_key=True),
        sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("requires_python", sa.Text),
        sa.Column("requires_dist", sa.Text),
        sa.Column("metadata", sa.LargeBinary),
    )
    op.create_index("build_files_release_idx", "build_files", ["project", "version"])
    op.create_table(
        "skips",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for index, table in (
        ("build_files_release_idx", "build_files"),
        ("builds_release_idx", "builds"),
        ("jobs_lease_idx", "jobs"),
        ("jobs_claim_idx", "jobs"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("skips", "build_files", "builds", "jobs", "builders", "targets"):
        op.drop_table(table)
