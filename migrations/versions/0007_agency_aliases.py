"""agencies: aliases (简称, 曾用名) by which uploads and extracts may name an agency

Revision ID: 0007_agency_aliases
Revises: 0006
Create Date: 2026-12-05 10:00:00

A JSON list beside contact_emails: the registry keeps a handful per agency, always read together with
the agency, and that an alias means one agency only is checked where aliases are entered (it depends on
every name and alias, normalised, with the city prefix added or dropped: no constraint can say it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_agency_aliases"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agencies", sa.Column("aliases", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("agencies", "aliases")
