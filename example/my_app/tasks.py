"""The example's tasks: the README's e-mail task, a schedule, and what a task can know about
itself (a model reference, a typed result, progress)."""

import time
from decimal import Decimal
from typing import Annotated

from django.contrib.auth.models import User
from django.core.mail import send_mail
from pydantic import BaseModel, Field, StringConstraints

import django_generic_tasks as tasks

# Params are bounded: an HTTP caller can send anything, and a value a task cannot handle is
# refused with 422 before it runs, never a failure (or a 500) from inside the task.
# A dot-atom local part (no leading, trailing or doubled dot): Python 3.12.1's e-mail header
# parser raises TypeError on ".a@b" (found by schemathesis on the lowest pass).
EmailAddress = Annotated[
    str,
    StringConstraints(
        max_length=254,
        pattern=r"^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$",
    ),
]


# define task params as a Pydantic BaseModel
class EmailNotificationParams(BaseModel):
    subject: str = Field(
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$",
        description="Subject line of the e-mail.",
    )
    content: str = Field(max_length=100_000, description="Plain-text body.")
    recipients: list[EmailAddress] = Field(
        min_length=1, max_length=50, description="Addresses to send to."
    )


# subclass Task and specify params type as a generic type argument and implement the run method
class EmailNotificationTask(tasks.Task[EmailNotificationParams]):
    """Sends a plain-text e-mail to every recipient."""

    max_attempts = 3  # SMTP hiccups are worth a retry

    def run(self) -> int:
        return send_mail(
            subject=self.params.subject,
            message=self.params.content,
            from_email=None,
            recipient_list=self.params.recipients,
        )


class DigestParams(BaseModel):
    recipients: list[EmailAddress] = Field(
        min_length=1, max_length=50, description="Addresses the digest goes to."
    )


class DailyDigestTask(tasks.Task[DigestParams]):
    """Mails the daily digest; fired by `tasks_scheduler` (or `tasks_worker --scheduler`)."""

    schedules = [
        tasks.Schedule(
            cron="0 7 * * mon-fri",
            tz="Europe/Berlin",
            params={"recipients": ["team@example.com"]},
            name="weekday-mornings",
        )
    ]

    def run(self) -> int:
        return send_mail(
            subject="Daily digest",
            message="Good morning: here is what happened yesterday.",
            from_email=None,
            recipient_list=self.params.recipients,
        )


class WelcomeParams(BaseModel):
    """Whom to welcome."""

    user: tasks.ModelRef[User] = Field(description="The user to welcome (sent as its pk).")


class WelcomeUserTask(tasks.Task[WelcomeParams]):
    """E-mails a user a welcome; the user is loaded from the database when the run starts."""

    api_exposed = False  # started by the sign-up code only: no caller may pick the user

    def run(self) -> int:
        user = self.params.user  # a User: the params carried its pk only
        return send_mail(
            subject=f"Welcome, {user.get_username()}",
            message="Your account is ready.",
            from_email=None,
            recipient_list=[user.email],
        )


class LineItem(BaseModel):
    """One line of a basket."""

    sku: str = Field(min_length=1, max_length=64, description="What is bought.")
    quantity: int = Field(gt=0, le=10_000, description="How many.")
    unit_price: Decimal = Field(ge=0, lt=1_000_000, description="Price of one, in euros.")


class QuoteParams(BaseModel):
    """A basket to price."""

    items: list[LineItem] = Field(max_length=100, description="The basket.")
    vat_rate: Decimal = Field(
        default=Decimal("0.20"), ge=0, lt=1, description="VAT, as a fraction below 1."
    )


class Quote(BaseModel):
    """What a basket costs, in euros."""

    subtotal: Decimal
    vat: Decimal
    total: Decimal


class QuoteTask(tasks.Task[QuoteParams, Quote]):
    """Prices a basket. The result is a ``Quote``: validated when the run ends, stored as JSON,
    and a ``Quote`` again from ``handle.result`` / ``handle.wait()``."""

    def run(self) -> Quote:
        subtotal = sum((item.unit_price * item.quantity for item in self.params.items), Decimal(0))
        vat = (subtotal * self.params.vat_rate).quantize(Decimal("0.01"))
        return Quote(subtotal=subtotal, vat=vat, total=subtotal + vat)


class ReindexParams(BaseModel):
    """How much to index, and how slowly (so that the progress can be watched)."""

    batches: int = Field(default=5, ge=1, le=100, description="How many batches to index.")
    seconds_per_batch: float = Field(
        default=0.6,
        ge=0,
        le=10,
        strict=True,  # a number: JSON's true/false are not durations
        description="Time one batch takes, in seconds.",
    )


class ReindexTask(tasks.Task[ReindexParams, int]):
    """Rebuilds a search index batch by batch, reporting its progress as it goes (the admin's
    run list and run page show it as a bar); stops between batches when cancelled."""

    def run(self) -> int:
        total = self.params.batches
        for batch in range(1, total + 1):
            self.check_cancelled()  # handle.cancel() / the admin's action stop it here
            time.sleep(self.params.seconds_per_batch)  # stands in for indexing one batch
            self.report_progress(batch, total, f"indexed batch {batch} of {total}")
        return total
