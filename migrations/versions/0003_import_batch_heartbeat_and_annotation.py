"""import batches: a heartbeat written by the background job, and the annotated workbook it makes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("import_batches", sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
    op.add_column("import_batches", sa.Column("annotated_workbook", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_batches") as batch_op:
        batch_op.drop_column("annotated_workbook")
        batch_op.drop_column("heartbeat_at")
