"""acquisition tallies kept by triggers; exemption states on acquisitions; the engine's covering indexes dropped

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:50:00

The compliance engine and the dashboards counted a year's acquisitions from two seven-column
covering indexes: every query read a million index entries, and every import paid for both indexes.
They now sum `acquisition_tallies`, which triggers keep in the writing transaction: row triggers on
SQLite (an UPSERT per row); on PostgreSQL statement triggers with transition tables for inserts and
deletes (one grouped UPSERT per statement, COPY included) and a row trigger for updates. A vehicle's
exemption state is kept on `acquisitions` by triggers on `exemption_requests` and counted in the
tallies too, so no count joins the requests. A later migration that rebuilds `acquisitions`
(SQLite's batch mode copies the table) must create the triggers again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The key, category first: a rule reads its categories' tallies as one range each.
KEYS = (
    "category", "month", "agency_id", "power", "acquisition_kind", "emission_standard", "catalogued",
    "exemption_state", "reported_month", "report_delay",
)  # fmt: skip
KEY_LIST = ", ".join(KEYS)
# The columns of acquisitions whose change moves a vehicle from one tally to another.
COUNTED = (
    "agency_id", "acquired_on", "category", "power", "acquisition_kind", "emission_standard", "catalogue_entry_id",
    "exemption_state", "reported_on",
)  # fmt: skip
# An acquisition's exemption state from its requests: 2 when one was approved, 1 when one is pending,
# 0 when it has none or all were rejected.
STATE_OF = (
    "coalesce((SELECT max(CASE r.status WHEN 'approved' THEN 2 WHEN 'pending' THEN 1 ELSE 0 END) "
    "FROM exemption_requests r WHERE r.acquisition_id = {id}), 0)"
)


def _keys(row: str, dialect: str) -> list[str]:
    """The tally key of an acquisition row (NEW, OLD, or a table alias), in KEYS order."""
    if dialect == "sqlite":
        month = f"date({row}.acquired_on, 'start of month')"
        reported_month = f"date({row}.reported_on, 'start of month')"
        delay = f"CAST(julianday({row}.reported_on) - julianday({row}.acquired_on) AS INTEGER)"
    else:
        month = f"date_trunc('month', {row}.acquired_on)::date"
        reported_month = f"date_trunc('month', {row}.reported_on)::date"
        delay = f"({row}.reported_on - {row}.acquired_on)"
    return [
        f"{row}.category", month, f"{row}.agency_id", f"{row}.power", f"{row}.acquisition_kind",
        f"coalesce({row}.emission_standard, '')", f"({row}.catalogue_entry_id IS NOT NULL)", f"{row}.exemption_state",
        reported_month, delay,
    ]  # fmt: skip


def _grouped(row: str, dialect: str, source: str, sign: str) -> str:
    keys = _keys(row, dialect)
    positions = ", ".join(str(i) for i in range(1, len(keys) + 1))
    return f"SELECT {', '.join(keys)}, {sign}count(*) FROM {source} {row} GROUP BY {positions}"


UPSERT = (
    f"INSERT INTO acquisition_tallies ({KEY_LIST}, acquisitions) {{rows}} "
    f"ON CONFLICT ({KEY_LIST}) DO UPDATE SET acquisitions = acquisition_tallies.acquisitions + excluded.acquisitions"
)


def _add(row: str, n: str, dialect: str) -> str:
    """Add n to the tally of one row (NEW or OLD of a row trigger)."""
    # "WHERE true" tells SQLite's parser that ON CONFLICT belongs to the INSERT, not to a join.
    return UPSERT.format(rows=f"SELECT {', '.join(_keys(row, dialect))}, {n} WHERE true") + ";"


def _drop_emptied(row: str, dialect: str) -> str:
    match = " AND ".join(f"{key} = {value}" for key, value in zip(KEYS, _keys(row, dialect), strict=True))
    return f"DELETE FROM acquisition_tallies WHERE {match} AND acquisitions <= 0;"


def _moved(dialect: str) -> tuple[str, str]:
    """A row trigger's condition and statements for an UPDATE that moves a vehicle between tallies."""
    distinct = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    changed = " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in COUNTED)
    return changed, f"{_add('OLD', '-1', dialect)} {_drop_emptied('OLD', dialect)} {_add('NEW', '1', dialect)}"


