"""The README's example task."""

from django.core.mail import send_mail
from pydantic import BaseModel, Field

import django_generic_tasks as tasks


# define task params as a Pydantic BaseModel
class EmailNotificationParams(BaseModel):
    subject: str = Field(description="Subject line of the e-mail.")
    content: str = Field(description="Plain-text body.")
    recipients: list[str] = Field(description="Addresses to send to.")


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
    recipients: list[str] = Field(description="Addresses the digest goes to.")


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
