"""report jobs: the compliance report with its whole vehicle detail, built in the background

Revision ID: 0012_report_jobs
Revises: 0009_registrations
Create Date: 2026-12-06 06:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_report_jobs"
down_revision = "0009_registrations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("county", sa.String(40), nullable=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("locale", sa.String(5), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("vehicle_rows", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_report_jobs_status")),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_report_jobs_requested_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_report_jobs_agency_id_agencies"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_jobs")),
    )
    op.create_index("ix_report_jobs_agency_id", "report_jobs", ["agency_id"])


def downgrade() -> None:
    op.drop_index("ix_report_jobs_agency_id", table_name="report_jobs")
    op.drop_table("report_jobs")
