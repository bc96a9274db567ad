"""The data model: agencies, users, import batches, acquisitions and their history, exemptions, mail, audit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    # Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


ROLES = ("agency", "reviewer", "admin")
BATCH_STATUSES = ("received", "validating", "invalid", "valid", "importing", "committed", "failed")
EXEMPTION_STATUSES = ("pending", "approved", "rejected")


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    credit_code: Mapped[str | None] = mapped_column(sa.String(18))
    kind: Mapped[str] = mapped_column(sa.String(20))
    sector: Mapped[str] = mapped_column(sa.String(20))
    county: Mapped[str] = mapped_column(sa.String(40))
    contact_emails: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # Other names the agency is written by (简称, 曾用名), each meaning this agency only
    # (fleet.domain.agency_names).
    aliases: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Raised by database triggers (migration 0004) whenever one of the agency's acquisition tallies
    # changes: the dashboards count an agency again only when it moved (fleet.read.agency_figures).
    tally_version: Mapped[int] = mapped_column(server_default="0")

    users: Mapped[list[User]] = relationship(back_populates="agency")


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(10))
    agency_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agencies.id"), index=True)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    locale: Mapped[str] = mapped_column(sa.String(5), default="zh")
    api_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Raised whenever every session of the user must end (logout, a password change or reset,
    # deactivation): a session carries the generation it was opened in and is refused once it differs.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # Set when an administrator chose the password: the user picks their own at the next login.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    agency: Mapped[Agency | None] = relationship(back_populates="users")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses to log in a deactivated user
        return self.active

    __table_args__ = (sa.CheckConstraint("role IN ('agency', 'reviewer', 'admin')", name="role"),)


class UploadFile(Base):
    """The original bytes of an upload, kept as received: nothing a user sent is lost."""

    __tablename__ = "upload_files"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int]
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)


class ImportBatch(Base):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    # The agency the upload is for; None when a reviewer's or the command line's file spans several.
    agency_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agencies.id"), index=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    file_name: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.ForeignKey("upload_files.sha256"), index=True)
    status: Mapped[str] = mapped_column(sa.String(12), default="received")
    rows: Mapped[int] = mapped_column(default=0)
    valid_rows: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    warning_count: Mapped[int] = mapped_column(default=0)
    inserted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    progress: Mapped[int] = mapped_column(default=0)
    # Written by a background job while it runs: a running batch whose job has gone quiet for
    # fleet.jobs.STALLED_AFTER is failed, since its process died (its transaction with it).
    heartbeat_at: Mapped[dt.datetime | None]
    # The validation report (errors and warnings as data), kept for the preview and annotated workbook.
    report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, deferred=True)
    # The annotated workbook, made by the background job for a large file with findings (openpyxl
    # takes a minute over 100k rows); a small file's is made when it is downloaded.
    annotated_workbook: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    message: Mapped[str | None] = mapped_column(sa.Text)
    committed_at: Mapped[dt.datetime | None]
    # The user chose to import the rows outside locked (accepted) months and leave the others out.
    skip_locked: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    uploaded_by: Mapped[User | None] = relationship()
    agency: Mapped[Agency | None] = relationship()
    upload: Mapped[UploadFile] = relationship()


class Acquisition(Base):
    """One acquired vehicle as currently reported; earlier versions live in AcquisitionVersion."""

    __tablename__ = "acquisitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agencies.id"))
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_batches.id"), index=True)
    source_sheet: Mapped[str | None] = mapped_column(sa.String(100))
    source_row: Mapped[int | None]
    credit_code: Mapped[str | None] = mapped_column(sa.String(18))
    vin: Mapped[str] = mapped_column(sa.String(17), unique=True)
    plate: Mapped[str | None] = mapped_column(sa.String(16))
    category: Mapped[str] = mapped_column(sa.String(20))
    power: Mapped[str] = mapped_column(sa.String(20))
    acquisition_kind: Mapped[str] = mapped_column(sa.String(4))
    acquired_on: Mapped[dt.date]
    brand_model: Mapped[str | None] = mapped_column(sa.String(200))
    emission_standard: Mapped[str | None] = mapped_column(sa.String(20))
    county: Mapped[str] = mapped_column(sa.String(40))
    price: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 4))
    exemption_reason: Mapped[str | None] = mapped_column(sa.Text)
    remark: Mapped[str | None] = mapped_column(sa.Text)
    # First reported: the date the timeliness rule (REPORTING_DEADLINE_DAYS) measures against acquired_on.
    reported_on: Mapped[dt.date]
    version: Mapped[int] = mapped_column(default=1)
    catalogue_entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("no_nev_catalogue.id"))
    # From the exemption requests, kept by database triggers (migration 0002): 2 when one was approved,
    # 1 when one is pending, 0 when there is none or all were rejected.
    exemption_state: Mapped[int] = mapped_column(sa.SmallInteger, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    agency: Mapped[Agency] = relationship()
    batch: Mapped[ImportBatch | None] = relationship()
    versions: Mapped[list[AcquisitionVersion]] = relationship(
        back_populates="acquisition", order_by="AcquisitionVersion.version"
    )
    exemption_requests: Mapped[list[ExemptionRequest]] = relationship(back_populates="acquisition")

    __table_args__ = (
        sa.Index("ix_acquisitions_agency_acquired", "agency_id", "acquired_on"),
        sa.Index("ix_acquisitions_acquired_category", "acquired_on", "category", "power"),
        # Agency first: the not-reported list reads one short range per agency, without a sort.
        sa.Index("ix_acquisitions_reported", "agency_id", "reported_on", "acquired_on"),
    )


class AcquisitionTally(Base):
    """How many acquisitions share an agency, a month and everything a rule can ask of a vehicle.

    Kept by database triggers on `acquisitions` (migration 0002), so every writer keeps it exact,
    in the writer's own transaction. The compliance engine, the dashboards and the timeliness counts
    sum these rows for whole months instead of reading a million acquisitions: fleets buy in lots of
    identical vehicles, so a year of a province's acquisitions is some tens of thousands of tallies."""

    __tablename__ = "acquisition_tallies"

    category: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    month: Mapped[dt.date] = mapped_column(primary_key=True)  # the first day of the month acquired
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agencies.id"), primary_key=True)
    power: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    acquisition_kind: Mapped[str] = mapped_column(sa.String(4), primary_key=True)
    # '' for none: a key column cannot be NULL.
    emission_standard: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    catalogued: Mapped[bool] = mapped_column(primary_key=True)  # matches the no-NEV catalogue
    exemption_state: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)  # as Acquisition.exemption_state
    reported_month: Mapped[dt.date] = mapped_column(primary_key=True)  # the first day of the month first reported
    report_delay: Mapped[int] = mapped_column(primary_key=True)  # days from acquisition to first report
    acquisitions: Mapped[int]

    __table_args__ = (
        # Each read from the index alone (the count included), in the order its query groups:
        # one agency's tallies, and every agency's year in agency order (its page; counties) ...
        sa.Index("ix_acquisition_tallies_agency", "agency_id", "month", "power", "acquisitions"),
        # ... a year by category and power type (the city's power mix) ...
        sa.Index("ix_acquisition_tallies_category_power", "category", "power", "month", "acquisitions"),
        # ... and reports by agency and month of report (timeliness).
        sa.Index("ix_acquisition_tallies_reported", "agency_id", "reported_month", "report_delay", "acquisitions"),
        # The tallies a delete has just emptied, and nothing else: the triggers drop them (migration 0005).
        sa.Index(
            "ix_acquisition_tallies_emptied", "agency_id",
            sqlite_where=sa.text("acquisitions <= 0"), postgresql_where=sa.text("acquisitions <= 0"),
        ),  # fmt: skip
        # Category first in the key, and on SQLite the table is its key (no rowid): a rule reads the
        # tallies of its own categories and months as one range each, without a lookup per row.
        {"sqlite_with_rowid": False},
    )


