"""Recording acquisitions: insert new vehicles, update changed ones keeping history, in bulk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base.models import ACQUISITION_FIELDS, Acquisition, AcquisitionTally, AcquisitionVersion, utcnow

# SQLite allows 32766 bound parameters; stay well below for IN lists.
_CHUNK = 5000


class VinOwnedElsewhere(ValueError):
    """A VIN already recorded for another agency; validation reports it before commit ever runs."""


@dataclass(frozen=True)
class RecordCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def _comparable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, float):
        return Decimal(str(value)).normalize()
    return value


def _as_json(value: Any) -> Any:
    if isinstance(value, (dt.date, Decimal)):
        return str(value)
    return value


def vin_conditions(session: Session, vins: Sequence[str]) -> list[sa.ColumnElement[bool]]:
    """Conditions that together select the acquisitions holding any of vins, one query each.

    PostgreSQL takes the VINs as one array parameter; elsewhere they go in IN lists of _CHUNK, under
    SQLite's limit of bound parameters. (On PostgreSQL, 100k VINs in IN lists took 1.2 s to select,
    most of it building and parsing 100k placeholders.)
    """
    if session.get_bind().dialect.name == "postgresql":
        return [Acquisition.vin == sa.any_(sa.bindparam("vins", list(vins), type_=sa.ARRAY(sa.String)))]
    return [Acquisition.vin.in_(vins[start : start + _CHUNK]) for start in range(0, len(vins), _CHUNK)]


# What a record holds beyond ACQUISITION_FIELDS: the agency, and where in the upload it was found.
RECORD_FIELDS = (*ACQUISITION_FIELDS, "agency_id", "source_sheet", "source_row")

Columns = Mapping[str, Sequence[Any]]  # RECORD_FIELDS -> one value per acquisition, all of one length


def as_columns(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Records (one mapping per acquisition; an optional field may be left out) as Columns."""
    records = list(records)
    return {field: [record.get(field) for record in records] for field in RECORD_FIELDS}


def record_acquisitions(
    session: Session,
    records: Iterable[Mapping[str, Any]],
    *,
    batch_id: int | None,
    reported_on: dt.date,
) -> RecordCounts:
    """record_acquisition_columns for records given one mapping per acquisition."""
    return record_acquisition_columns(session, as_columns(records), batch_id=batch_id, reported_on=reported_on)


def record_acquisition_columns(
    session: Session,
    columns: Columns,
    *,
    batch_id: int | None,
    reported_on: dt.date,
) -> RecordCounts:
    """Store validated acquisitions, given column by column (an upload of 100k rows arrives as
    columns, and a dict per row cost more than the insert's own conversions). New VINs are inserted;
    a VIN of the same agency with changed fields is updated and its old version kept; identical ones
    are left alone. Runs inside the caller's transaction."""
    vins = list(columns["vin"])
    existing: dict[str, dict[str, Any]] = {}
    selected = [Acquisition.id, Acquisition.agency_id, Acquisition.version, Acquisition.batch_id] + [
        getattr(Acquisition, f) for f in ACQUISITION_FIELDS
    ]
    for condition in vin_conditions(session, vins):
        for row in session.execute(sa.select(*selected).where(condition)).mappings():
            existing[row["vin"]] = dict(row)

    now = utcnow()
    new: list[int] = []  # positions of new VINs
    updates: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    unchanged = 0
    for position, vin in enumerate(vins):
        current = existing.get(vin)
        if current is None:
            new.append(position)
            continue
        record = {field: columns[field][position] for field in RECORD_FIELDS}
        if current["agency_id"] != record["agency_id"]:
            raise VinOwnedElsewhere(vin)
        fields = {f: record[f] for f in ACQUISITION_FIELDS}
        if all(_comparable(current[f]) == _comparable(fields[f]) for f in ACQUISITION_FIELDS):
            unchanged += 1
            continue
        history.append(
            {
                "acquisition_id": current["id"],
                "version": current["version"],
                "batch_id": current["batch_id"],
                "data": {f: _as_json(current[f]) for f in ACQUISITION_FIELDS},
                "replaced_at": now,
                "replaced_by_batch_id": batch_id,
            }
        )
        source = {
            "agency_id": record["agency_id"],
            "batch_id": batch_id,
            "source_sheet": record["source_sheet"],
            "source_row": record["source_row"],
        }
        updates.append({**fields, **source, "id": current["id"], "version": current["version"] + 1, "updated_at": now})

    if new:
        given = {"batch_id": batch_id, "reported_on": reported_on, "version": 1, "created_at": now, "updated_at": now}
        if len(new) == len(vins):
            inserted = {field: columns[field] for field in RECORD_FIELDS}
        else:
            inserted = {field: [columns[field][position] for position in new] for field in RECORD_FIELDS}
        inserted.update({name: [value] * len(new) for name, value in given.items()})
        _insert_new(session, inserted)
    if history:
        session.execute(AcquisitionVersion.__table__.insert(), history)
    if updates:
        session.execute(sa.update(Acquisition), updates)
    return RecordCounts(inserted=len(new), updated=len(updates), unchanged=unchanged)


