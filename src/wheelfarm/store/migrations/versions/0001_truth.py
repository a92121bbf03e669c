"""The follower's truth: journal, projects, releases, files, position.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _key(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def _flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false())


def upgrade() -> None:
    op.create_table(
        "state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("serial", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("timestamp", sa.BigInteger),
        sa.Column("name", sa.Text),
        sa.Column("version", sa.Text),
        sa.Column("action", sa.Text),
        sa.Column("problem", sa.Text),
    )
    op.create_table(
        "projects",
        sa.Column("name", sa.String(255), primary_key=True),
        _key("live_key"),
        _key("removed_key"),
        _key("registered_key"),
        sa.Column("registered_name", sa.Text),
        _key("seen_key"),
        sa.Column("seen_name", sa.Text),
        _key("quarantine_key"),
        _flag("quarantined"),
        sa.Column("summary", sa.Text),
        _key("last_serial"),
        _key("synced_serial"),
        _key("touched_key"),
    )
    op.create_table(
        "releases",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), primary_key=True),
        _key("live_key"),
        _key("removed_key"),
        _key("yank_key"),
        _flag("yanked"),
        sa.Column("yanked_reason", sa.Text),
        _key("quarantine_key"),
        _flag("quarantined"),
        _flag("prerelease"),
        sa.ForeignKeyConstraint(["project"], ["projects.name"], name="releases_project_fkey"),
    )
    op.create_table(
        "files",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("filename", sa.String(512), primary_key=True),
        sa.Column("version", sa.String(255), nullable=False),
        _key("live_key"),
        _key("removed_key"),
        sa.Column("python_version", sa.String(64)),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("upload_time", sa.String(40)),
        sa.Column("requires_python", sa.Text),
        sa.ForeignKeyConstraint(
            ["project", "version"],
            ["releases.project", "releases.version"],
            name="files_release_fkey",
        ),
    )
    op.create_index("files_release_idx", "files", ["project", "version"])


def downgrade() -> None:
    op.drop_index("files_release_idx", table_name="files")
    for table in ("files", "releases", "projects", "events", "state"):
        op.drop_table(table)