# The fields a re-upload may change; a change to any of them keeps the old version as history.
ACQUISITION_FIELDS = (
    "credit_code",
    "vin",
    "plate",
    "category",
    "power",
    "acquisition_kind",
    "acquired_on",
    "brand_model",
    "emission_standard",
    "county",
    "price",
    "exemption_reason",
    "remark",
)


class AcquisitionVersion(Base):
    """An earlier version of an acquisition, replaced by a later upload."""

    __tablename__ = "acquisition_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    acquisition_id: Mapped[int] = mapped_column(sa.ForeignKey("acquisitions.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_batches.id"))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    replaced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    replaced_by_batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_batches.id"))

    acquisition: Mapped[Acquisition] = relationship(back_populates="versions")

    __table_args__ = (sa.UniqueConstraint("acquisition_id", "version"),)


class NoNevCatalogueEntry(Base):
    """A vehicle configuration for which no NEV exists; matching acquisitions are exempt without a request."""

    __tablename__ = "no_nev_catalogue"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(sa.String(20))
    model_pattern: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ExemptionRequest(Base):
    """A request to take a non-NEV acquisition out of scope because an NEV cannot do the job."""

    __tablename__ = "exemption_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    acquisition_id: Mapped[int] = mapped_column(sa.ForeignKey("acquisitions.id", ondelete="CASCADE"), index=True)
    reason_category: Mapped[str] = mapped_column(sa.String(40))
    reason: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(10), default="pending", index=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None]
    comment: Mapped[str | None] = mapped_column(sa.Text)

    acquisition: Mapped[Acquisition] = relationship(back_populates="exemption_requests")
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    __table_args__ = (sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),)


