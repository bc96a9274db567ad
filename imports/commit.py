"""Commit step: write a clean batch's acquisitions through fleet.domain.acquisitions, inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.models import ACQUISITION_FIELDS, ImportBatch, utcnow
from fleet.domain.acquisitions import RecordCounts, record_acquisition_columns
from fleet.domain.exemptions import apply_planned_exemptions, refresh_catalogue_matches
from imports.validate import Validated

# Upload keys whose stored field has another name.
_FIELD_OF_KEY = {"acquisition": "acquisition_kind"}


def _stored(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _stored_column(series: pd.Series) -> list[Any]:
    """_stored applied once per distinct value of the column."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    stored = np.empty(len(uniques) + 1, dtype=object)
    stored[:-1] = [_stored(value) for value in uniques]
    stored[-1] = None
    return stored[codes].tolist()


def acquisition_columns(validated: Validated) -> dict[str, list[Any]]:
    """The rows of a clean upload in the shape record_acquisition_columns takes."""
    frame = validated.frame.rename(columns=_FIELD_OF_KEY)
    columns = {field: _stored_column(frame[field]) for field in ACQUISITION_FIELDS}
    columns["agency_id"] = validated.agency_ids.astype("int64").tolist()
    columns["source_sheet"] = frame["_sheet"].tolist()
    columns["source_row"] = frame["_row"].astype("int64").tolist()
    return columns


def commit_batch(
    session: Session, batch: ImportBatch, validated: Validated, *, reported_on: dt.date, user_id: int | None = None
) -> RecordCounts:
    """Record every acquisition of the batch and mark it committed; the caller commits or rolls back."""
    if not validated.report.ok:
        raise ValueError(f"batch {batch.id} has errors and cannot be committed")
    counts = record_acquisition_columns(session, acquisition_columns(validated), batch_id=batch.id, reported_on=reported_on)
    # A vehicle of a configuration with no NEV (the catalogue) is exempt from the moment it arrives.
    refresh_catalogue_matches(session, batch_id=batch.id)
    # A purchase its agency's plan foresaw takes the exemption decided for it before the purchase.
    apply_planned_exemptions(session, batch_id=batch.id)
    batch.status = "committed"
    batch.inserted, batch.updated, batch.unchanged = counts.inserted, counts.updated, counts.unchanged
    batch.progress = 100
    batch.committed_at = utcnow()
    audit.record(
        session,
        "import.commit",
        user_id=user_id,
        target_type="import_batch",
        target_id=batch.id,
        detail={"inserted": counts.inserted, "updated": counts.updated, "unchanged": counts.unchanged},
    )
    return counts
