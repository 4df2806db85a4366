"""Outgoing mail: settings, templates, the queue and its worker, the outbox."""

from gatepass.mail.compose import KINDS, MailComposer, Outgoing
from gatepass.mail.config import SmtpTarget, default_sender, parse_sender, parse_smtp_url
from gatepass.mail.mailer import Mailer
from gatepass.mail.outbox import Outbox

__all__ = [
    "KINDS",
    "MailComposer",
    "Mailer",
    "Outbox",
    "Outgoing",
    "SmtpTarget",
    "default_sender",
    "parse_sender",
    "parse_smtp_url",
]
