"""The published index: project serials and dirty marks, and each wheel's metadata hash.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("build_files", sa.Column("metadata_sha256", sa.String(64)))
    op.create_table(
        "index_projects",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("serial", sa.BigInteger, nullable=False),
        sa.Column("dirty", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("listed", sa.Text),
    )
    op.create_index("index_projects_dirty_idx", "index_projects", ["dirty"])
    op.create_index("index_projects_serial_idx", "index_projects", ["serial"])
    bind = op.get_bind()
    build_files = sa.table(
        "build_files",
        sa.column("filename", sa.String),
        sa.column("metadata", sa.LargeBinary),
        sa.column("metadata_sha256", sa.String),
    )
    held = bind.execute(
        sa.select(build_files.c.filename, build_files.c.metadata).where(
            build_files.c.metadata.is_not(None)
        )
    ).all()
    for filename, data in held:
        bind.execute(
            build_files.update()
            .where(build_files.c.filename == filename)
            .values(metadata_sha256=hashlib.sha256(data).hexdigest())
        )
    # Every project known so far is written at the next publication.
    bind.execute(
        sa.text(
            "INSERT INTO index_projects (name, serial, dirty) SELECT name, 1, :dirty FROM projects"
        ),
        {"dirty": True},
    )


def downgrade() -> None:
    op.drop_index("index_projects_serial_idx", table_name="index_projects")
    op.drop_index("index_projects_dirty_idx", table_name="index_projects")
    op.drop_table("index_projects")
    op.drop_column("build_files", "metadata_sha256")