def _insert_new(session: Session, columns: dict[str, list[Any]]) -> None:
    """Insert new acquisitions given column by column (every column without a server default)."""
    connection = session.connection()
    dialect = connection.dialect
    table = Acquisition.__table__
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        # COPY takes a 100k-row upload in a fraction of the time of INSERT batches, in the same transaction.
        from psycopg import sql

        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in zip(*columns.values()):
                copy.write_row(row)
        return
    # The driver's executemany with the parameters converted column by column: SQLAlchemy's own
    # executemany converts them row by row, which costs as much as the insert itself.
    compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
    converted_columns: dict[str, list[Any]] = {}
    for name, values in columns.items():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            # Dates and times repeat (the batch's timestamps, a few hundred purchase dates): convert each once.
            converted = {value: process(value) for value in set(values)}
            values = [converted[value] for value in values]
        converted_columns[name] = values
    if compiled.positional:
        parameters: list[Any] = list(zip(*(converted_columns[key] for key in compiled.positiontup)))
    else:
        parameters = [dict(zip(converted_columns, values)) for values in zip(*converted_columns.values())]
    if dialect.name != "sqlite":
        connection.exec_driver_sql(compiled.string, parameters)
        return
    # SQLite has row triggers only, and the tally UPSERT of each row added 12 µs to every row of a
    # 100k-row insert. As PostgreSQL's ALTER TABLE … DISABLE TRIGGER would, the trigger is dropped
    # for the insert and created again from its own text, all in this transaction (SQLite's DDL is
    # transactional, and it has one writer), and the new rows are counted in one grouped UPSERT.
    driver = connection.connection.driver_connection
    if not driver.in_transaction:
        # pysqlite opens its transaction at the first INSERT; a DROP before it would be autocommitted.
        driver.execute("BEGIN")
    trigger = connection.scalar(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"), {"name": _TALLY_TRIGGER}
    )
    before = connection.scalar(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)))
    connection.exec_driver_sql(f"DROP TRIGGER {_TALLY_TRIGGER}")
    connection.exec_driver_sql(compiled.string, parameters)
    connection.execute(_tally_sqlite(before))
    connection.exec_driver_sql(trigger)


# SQLite's insert trigger of acquisition_tallies (migration 0002).
_TALLY_TRIGGER = "acquisition_tallies_insert"


def _tally_sqlite(after_id: int) -> sa.Insert:
    """Add the acquisitions with ids above after_id to their tallies, as SQLite's insert trigger would.
    The view acquisition_tally_keys (migration 0002) gives each acquisition its tally key."""
    from sqlalchemy.dialects.sqlite import insert

    t = AcquisitionTally
    keys = [column.name for column in t.__table__.primary_key.columns]
    view = sa.table("acquisition_tally_keys", sa.column("id"), *(sa.column(key) for key in keys))
    key_columns = [view.c[key] for key in keys]
    grouped = sa.select(*key_columns, sa.func.count()).where(view.c.id > after_id).group_by(*key_columns)
    statement = insert(t).from_select([*keys, "acquisitions"], grouped)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={"acquisitions": t.acquisitions + statement.excluded.acquisitions}
    )
