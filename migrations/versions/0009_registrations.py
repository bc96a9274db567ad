"""the registration record: extracts, registrations, reviewers' owner decisions and finding reviews

Revision ID: 0009_registrations
Revises: 0010_plans
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_registrations"
down_revision = "0010_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registration_extracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("loaded_by_id", sa.Integer(), nullable=True),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.Column("first", sa.Date(), nullable=False),
        sa.Column("last", sa.Date(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("loaded", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["sha256"], ["upload_files.sha256"], name=op.f("fk_registration_extracts_sha256_upload_files")),
        sa.ForeignKeyConstraint(["loaded_by_id"], ["users.id"], name=op.f("fk_registration_extracts_loaded_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_extracts")),
    )
    op.create_index(op.f("ix_registration_extracts_sha256"), "registration_extracts", ["sha256"])
    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("extract_id", sa.Integer(), nullable=False),
        sa.Column("source_sheet", sa.String(length=100), nullable=True),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=True),
        sa.Column("plate_kind", sa.String(length=2), nullable=True),
        sa.Column("vehicle_type", sa.String(length=20), nullable=True),
        sa.Column("usage", sa.String(length=1), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("owner_code", sa.String(length=18), nullable=True),
        sa.Column("owner_key", sa.String(length=200), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("fuel", sa.String(length=1), nullable=False),
        sa.Column("power", sa.String(length=20), nullable=False),
        sa.Column("emission_standard", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=1), nullable=True),
        sa.ForeignKeyConstraint(["extract_id"], ["registration_extracts.id"], name=op.f("fk_registrations_extract_id_registration_extracts")),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_registrations_agency_id_agencies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
        sa.UniqueConstraint("vin", "registered_on", name=op.f("uq_registrations_vin_registered_on")),
    )
    op.create_index(op.f("ix_registrations_extract_id"), "registrations", ["extract_id"])
    op.create_index(op.f("ix_registrations_plate"), "registrations", ["plate"])
    op.create_index(op.f("ix_registrations_owner_key"), "registrations", ["owner_key"])
    op.create_index("ix_registrations_agency_registered", "registrations", ["agency_id", "registered_on"])
    op.create_table(
        "registration_owners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("not_ours", sa.Boolean(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_registration_owners_agency_id_agencies")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], name=op.f("fk_registration_owners_decided_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_owners")),
        sa.UniqueConstraint("owner_key", name=op.f("uq_registration_owners_owner_key")),
    )
    op.create_table(
        "registration_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("status IN ('explained', 'correction_requested')", name=op.f("ck_registration_reviews_status")),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["users.id"], name=op.f("fk_registration_reviews_reviewed_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_reviews")),
        sa.UniqueConstraint("code", "vin", name=op.f("uq_registration_reviews_code_vin")),
    )


def downgrade() -> None:
    op.drop_table("registration_reviews")
    op.drop_table("registration_owners")
    op.drop_index("ix_registrations_agency_registered", "registrations")
    op.drop_table("registrations")
    op.drop_table("registration_extracts")
