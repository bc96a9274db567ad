"""Sending the monthly summaries over SMTP: one connection per run, STARTTLS and login when configured.

A message that the server refuses is logged and reported; the next message still goes out. A dropped
connection is opened again for the next message rather than failing the rest of the run. Deciding who
gets what is fleet.read.mail.recipients, the wording fleet.read.mail.render; this module delivers each
message as it is built (one at a time: a province's run never holds them all) and records it.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session

from fleet.base.models import Agency
from fleet.base.periods import Period
from fleet.read.mail.message import build_message
from fleet.read.mail.recipients import Delivery, agency_kind, planned_deliveries
from fleet.read.mail.records import record_sent, sent_keys, should_notify
from fleet.read.mail.render import SummaryWriter
from rules.packs import RulePack

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "fleet-compliance@localhost"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        return cls(
            host=config["SMTP_HOST"],
            port=int(config["SMTP_PORT"]),
            user=config.get("SMTP_USER"),
            password=config.get("SMTP_PASSWORD"),
            starttls=bool(config.get("SMTP_STARTTLS")),
            sender=config["MAIL_FROM"],
        )


class SendError(Exception):
    """One message could not be delivered to the server; the text says why, for the run's report."""


class Mailer:
    """An SMTP session for a batch of messages: `with Mailer(settings) as mailer: mailer.send(msg)`."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        # Once the server cannot be reached, the rest of the run fails fast instead of waiting for a
        # timeout per message; the next run tries again.
        self._unreachable: str | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.settings.host, self.settings.port, timeout=SMTP_TIMEOUT_SECONDS)
        try:
            smtp.ehlo()
            if self.settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.settings.user:
                smtp.login(self.settings.user, self.settings.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        """Hand one message to the server, or raise SendError saying why it was not accepted."""
        if self._unreachable is not None:
            raise SendError(self._unreachable)
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (smtplib.SMTPException, OSError) as exc:
                self._unreachable = f"no SMTP session with {self.settings.host}:{self.settings.port}: {exc}"
                raise SendError(self._unreachable) from exc
        try:
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            # smtplib resets the transaction after a refused RCPT, so the connection stays usable.
            reasons = "; ".join(f"{rcpt}: {code} {_text(text)}" for rcpt, (code, text) in exc.recipients.items())
            raise SendError(f"recipient refused ({reasons})") from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # service closing: the next message needs a new connection
                self.close()
            raise SendError(f"{exc.smtp_code} {_text(exc.smtp_error)}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise SendError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._smtp.close()
        self._smtp = None


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


@dataclass
class SendReport:
    """What a run did, message by message; the command prints it and exits 1 when anything failed."""

    month: str
    dry_run: bool = False
    redirected_to: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    would_send: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    attachments_built: int = 0  # compliance reports built for the messages (one per kind and language)

    def as_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "month": self.month, "sent": self.sent, "skipped": self.skipped, "failed": self.failed,
            "attachments_built": self.attachments_built,
        }
        if self.dry_run:
            payload["dry_run"] = True
            payload["would_send"] = self.would_send
        if self.redirected_to:
            payload["to"] = self.redirected_to
        return payload


def share_of(deliveries: list[Delivery], silent: list[Agency], part: tuple[int, int]) -> tuple[list[Delivery], list[Agency]]:
    """The k-th of n shares: every n-th agency (in sending order) with its contacts; the city digest
    and the agencies without e-mail go with share 0."""
    k, n = part
    if n == 1:
        return deliveries, silent
    agencies = dict.fromkeys(d.agency_id for d in deliveries if d.agency_id is not None)
    order = {agency_id: position for position, agency_id in enumerate(agencies)}
    mine = [d for d in deliveries if (k == 0 if d.agency_id is None else order[d.agency_id] % n == k)]
    return mine, silent if k == 0 else []


def send_summaries(
    session: Session,
    pack: RulePack,
    month: Period,
    settings: SmtpSettings,
    *,
    deadline_days: int,
    due_day: int,
    dry_run: bool = False,
    to: str | None = None,
    resend: bool = False,
    part: tuple[int, int] = (0, 1),
) -> SendReport:
    """Send the month's summaries that have not gone out yet, recording each right after it is sent.

    Each SentSummary row is committed on its own, so a run that dies half-way still knows what it sent.
    `to` sends every message to that one address for testing: it neither skips nor records anything,
    so the real recipients still get theirs. `dry_run` renders every message and sends nothing; it
    builds no attachment. `part` (k, n) sends only the k-th of n shares of the agencies (each n-th of
    them, so the busy ones spread), the city digest and the agencies without e-mail with share 0: n
    processes, one share each, send the month on n cores (`summaries send --workers`).
    """
    month_key = month.label
    report = SendReport(month_key, dry_run=dry_run, redirected_to=to)
    deliveries, silent = planned_deliveries(session)
    deliveries, silent = share_of(deliveries, silent, part)
    for agency in silent:
        report.skipped.append(
            {"recipient": None, "kind": agency_kind(agency.id), "agency": agency.name, "reason": "no_email"}
        )
    already_sent = set() if to else sent_keys(session, month_key)
    due = []
    for delivery in deliveries:
        if should_notify(delivery, already_sent, resend=resend or bool(to)):
            due.append(delivery)
        else:
            report.skipped.append({**delivery.describe(), "reason": "already_sent"})

    # The agencies whose reports will be attached, in sending order: their vehicle detail is read ahead.
    upcoming = [] if dry_run else list(dict.fromkeys(d.agency_id for d in due if d.agency_id is not None))
    writer = SummaryWriter(session, pack, month, deadline_days, due_day, upcoming=upcoming)
    if dry_run:
        for delivery in due:
            report.would_send.append({**delivery.describe(), "subject": writer.content(delivery).subject})
        report.attachments_built = writer.attachments_built
        return report

    with Mailer(settings) as mailer:
        for delivery in due:
            entry = delivery.describe()
            # One recipient's bad data (an address the mail library refuses, a value the rendering
            # trips over) fails that message alone; the others still go out, and the run exits 1.
            try:
                content = writer.content(delivery)
                entry["subject"] = content.subject
                message = build_message(content, writer.attachment(delivery), sender=settings.sender, to=to or delivery.recipient)
                mailer.send(message)
            except SendError as exc:
                log.warning("summary %s for %s (%s) not sent: %s", month_key, delivery.recipient, delivery.kind, exc)
                report.failed.append({**entry, "error": str(exc)})
                continue
            except Exception as exc:
                error_id = uuid.uuid4().hex[:12]
                log.exception("summary %s for %s (%s) failed, error id %s", month_key, delivery.recipient, delivery.kind, error_id)
                session.rollback()
                report.failed.append({**entry, "error": f"{type(exc).__name__} (error id {error_id})"})
                continue
            if to is None:
                record_sent(session, month_key, delivery)
                session.commit()
            report.sent.append(entry)
    report.attachments_built = writer.attachments_built
    return report