class SentSummary(Base):
    """A monthly e-mail that went out; the unique key is what makes 'never twice' hold."""

    __tablename__ = "sent_summaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7))
    recipient: Mapped[str] = mapped_column(sa.String(254))
    # "city" for the bureau's digest, "agency-<id>" for an agency's summary.
    kind: Mapped[str] = mapped_column(sa.String(40))
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("month", "recipient", "kind"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(sa.String(60))
    target_type: Mapped[str | None] = mapped_column(sa.String(40))
    target_id: Mapped[int | None]
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # The network address the action came from (web requests); None for the command line.
    address: Mapped[str | None] = mapped_column(sa.String(64))

    user: Mapped[User | None] = relationship()


class Setting(Base):
    """Small settings an admin changes at run time (the active rule pack)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


# --- The monthly reporting cycle (fleet.domain.reporting) -------------------------------------------

MONTHLY_REPORT_STATUSES = ("submitted", "nil", "returned", "accepted")


class MonthlyReport(Base):
    """What was done about an agency's month: submitted, a zero report, returned or accepted.

    A month nobody acted on has no row: `open` and `missing` are derived from the due date."""

    __tablename__ = "monthly_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agencies.id"))
    month: Mapped[dt.date]  # the first day of the month reported
    status: Mapped[str] = mapped_column(sa.String(10))
    submitted_at: Mapped[dt.datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    on_behalf: Mapped[bool] = mapped_column(default=False)  # a reviewer submitted for the agency
    late: Mapped[bool] = mapped_column(default=False)  # submitted after the due date
    acquisitions: Mapped[int] = mapped_column(default=0)  # acquired in the month when submitted
    reviewed_at: Mapped[dt.datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    comment: Mapped[str | None] = mapped_column(sa.Text)  # the reviewer's last word (a return's reason)
    # Raised by each return or reopening: a reminder tells the agency about each one once.
    returns: Mapped[int] = mapped_column(default=0)

    agency: Mapped[Agency] = relationship()
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])

    __table_args__ = (
        sa.UniqueConstraint("agency_id", "month"),
        # The grid reads a month's reports; the accepted-only figures look one up per agency and month.
        sa.Index("ix_monthly_reports_month_status", "month", "status"),
        sa.CheckConstraint("status IN ('submitted', 'nil', 'returned', 'accepted')", name="status"),
    )


class SentReminder(Base):
    """A reporting reminder that went out, like SentSummary: the unique key keeps it from going twice."""

    __tablename__ = "sent_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7))  # the month reported, YYYY-MM
    recipient: Mapped[str] = mapped_column(sa.String(254))
    # "due-<agency id>" before the due date, "missed-<agency id>" after it, "returned-<agency id>-<n>"
    # for the n-th return of the month.
    kind: Mapped[str] = mapped_column(sa.String(60))
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("month", "recipient", "kind"),)


# --- Identity (fleet.domain.identity) ------------------------------------------------------------


class LoginThrottle(Base):
    """Failed logins counted per source address and account, per address, and per account
    (fleet.domain.identity); `address` or `username` is '' where the counter does not use it."""

    __tablename__ = "login_throttles"

    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    address: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), primary_key=True, index=True)
    failures: Mapped[int]
    # Seconds since the epoch, so that the lockout arithmetic is done in one SQL statement that reads
    # the same on SQLite and PostgreSQL.
    last_failure_at: Mapped[float] = mapped_column(sa.Float, index=True)
    locked_until: Mapped[float | None] = mapped_column(sa.Float)


# --- Purchase plans -----------------------------------------------------------------------------------

PLAN_STATUSES = ("current", "replaced", "invalid")


class PurchasePlan(Base):
    """One upload of an agency's annual purchase plan. The accepted uploads of an agency and year are
    its versions (1, 2, …): the newest is `current`, the earlier ones `replaced` and kept. An upload
    with errors is kept as `invalid` (no version) for its findings and annotated workbook."""

    __tablename__ = "purchase_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agencies.id"), index=True)
    year: Mapped[int | None]
    version: Mapped[int | None]
    status: Mapped[str] = mapped_column(sa.String(10))
    file_name: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.ForeignKey("upload_files.sha256"))
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rows: Mapped[int] = mapped_column(default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, deferred=True)

    agency: Mapped[Agency | None] = relationship()
    uploaded_by: Mapped[User | None] = relationship()
    upload: Mapped[UploadFile] = relationship()
    lines: Mapped[list[PlanLine]] = relationship(back_populates="plan", order_by="PlanLine.id", cascade="all, delete-orphan")

    __table_args__ = (
        sa.UniqueConstraint("agency_id", "year", "version"),
        sa.Index("ix_purchase_plans_year_status", "year", "status"),
        sa.CheckConstraint("status IN ('current', 'replaced', 'invalid')", name="status"),
    )


class PlanLine(Base):
    """A row of a plan: `quantity` vehicles of one kind planned for a month or a quarter. A planned
    non-NEV under a 100% rule may carry an exemption request, decided before the purchase and applied
    to the purchase when it is reported (fleet.domain.exemptions.apply_planned_exemptions)."""

    __tablename__ = "plan_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("purchase_plans.id", ondelete="CASCADE"), index=True)
    source_sheet: Mapped[str | None] = mapped_column(sa.String(100))
    source_row: Mapped[int | None]
    category: Mapped[str] = mapped_column(sa.String(20))
    power: Mapped[str] = mapped_column(sa.String(20))
    acquisition_kind: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[int]
    first_day: Mapped[dt.date]  # of the planned month, or of the planned quarter's first month
    last_day: Mapped[dt.date]
    county: Mapped[str] = mapped_column(sa.String(40))
    budget: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 4))
    exemption_reason: Mapped[str | None] = mapped_column(sa.Text)
    remark: Mapped[str | None] = mapped_column(sa.Text)
    # The exemption request the line carries: None, or pending / approved / rejected.
    exemption_status: Mapped[str | None] = mapped_column(sa.String(10))
    exemption_requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    exemption_decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    exemption_decided_at: Mapped[dt.datetime | None]
    exemption_comment: Mapped[str | None] = mapped_column(sa.Text)

    plan: Mapped[PurchasePlan] = relationship(back_populates="lines")
    exemption_decided_by: Mapped[User | None] = relationship(foreign_keys=[exemption_decided_by_id])

    __table_args__ = (
        sa.CheckConstraint("exemption_status IN ('pending', 'approved', 'rejected')", name="exemption_status"),
        sa.CheckConstraint("quantity >= 1", name="quantity"),
    )


class PlannedExemption(Base):
    """An exemption request made for a reported purchase from its plan line's decision: which line."""

    __tablename__ = "planned_exemptions"

    exemption_request_id: Mapped[int] = mapped_column(sa.ForeignKey("exemption_requests.id", ondelete="CASCADE"), primary_key=True)
    plan_line_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_lines.id"), index=True)

# --- The registration record: the traffic police's extracts, checked against self-reports ---


class RegistrationExtract(Base):
    """A loaded extract of the vehicle registrations of a period; its dates are a covered period."""

    __tablename__ = "registration_extracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.ForeignKey("upload_files.sha256"), index=True)
    loaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The registration dates the extract covers: no finding is made about a day outside every extract.
    first: Mapped[dt.date]
    last: Mapped[dt.date]
    rows: Mapped[int] = mapped_column(default=0)
    loaded: Mapped[int] = mapped_column(default=0)  # registrations not known before this extract
    report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, deferred=True)

    loaded_by: Mapped[User | None] = relationship()


