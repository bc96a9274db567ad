"""acquisitions: drop the index on plate, which no query reads

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 16:10:00

The one search by plate is a substring match (fleet.domain.vehicles: LIKE '%…%'), which a B-tree cannot
serve, and nothing looks a plate up by equality or in order. The index only cost every insert: one
B-tree more for each of an upload's rows (about 0.3 s of a 100k-row COPY on PostgreSQL).
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_acquisitions_plate", "acquisitions")


def downgrade() -> None:
    op.create_index("ix_acquisitions_plate", "acquisitions", ["plate"])
