"""Published build logs that a re-triage rewrote (``builds.log_stale``), and the targets the
published pages show as served by no builder (``targets.unserved``).

``wheelfarm builds --retriage`` rewrites a stored log's last block (the category and the telling
line). A published ``/logs/N.txt`` is written once, when absent; ``log_stale`` says that it must
be written again, and is cleared when the project is recorded as written.

``targets.unserved``: the publisher's last finding that a target has pending jobs and no builder
seen within ``builder_silence_minutes``; when it changes, the projects with pending jobs for the
target are published again (farm/unserved.py).

Revision ID: 0014_cli17
Revises: 0013_project_status
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_cli17"
down_revision = "0013_project_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "builds", sa.Column("log_stale", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column(
        "targets", sa.Column("unserved", sa.Boolean, nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("unserved")
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("log_stale")
