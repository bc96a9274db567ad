"""Validation step, value checks: the pandera schema of a normalised upload; each check's name is its error code.

Checks are vectorised: identifier and vocabulary logic comes from fleet.base.identifiers and fleet.base.vocab and
is applied once per distinct value (pd.factorize), never once per row; VINs, nearly all distinct, are
checked with a regular expression and numpy instead. Each check passes the values it
is not about (blank, or already wrong for another check), so a bad value gives its own error only.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from fleet.base.identifiers import (
    VIN_PATTERN,
    PlateKind,
    clean_code,
    credit_code_ok,
    plate_is_local,
    plate_kind,
    plate_matches_power,
    vin_check_digits_ok,
)
from fleet.base.vocab import (
    ACQUISITION_KINDS,
    AMBIGUOUS_HYBRID,
    CATEGORIES,
    COUNTIES,
    NEV_POWER_TYPES,
    POWER_TYPES,
    fold,
)
from imports.headers import KEYS, REQUIRED_KEYS

# An acquisition date is real, not in the future and not before 2015 (no NEV rule reaches further back).
EARLIEST_ACQUISITION = dt.date(2015, 1, 1)
# An exemption reason has at least this many characters: a word or two is no reason.
MIN_EXEMPTION_REASON = 5

# Columns failures() adds from the policy before the schema runs: whether the row's category falls
# under a 100% NEV rule, and whether its category and power type fall under an emission-standard rule.
FULL_NEV_RULE = "_full_nev_rule"
EMISSION_RULE = "_emission_rule"

# Cross-column checks report on one column: the one the user has to change.
DATAFRAME_CHECK_COLUMNS = {
    "plate_power_mismatch": "plate",
    "required": "emission_standard",
    "exemption_reason_required": "exemption_reason",
}


@dataclass(frozen=True)
class ImportPolicy:
    """What the active rule pack asks of an upload: the categories under a 100% NEV rule (a non-NEV
    needs a reason), and for emission-standard rules the categories and power types whose vehicles
    must state their standard (power_types None: any)."""

    full_nev_categories: frozenset[str]
    emission_scopes: tuple[tuple[frozenset[str], frozenset[str] | None], ...] = ()


def _mapped(series: pd.Series, function: Callable[[Any], Any]) -> pd.Series:
    """function applied once per distinct value; blanks (None, NaN) stay NaN."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    answers = np.empty(len(uniques) + 1, dtype=object)
    answers[:-1] = [function(value) for value in uniques]
    answers[-1] = np.nan
    return pd.Series(answers[codes], index=series.index, dtype=object)


