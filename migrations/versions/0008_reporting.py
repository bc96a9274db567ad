"""monthly_reports and sent_reminders: the monthly reporting cycle; import_batches.skip_locked

Revision ID: 0008_reporting
Revises: 0007_agency_aliases
Create Date: 2026-12-06 05:00:00

Only what people did about a month is stored (submitted, zero report, returned, accepted); open and
missing months are derived from the due date. skip_locked records a user's explicit choice to import
an upload's rows outside the locked (accepted) months and leave the others out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_reporting"
down_revision = "0007_agency_aliases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monthly_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("submitted_by_id", sa.Integer(), nullable=True),
        sa.Column("on_behalf", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("acquisitions", sa.Integer(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("returns", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('submitted', 'nil', 'returned', 'accepted')", name=op.f("ck_monthly_reports_status")),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_monthly_reports_agency_id_agencies")),
        sa.ForeignKeyConstraint(["submitted_by_id"], ["users.id"], name=op.f("fk_monthly_reports_submitted_by_id_users")),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["users.id"], name=op.f("fk_monthly_reports_reviewed_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monthly_reports")),
        sa.UniqueConstraint("agency_id", "month", name=op.f("uq_monthly_reports_agency_id_month")),
    )
    op.create_index("ix_monthly_reports_month_status", "monthly_reports", ["month", "status"])
    op.create_table(
        "sent_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_reminders")),
        sa.UniqueConstraint("month", "recipient", "kind", name=op.f("uq_sent_reminders_month_recipient_kind")),
    )
    with op.batch_alter_table("import_batches") as batch:
        batch.add_column(sa.Column("skip_locked", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("import_batches") as batch:
        batch.drop_column("skip_locked")
    op.drop_table("sent_reminders")
    op.drop_index("ix_monthly_reports_month_status", "monthly_reports")
    op.drop_table("monthly_reports")