def _sqlite_triggers() -> list[str]:
    changed, move = _moved("sqlite")
    return [
        f"CREATE TRIGGER acquisition_tallies_insert AFTER INSERT ON acquisitions BEGIN {_add('NEW', '1', 'sqlite')} END",
        f"CREATE TRIGGER acquisition_tallies_delete AFTER DELETE ON acquisitions "
        f"BEGIN {_add('OLD', '-1', 'sqlite')} {_drop_emptied('OLD', 'sqlite')} END",
        f"CREATE TRIGGER acquisition_tallies_update AFTER UPDATE ON acquisitions WHEN {changed} BEGIN {move} END",
    ]


def _postgresql_triggers() -> list[str]:
    """Inserts and deletes by statement, through transition tables: a COPY of 100k rows is one grouped
    UPSERT. Updates by row, behind a WHEN that PostgreSQL tests without calling the function: an
    import's UPDATEs come one row per statement, and most change no tally (a price, a plate)."""
    old_keys = ", ".join(_keys("o", "postgresql"))
    # Keys in order, so that two imports touching the same tallies lock them in the same order.
    ordered = f"ORDER BY {', '.join(str(i) for i in range(1, len(KEYS) + 1))}"
    changed, move = _moved("postgresql")
    return [
        f"""
CREATE OR REPLACE FUNCTION acquisition_tallies_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {UPSERT.format(rows=_grouped('n', 'postgresql', 'new_rows', '') + ' ' + ordered)};
    ELSE
        {UPSERT.format(rows=_grouped('o', 'postgresql', 'old_rows', '-') + ' ' + ordered)};
        DELETE FROM acquisition_tallies t WHERE t.acquisitions <= 0
            AND ({', '.join('t.' + k for k in KEYS)}) IN (SELECT {old_keys} FROM old_rows o);
    END IF;
    RETURN NULL;
END
$$""",
        f"""
CREATE OR REPLACE FUNCTION acquisition_tallies_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {move}
    RETURN NULL;
END
$$""",
        "CREATE TRIGGER acquisition_tallies_insert AFTER INSERT ON acquisitions REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION acquisition_tallies_count()",
        "CREATE TRIGGER acquisition_tallies_delete AFTER DELETE ON acquisitions REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION acquisition_tallies_count()",
        f"CREATE TRIGGER acquisition_tallies_update AFTER UPDATE ON acquisitions FOR EACH ROW WHEN ({changed}) "
        "EXECUTE FUNCTION acquisition_tallies_move()",
    ]


def _exemption_state_triggers(dialect: str) -> list[str]:
    """Keep acquisitions.exemption_state as requests are made, decided and deleted; the acquisitions'
    update trigger then moves the vehicle to the tally of its new state."""

    def refresh(row: str) -> str:
        state = STATE_OF.format(id=f"{row}.acquisition_id")
        return f"UPDATE acquisitions SET exemption_state = {state} WHERE id = {row}.acquisition_id AND exemption_state <> {state};"

    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER exemption_state_insert AFTER INSERT ON exemption_requests BEGIN {refresh('NEW')} END",
            f"CREATE TRIGGER exemption_state_update AFTER UPDATE OF status, acquisition_id ON exemption_requests "
            f"BEGIN {refresh('OLD')} {refresh('NEW')} END",
            f"CREATE TRIGGER exemption_state_delete AFTER DELETE ON exemption_requests BEGIN {refresh('OLD')} END",
        ]
    return [
        f"""
CREATE OR REPLACE FUNCTION acquisition_exemption_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {refresh('OLD')}
    END IF;
    IF TG_OP <> 'DELETE' THEN
        {refresh('NEW')}
    END IF;
    RETURN NULL;
END
$$""",
        "CREATE TRIGGER exemption_state_insert AFTER INSERT ON exemption_requests FOR EACH ROW "
        "EXECUTE FUNCTION acquisition_exemption_state()",
        "CREATE TRIGGER exemption_state_update AFTER UPDATE OF status, acquisition_id ON exemption_requests FOR EACH ROW "
        "EXECUTE FUNCTION acquisition_exemption_state()",
        "CREATE TRIGGER exemption_state_delete AFTER DELETE ON exemption_requests FOR EACH ROW "
        "EXECUTE FUNCTION acquisition_exemption_state()",
    ]