def holds(series: pd.Series, test: Callable[[Any], bool]) -> pd.Series:
    """True where test holds for the value; False for blanks."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    answers = np.zeros(len(uniques) + 1, dtype=bool)
    answers[:-1] = [bool(test(value)) for value in uniques]
    return pd.Series(answers[codes], index=series.index)


def _blank_text(value: Any) -> bool:
    return value.__class__ is str and not value.strip()


def blank(series: pd.Series) -> pd.Series:
    return series.isna() | holds(series, _blank_text)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _well_formed_vin(series: pd.Series) -> pd.Series:
    return series.astype(str).str.fullmatch(VIN_PATTERN.pattern).fillna(False).astype(bool)


def _wrong_check_digit(series: pd.Series) -> pd.Series:
    """True where a well-formed VIN has a check digit that does not match (ISO 3779)."""
    well_formed = _well_formed_vin(series).to_numpy()
    wrong = np.zeros(len(series), dtype=bool)
    wrong[well_formed] = ~vin_check_digits_ok(series.to_numpy()[well_formed].astype(str).tolist())
    return pd.Series(wrong, index=series.index)


# Several checks ask the same of each plate; remembering the answers saves the repeated work.
@lru_cache(maxsize=1 << 18)
def _plate_kind(value: Any) -> PlateKind | None:
    return plate_kind(_text(value))


def _is_date(value: Any) -> bool:
    return isinstance(value, dt.date)


def _as_date(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _is_price(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def ambiguous_power(series: pd.Series) -> pd.Series:
    """True where the power type is a hybrid written without saying whether it plugs in."""
    return holds(series, lambda v: isinstance(v, str) and fold(v) in AMBIGUOUS_HYBRID)


def non_nev(power: pd.Series) -> pd.Series:
    """True where the power type is a known one that is not a new-energy type."""
    return power.isin(POWER_TYPES.values) & ~power.isin(list(NEV_POWER_TYPES))


class VocabularySchema(pa.DataFrameModel):
    """The checks of the vocabulary columns that acquisitions and purchase plans share; each schema
    declares the columns themselves.

    Each check is named as its code: pandera (0.35) keeps an inherited check's `name=` in a record the
    inheriting models share and hands it to the first model built only, the others get the method's
    name."""

    class Config:
        strict = False

    @pa.check("category", name="unknown_category")
    def unknown_category(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | values.isin(CATEGORIES.values)

    @pa.check("power", name="unknown_power_type")
    def unknown_power_type(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | values.isin(POWER_TYPES.values) | ambiguous_power(values)

    @pa.check("power", name="power_ambiguous")
    def power_ambiguous(cls, values: Series[object]) -> Series[bool]:
        # What normalisation could not settle from the plate (a green F-type plate is a plug-in hybrid); a
        # plan has no plate, so it says which hybrid it means.
        return ~ambiguous_power(values)

    @pa.check("acquisition", name="unknown_acquisition_type")
    def unknown_acquisition_type(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | values.isin(ACQUISITION_KINDS.values)

    @pa.check("county", name="unknown_county")
    def unknown_county(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | values.isin(COUNTIES.values)


class AcquisitionSchema(VocabularySchema):
    """One row per acquired vehicle, columns keyed as in headers.yaml, values as normalise left them."""

    # Normalisation leaves every text, code and vocabulary column as text (or empty): pandera holds it.
    agency: Series[str] = pa.Field(nullable=True)
    credit_code: Series[str] = pa.Field(nullable=True)
    vin: Series[str] = pa.Field(nullable=True)
    plate: Series[str] = pa.Field(nullable=True)
    category: Series[str] = pa.Field(nullable=True)
    power: Series[str] = pa.Field(nullable=True)
    acquisition: Series[str] = pa.Field(nullable=True)
    brand_model: Series[str] = pa.Field(nullable=True)
    emission_standard: Series[str] = pa.Field(nullable=True)
    county: Series[str] = pa.Field(nullable=True)
    exemption_reason: Series[str] = pa.Field(nullable=True)
    remark: Series[str] = pa.Field(nullable=True)
    # A date or a price that could not be read is kept as written, so that its own check (date_invalid,
    # price_invalid) names it with the value the user wrote: these columns hold dates or numbers and text.
    acquired_on: Series[object] = pa.Field(nullable=True)
    price: Series[object] = pa.Field(nullable=True)

    class Config:
        strict = False

    @pa.check(*REQUIRED_KEYS, name="required", ignore_na=False)
    def _required(cls, values: Series[object]) -> Series[bool]:
        return ~blank(values)

    @pa.check("credit_code", name="credit_code_invalid")
    def _credit_code(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | holds(values, lambda v: credit_code_ok(clean_code(_text(v))))

    @pa.check("vin", name="vin_format")
    def _vin_format(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | _well_formed_vin(values)

    @pa.check("vin", name="vin_check_digit")
    def _vin_check_digit(cls, values: Series[object]) -> Series[bool]:
        return ~_wrong_check_digit(values)

    @pa.check("vin", name="duplicate_vin")
    def _duplicate_vin(cls, values: Series[object]) -> Series[bool]:
        return ~(values.duplicated(keep="first") & _well_formed_vin(values))

    @pa.check("plate", name="plate_format")
    def _plate_format(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | holds(values, lambda v: _plate_kind(v) is not None)

    @pa.check("plate", name="plate_not_local")
    def _plate_not_local(cls, values: Series[object]) -> Series[bool]:
        return ~holds(values, lambda v: _plate_kind(v) is not None and not plate_is_local(_text(v)))

    @pa.check("acquired_on", name="date_invalid")
    def _date(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | holds(values, _is_date)

    @pa.check("acquired_on", name="date_out_of_range")
    def _date_range(cls, values: Series[object]) -> Series[bool]:
        today = dt.date.today()
        return ~holds(values, lambda v: _is_date(v) and not EARLIEST_ACQUISITION <= _as_date(v) <= today)

    @pa.check("price", name="price_invalid")
    def _price(cls, values: Series[object]) -> Series[bool]:
        return blank(values) | holds(values, _is_price)

    @pa.dataframe_check(name="plate_power_mismatch")
    def _plate_power(cls, frame: pd.DataFrame) -> Series[bool]:
        kinds = _mapped(frame["plate"], _plate_kind)
        power = frame["power"]
        known = power.isin(POWER_TYPES.values)
        mismatch = pd.Series(False, index=frame.index)
        for kind in PlateKind:
            allowed = [p for p in POWER_TYPES.values if plate_matches_power(kind, p)]
            mismatch |= kinds.eq(kind) & known & ~power.isin(allowed)
        return ~mismatch

    @pa.dataframe_check(name="required")
    def _emission_standard(cls, frame: pd.DataFrame) -> Series[bool]:
        return ~(frame[EMISSION_RULE] & blank(frame["emission_standard"]))

    @pa.dataframe_check(name="exemption_reason_required")
    def _exemption_reason(cls, frame: pd.DataFrame) -> Series[bool]:
        reason_given = holds(frame["exemption_reason"], lambda v: len(_text(v).strip()) >= MIN_EXEMPTION_REASON)
        return ~(frame[FULL_NEV_RULE] & non_nev(frame["power"]) & ~reason_given)


def failures(frame: pd.DataFrame, policy: ImportPolicy) -> pd.DataFrame:
    """Every failed check as rows (index, column, code): index is the frame's, column a key of headers.yaml."""
    checked = frame[list(KEYS)].astype(object)
    checked[FULL_NEV_RULE] = frame["category"].isin(list(policy.full_nev_categories))
    checked[EMISSION_RULE] = pd.Series(False, index=frame.index)
    for categories, power_types in policy.emission_scopes:
        # Only a known power type can put a vehicle in scope: an unknown one has its own error.
        powers = POWER_TYPES.values if power_types is None else list(power_types)
        checked[EMISSION_RULE] |= frame["category"].isin(list(categories)) & frame["power"].isin(powers)
    try:
        AcquisitionSchema.validate(checked, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return pd.DataFrame({"index": pd.Series(dtype="int64"), "column": [], "code": []})
    broken = cases["index"].isna() | cases["check"].astype(str).str.startswith("dtype(")
    if broken.any():
        # A check that raised instead of returning booleans, or a value normalisation should have
        # turned into text, is a bug here, not a problem in the file.
        raise RuntimeError(f"import schema check failed to run: {cases[broken].to_dict('records')}")
    whole_row = cases["schema_context"].eq("DataFrameSchema")
    columns = cases["column"].where(~whole_row, cases["check"].map(DATAFRAME_CHECK_COLUMNS))
    result = pd.DataFrame({"index": cases["index"].astype("int64"), "column": columns, "code": cases["check"]})
    return result.drop_duplicates().reset_index(drop=True)
