"""Published build logs that a re-triage rewrote: ``builds.log_stale``.

``wheelfarm builds --retriage`` rewrites a stored log's last block (the category and the telling
line). A published ``/logs/N.txt`` is written once, when absent; ``log_stale`` says that it must
be written again, and is cleared when the project is recorded as written.

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


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("log_stale")