class Registration(Base):
    """One first registration of a vehicle; the VIN and the first-registration date identify it."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    extract_id: Mapped[int] = mapped_column(sa.ForeignKey("registration_extracts.id"), index=True)
    source_sheet: Mapped[str | None] = mapped_column(sa.String(100))
    source_row: Mapped[int | None]
    vin: Mapped[str] = mapped_column(sa.String(17))
    registered_on: Mapped[dt.date]
    plate: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    plate_kind: Mapped[str | None] = mapped_column(sa.String(2))  # GA 24.7
    vehicle_type: Mapped[str | None] = mapped_column(sa.String(20))  # GA 24.4
    usage: Mapped[str] = mapped_column(sa.String(1))  # GA 24.3
    owner: Mapped[str] = mapped_column(sa.String(200))  # as registered
    # The owner's unified social credit code; a private owner's identity number is not kept.
    owner_code: Mapped[str | None] = mapped_column(sa.String(18))
    owner_key: Mapped[str] = mapped_column(sa.String(200), index=True)  # the name as owners are matched
    # The agency the owner was matched to (credit code, name, or a reviewer's mapping); None otherwise.
    agency_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agencies.id"))
    fuel: Mapped[str] = mapped_column(sa.String(1))  # GA 24.9
    power: Mapped[str] = mapped_column(sa.String(20))  # the power type (vocabularies.yaml) the fuel code says
    emission_standard: Mapped[str | None] = mapped_column(sa.String(20))
    status: Mapped[str | None] = mapped_column(sa.String(1))  # GA 24.17

    agency: Mapped[Agency | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("vin", "registered_on"),
        sa.Index("ix_registrations_agency_registered", "agency_id", "registered_on"),
    )


class RegistrationOwner(Base):
    """A reviewer's decision on an owner name no agency matched: this agency, or not ours (a private
    buyer, a body the city does not oversee). Remembered for every later extract."""

    __tablename__ = "registration_owners"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))  # as first written
    agency_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agencies.id"))
    not_ours: Mapped[bool] = mapped_column(default=False)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    agency: Mapped[Agency | None] = relationship()


REVIEW_STATUSES = ("explained", "correction_requested")


class RegistrationReview(Base):
    """A reviewer's answer to a reconciliation finding (its code and VIN): explained, with a comment,
    or the agency asked to correct its report."""

    __tablename__ = "registration_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(20))
    vin: Mapped[str] = mapped_column(sa.String(17))
    status: Mapped[str] = mapped_column(sa.String(20))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    reviewed_by: Mapped[User | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("code", "vin"),
        sa.CheckConstraint("status IN ('explained', 'correction_requested')", name="status"),
    )



# --- Report jobs (fleet.read.report_jobs, fleet.jobs.reports) -------------------------------------


class ReportJob(Base):
    """A compliance report with its whole vehicle detail, too large to write within a request: built
    by a background job (thread or RQ worker), its progress and then the workbook kept here, so that
    any web process can show the one and serve the other."""

    __tablename__ = "report_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # The report's selection: one agency, a county, or the whole city (both empty).
    agency_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    county: Mapped[str | None] = mapped_column(sa.String(40))
    period: Mapped[str] = mapped_column(sa.String(7))  # YYYY or YYYY-MM
    locale: Mapped[str] = mapped_column(sa.String(5), default="zh")
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")
    progress: Mapped[int] = mapped_column(default=0)
    message: Mapped[str | None] = mapped_column(sa.Text)
    vehicle_rows: Mapped[int] = mapped_column(default=0)  # rows of the vehicle detail, for the progress
    file_name: Mapped[str] = mapped_column(sa.String(255))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    __table_args__ = (sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),)
