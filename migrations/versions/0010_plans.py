"""purchase plans: plans, their lines, and the exemption requests made from a line's decision

Revision ID: 0010_plans
Revises: 0011_security
Create Date: 2026-12-05 10:00:00

A plan is a versioned whole per agency and year; the link from an exemption request to
the plan line whose decision it carries is a table of its own, so exemption_requests (and the
triggers on it) stay as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_plans"
down_revision = "0011_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "purchase_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.CheckConstraint("status IN ('current', 'replaced', 'invalid')", name=op.f("ck_purchase_plans_status")),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_purchase_plans_agency_id_agencies")),
        sa.ForeignKeyConstraint(["sha256"], ["upload_files.sha256"], name=op.f("fk_purchase_plans_sha256_upload_files")),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"], name=op.f("fk_purchase_plans_uploaded_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_plans")),
        sa.UniqueConstraint("agency_id", "year", "version", name=op.f("uq_purchase_plans_agency_id_year_version")),
    )
    op.create_index(op.f("ix_purchase_plans_agency_id"), "purchase_plans", ["agency_id"])
    op.create_index("ix_purchase_plans_year_status", "purchase_plans", ["year", "status"])
    op.create_table(
        "plan_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("source_sheet", sa.String(length=100), nullable=True),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("power", sa.String(length=20), nullable=False),
        sa.Column("acquisition_kind", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("county", sa.String(length=40), nullable=False),
        sa.Column("budget", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("exemption_reason", sa.Text(), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.Column("exemption_status", sa.String(length=10), nullable=True),
        sa.Column("exemption_requested_by_id", sa.Integer(), nullable=True),
        sa.Column("exemption_decided_by_id", sa.Integer(), nullable=True),
        sa.Column("exemption_decided_at", sa.DateTime(), nullable=True),
        sa.Column("exemption_comment", sa.Text(), nullable=True),
        sa.CheckConstraint("exemption_status IN ('pending', 'approved', 'rejected')", name=op.f("ck_plan_lines_exemption_status")),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_plan_lines_quantity")),
        sa.ForeignKeyConstraint(["plan_id"], ["purchase_plans.id"], name=op.f("fk_plan_lines_plan_id_purchase_plans"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["exemption_requested_by_id"], ["users.id"], name=op.f("fk_plan_lines_exemption_requested_by_id_users")),
        sa.ForeignKeyConstraint(["exemption_decided_by_id"], ["users.id"], name=op.f("fk_plan_lines_exemption_decided_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_lines")),
    )
    op.create_index(op.f("ix_plan_lines_plan_id"), "plan_lines", ["plan_id"])
    op.create_table(
        "planned_exemptions",
        sa.Column("exemption_request_id", sa.Integer(), nullable=False),
        sa.Column("plan_line_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["exemption_request_id"], ["exemption_requests.id"],
            name=op.f("fk_planned_exemptions_exemption_request_id_exemption_requests"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["plan_line_id"], ["plan_lines.id"], name=op.f("fk_planned_exemptions_plan_line_id_plan_lines")),
        sa.PrimaryKeyConstraint("exemption_request_id", name=op.f("pk_planned_exemptions")),
    )
    op.create_index(op.f("ix_planned_exemptions_plan_line_id"), "planned_exemptions", ["plan_line_id"])


def downgrade() -> None:
    op.drop_table("planned_exemptions")
    op.drop_table("plan_lines")
    op.drop_table("purchase_plans")
