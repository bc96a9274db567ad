"""emptied acquisition tallies found by a partial index, not by matching every deleted row

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:40:00

PostgreSQL's delete trigger of acquisitions (migration 0002) dropped the tallies it emptied by
matching their keys against the keys of every deleted row, an IN over the transition table. A
transition table has no statistics, and for a large DELETE the planner chose a nested loop: deleting
the 135,000 acquisitions of 300 agencies ran for more than five minutes. A tally can only be empty
right after such a decrement, so the trigger now drops every tally at zero, found through a partial
index that holds those alone (it is empty between statements): the same DELETE takes 2 s.
SQLite's row triggers match one key through the primary key and are unchanged; the index is made
there too, so that both databases have the schema the models describe.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KEYS = (
    "category, month, agency_id, power, acquisition_kind, emission_standard, catalogued, exemption_state, "
    "reported_month, report_delay"
)


def _grouped(row: str, source: str, sign: str) -> str:
    return (
        f"INSERT INTO acquisition_tallies ({KEYS}, acquisitions) "
        f"SELECT {row}.category, date_trunc('month', {row}.acquired_on)::date, {row}.agency_id, {row}.power, "
        f"{row}.acquisition_kind, coalesce({row}.emission_standard, ''), ({row}.catalogue_entry_id IS NOT NULL), "
        f"{row}.exemption_state, date_trunc('month', {row}.reported_on)::date, ({row}.reported_on - {row}.acquired_on), "
        f"{sign}count(*) FROM {source} {row} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 "
        f"ON CONFLICT ({KEYS}) DO UPDATE SET acquisitions = acquisition_tallies.acquisitions + excluded.acquisitions;"
    )


def upgrade() -> None:
    op.create_index(
        "ix_acquisition_tallies_emptied", "acquisition_tallies", ["agency_id"],
        sqlite_where=sa.text("acquisitions <= 0"), postgresql_where=sa.text("acquisitions <= 0"),
    )  # fmt: skip
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
CREATE OR REPLACE FUNCTION acquisition_tallies_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_grouped('n', 'new_rows', '')}
    ELSE
        {_grouped('o', 'old_rows', '-')}
        DELETE FROM acquisition_tallies WHERE acquisitions <= 0;
    END IF;
    RETURN NULL;
END
$$"""
    )


def downgrade() -> None:
    # The function stays: it counts as the one of migration 0002 did, and without the index its
    # DELETE reads the tallies once per statement.
    op.drop_index("ix_acquisition_tallies_emptied", "acquisition_tallies")
