"""agencies.tally_version: raised by triggers whenever one of the agency's acquisition tallies changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:30:00

The city dashboard keeps each agency's counts of a year between requests (fleet.read.agency_figures) and
counts again only the agencies whose tallies changed since. Every write that can change a figure
reaches `acquisition_tallies` — imports, edits, deletions, exemption decisions, catalogue matches —
so triggers there raise the agency's version in the writer's own transaction: row triggers on SQLite,
statement triggers with transition tables on PostgreSQL (one UPDATE per statement, however many
tallies an import touched).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

EVENTS = {"insert": "NEW", "update": "NEW", "delete": "OLD"}


def upgrade() -> None:
    op.add_column("agencies", sa.Column("tally_version", sa.Integer(), server_default="0", nullable=False))
    if op.get_bind().dialect.name == "sqlite":
        for event, row in EVENTS.items():
            op.execute(
                f"CREATE TRIGGER agency_tally_version_{event} AFTER {event.upper()} ON acquisition_tallies "
                f"BEGIN UPDATE agencies SET tally_version = tally_version + 1 WHERE id = {row}.agency_id; END"
            )
        return
    op.execute(
        """
CREATE OR REPLACE FUNCTION agency_tally_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Agencies in id order, so that two writers lock them in the same order.
    UPDATE agencies a SET tally_version = a.tally_version + 1
    FROM (SELECT DISTINCT agency_id FROM changed_rows ORDER BY agency_id) c WHERE a.id = c.agency_id;
    RETURN NULL;
END
$$"""
    )
    for event, row in EVENTS.items():
        # One event per trigger: PostgreSQL allows transition tables on single-event triggers only,
        # and an UPSERT's inserted and updated tallies then reach the insert and the update trigger.
        op.execute(
            f"CREATE TRIGGER agency_tally_version_{event} AFTER {event.upper()} ON acquisition_tallies "
            f"REFERENCING {row} TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION agency_tally_version()"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for event in EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS agency_tally_version_{event}" + ("" if sqlite else " ON acquisition_tallies"))
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS agency_tally_version()")
    with op.batch_alter_table("agencies") as batch_op:
        batch_op.drop_column("tally_version")
