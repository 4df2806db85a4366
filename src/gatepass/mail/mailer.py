"""Sending mail off the request path.

A request only *queues* a mail (:meth:`Mailer.send` never waits on the
network), so a slow or dead mail server never slows an answer.  One worker
task, started and stopped with the server's lifespan, sends the queue over
SMTP with aiosmtplib.  A transient failure (connection refused, timeout, a
4xx answer) is retried after each of ``retry_delays``; a permanent one (5xx)
is not.  A mail that cannot be sent is never dropped: it is written to the
outbox and the log says so.  At shutdown, whatever is still queued or
waiting for a retry goes to the outbox as well.

Without an SMTP target every mail goes straight to the outbox.

Log lines name the kind of mail, its Message-ID and the recipient's domain;
never a link (links carry tokens), never the SMTP password, and never the
SMTP server's own reply text (it can quote addresses back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from gatepass.mail.compose import Outgoing
from gatepass.mail.config import SmtpTarget
from gatepass.mail.outbox import Outbox

logger = logging.getLogger("gatepass.mail")

DEFAULT_RETRY_DELAYS = (2.0, 10.0, 60.0)


@dataclass(slots=True)
class _Job:
    mail: Outgoing
    attempt: int = 0


class Mailer:
    def __init__(
        self,
        outbox: Outbox,
        smtp: SmtpTarget | None = None,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = 10.0,
        queue_size: int = 1000,
        drain_timeout: float = 5.0,
    ) -> None:
        self.outbox = outbox
        self.smtp = smtp
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.drain_timeout = drain_timeout
        self._tls = smtp.tls_context() if smtp is not None else None
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._waiting: dict[asyncio.Task[None], _Job] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        #: Mails accepted by send() whose fate (sent, or kept) is not settled.
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.sent = 0

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.outbox.prepare)
        if self.smtp is not None and self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="gatepass-mailer")
            logger.info("mail goes to %s", self.smtp)
        elif self.smtp is None:
            logger.info("no SMTP server set: mail is written to %s", self.outbox.directory)

    async def stop(self) -> None:
        """Give the queue a moment to drain, then keep the rest in the outbox."""
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self.drain_timeout)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        left = [job for task, job in self._waiting.items() if task.cancel()]
        self._waiting.clear()
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        for job in left:
            await self._keep(job, "the server stopped before it was sent")
        if self._side_tasks:
            await asyncio.gather(*self._side_tasks, return_exceptions=True)

    # -- the request side ------------------------------------------------

    def send(self, mail: Outgoing) -> None:
        """Queue a mail and return at once."""
        job = _Job(mail)
        self._in_flight += 1
        self._idle.clear()
        if self.smtp is None:
            self._spawn(self._store(job))
            return
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self._spawn(self._keep(job, "the mail queue is full"))

    @property
    def in_flight(self) -> int:
        """Mails accepted by :meth:`send` and not yet sent or kept."""
        return self._in_flight

    async def wait_idle(self) -> None:
        """Until nothing is queued, retrying or being written (for tests and tools)."""
        await self._idle.wait()

    # -- the worker ------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._attempt(job)
            except Exception:  # never let one mail stop the worker
                logger.exception("mail %s %s: unexpected failure", job.mail.kind, _tag(job))
                await self._keep(job, "of an unexpected error")
            finally:
                self._queue.task_done()

    async def _attempt(self, job: _Job) -> None:
        assert self.smtp is not None
        smtp = self.smtp
        job.attempt += 1
        try:
            await aiosmtplib.send(
                job.mail.message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                tls_context=self._tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            reason = _reason(exc)
            permanent = _permanent(exc)
            if permanent or job.attempt > len(self.retry_delays):
                await self._keep(job, f"sending failed after {job.attempt} attempt(s): {reason}")
                return
            delay = self.retry_delays[job.attempt - 1]
            logger.warning(
                "mail %s %s: attempt %d via %s failed (%s); retrying in %gs",
                job.mail.kind, _tag(job), job.attempt, smtp, reason, delay,
            )  # fmt: skip
            task = asyncio.create_task(self._requeue(job, delay))
            self._waiting[task] = job
            task.add_done_callback(lambda t: self._waiting.pop(t, None))
            return
        self.sent += 1
        self._settle()
        logger.info("mail %s %s sent via %s", job.mail.kind, _tag(job), smtp)

    async def _requeue(self, job: _Job, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._queue.put(job)

    def _settle(self) -> None:
        self._in_flight -= 1
        if self._in_flight <= 0:
            self._in_flight = 0
            self._idle.set()

    # -- the outbox ------------------------------------------------------

    async def _store(self, job: _Job) -> None:
        try:
            path = await asyncio.to_thread(self.outbox.write, job.mail.message, kind=job.mail.kind)
        except OSError as exc:
            logger.error("mail %s %s LOST: the outbox cannot be written (%s)",
                         job.mail.kind, _tag(job), exc.strerror or type(exc).__name__)  # fmt: skip
            return
        finally:
            self._settle()
        logger.info("mail %s %s written to %s", job.mail.kind, _tag(job), path)

    async def _keep(self, job: _Job, why: str) -> None:
        try:
            path = await asyncio.to_thread(
                self.outbox.write, job.mail.message, kind=job.mail.kind, undelivered=True
            )
        except OSError as exc:
            logger.error("mail %s %s LOST: not sent because %s, and the outbox cannot be "
                         "written (%s)", job.mail.kind, _tag(job), why,
                         exc.strerror or type(exc).__name__)  # fmt: skip
            return
        finally:
            self._settle()
        logger.error("mail %s %s NOT SENT: %s; kept in %s", job.mail.kind, _tag(job), why, path)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)


def _tag(job: _Job) -> str:
    domain = job.mail.to.rpartition("@")[2]
    return f"{job.mail.message_id} to …@{domain}"


def _permanent(exc: BaseException) -> bool:
    """A 5xx answer: retrying the same mail would get the same answer."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(e.code >= 500 for e in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500


def _reason(exc: BaseException) -> str:
    """What went wrong, without the server's reply text or any address."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.code}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = sorted({e.code for e in exc.recipients})
        return f"{type(exc).__name__} {','.join(map(str, codes))}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
