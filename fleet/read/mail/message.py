"""The MIME message of a rendered summary: plain text, HTML and the report attached."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from fleet.read.mail.render import Attachment, Content

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
# Characters that have no place in a header line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line(text: str) -> str:
    """A header value on one line: a line break from an agency's name would otherwise be refused by
    the mail library or, written raw, start a header of its own."""
    return " ".join(_CONTROL.sub(" ", text).split())


def build_message(content: Content, attachment: Attachment | None, *, sender: str, to: str) -> EmailMessage:
    """Plain text first, then HTML (clients show the last part they understand), and the report attached
    (reporting reminders have none)."""
    message = EmailMessage()
    message["Subject"] = one_line(content.subject)
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # Out-of-office replies and the like should not answer an automatic message (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    if attachment is not None:
        message.add_attachment(attachment.content, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=one_line(attachment.name))
    # Set last: turning the message multipart moves Content-* headers into the first part.
    message["Content-Language"] = content.locale
    return message