def upgrade() -> None:
    op.create_table(
        "acquisition_tallies",
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("power", sa.String(length=20), nullable=False),
        sa.Column("acquisition_kind", sa.String(length=4), nullable=False),
        sa.Column("emission_standard", sa.String(length=20), nullable=False),
        sa.Column("catalogued", sa.Boolean(), nullable=False),
        sa.Column("exemption_state", sa.SmallInteger(), nullable=False),
        sa.Column("reported_month", sa.Date(), nullable=False),
        sa.Column("report_delay", sa.Integer(), nullable=False),
        sa.Column("acquisitions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_acquisition_tallies_agency_id_agencies")),
        sa.PrimaryKeyConstraint(*KEYS, name=op.f("pk_acquisition_tallies")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_acquisition_tallies_agency", "acquisition_tallies", ["agency_id", "month", "power", "acquisitions"])
    op.create_index(
        "ix_acquisition_tallies_category_power", "acquisition_tallies", ["category", "power", "month", "acquisitions"]
    )
    op.create_index(
        "ix_acquisition_tallies_reported", "acquisition_tallies", ["agency_id", "reported_month", "report_delay", "acquisitions"]
    )
    op.drop_index("ix_acquisitions_compliance", table_name="acquisitions")
    op.drop_index("ix_acquisitions_agency_compliance", table_name="acquisitions")
    op.add_column("acquisitions", sa.Column("exemption_state", sa.SmallInteger(), nullable=False, server_default="0"))

    dialect = op.get_bind().dialect.name
    op.execute(
        f"UPDATE acquisitions SET exemption_state = {STATE_OF.format(id='acquisitions.id')} "
        "WHERE id IN (SELECT acquisition_id FROM exemption_requests)"
    )
    # Each acquisition with its tally key: what the backfill counts, and what fleet.domain.acquisitions counts
    # after a bulk insert on SQLite, so that the key is spelled here only.
    keys = ", ".join(f"{value} AS {key}" for key, value in zip(KEYS, _keys("a", dialect), strict=True))
    op.execute(f"CREATE VIEW acquisition_tally_keys AS SELECT a.id, {keys} FROM acquisitions a")
    op.execute(
        f"INSERT INTO acquisition_tallies ({KEY_LIST}, acquisitions) "
        f"SELECT {KEY_LIST}, count(*) FROM acquisition_tally_keys GROUP BY {KEY_LIST}"
    )
    for statement in _sqlite_triggers() if dialect == "sqlite" else _postgresql_triggers():
        op.execute(statement)
    for statement in _exemption_state_triggers(dialect):
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS acquisition_tallies_{event}" + ("" if sqlite else " ON acquisitions"))
        op.execute(f"DROP TRIGGER IF EXISTS exemption_state_{event}" + ("" if sqlite else " ON exemption_requests"))
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS acquisition_tallies_count()")
        op.execute("DROP FUNCTION IF EXISTS acquisition_tallies_move()")
        op.execute("DROP FUNCTION IF EXISTS acquisition_exemption_state()")
    op.execute("DROP VIEW IF EXISTS acquisition_tally_keys")
    with op.batch_alter_table("acquisitions") as batch_op:
        batch_op.drop_column("exemption_state")
    op.create_index(
        "ix_acquisitions_agency_compliance",
        "acquisitions",
        ["agency_id", "category", "acquired_on", "power", "acquisition_kind", "emission_standard", "catalogue_entry_id"],
    )
    op.create_index(
        "ix_acquisitions_compliance",
        "acquisitions",
        ["category", "power", "acquired_on", "agency_id", "acquisition_kind", "emission_standard", "catalogue_entry_id"],
    )
    op.drop_table("acquisition_tallies")
