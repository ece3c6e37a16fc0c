"""Type-checked (never run) usage of the public API: ``self.params`` is the concrete model.

``tests/typing/test_typing.py`` runs ``mypy --strict`` (and pyright) over this file and
expects no errors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, assert_type

from django.contrib.auth.models import User
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import TaskHandle, TaskStatus
from django_generic_tasks.testing import TaskCapture, capture_tasks


class EmailParams(BaseModel):
    subject: str
    recipients: list[str]


class EmailTask(tasks.Task[EmailParams]):
    queue = "emails"
    max_attempts = 3
    retry_on = (ConnectionError,)

    def run(self) -> None:
        assert_type(self.params, EmailParams)
        assert_type(self.params.recipients, list[str])


class DigestTask(tasks.Task[EmailParams]):
    schedules = [
        tasks.Schedule(
            cron="0 6 * * mon-fri",
            tz="Europe/Berlin",
            params={"subject": "digest", "recipients": ["team@example.com"]},
        ),
        tasks.Schedule(
            every=timedelta(minutes=30),
            params={"subject": "rolling", "recipients": []},
            name="rolling",
            catch_up="none",
        ),
    ]

    def run(self) -> None: ...


class AsyncEmailTask(tasks.Task[EmailParams]):
    async def run(self) -> int:
        assert_type(self.params, EmailParams)
        return len(self.params.recipients)


class LoudEmailTask(EmailTask):
    def run(self) -> None:
        assert_type(self.params, EmailParams)


class Auditing:
    def audit(self) -> str:
        return "audited"


class AuditedEmailTask(Auditing, tasks.Task[EmailParams]):
    def run(self) -> str:
        assert_type(self.params, EmailParams)
        return self.audit()


class Base[P: BaseModel](tasks.Task[P]):
    def current(self) -> P:
        return self.params


class ConcreteTask(Base[EmailParams]):
    def run(self) -> str:
        assert_type(self.params, EmailParams)
        return self.params.subject


def use() -> None:
    params = EmailParams(subject="Hi", recipients=["a@example.com"])
    task = EmailTask(params)
    assert_type(task.params, EmailParams)
    assert_type(EmailTask({"subject": "Hi", "recipients": []}).params, EmailParams)
    assert_type(ConcreteTask(params).current(), EmailParams)

    handle = task.start(
        delay=timedelta(seconds=5), queue="emails", priority=5, key="k", on_commit=False
    )
    assert_type(handle, TaskHandle[Any])
    assert_type(handle.id, str)
    assert_type(handle.name, str)
    assert_type(handle.status, TaskStatus)
    task.start(eta=datetime.now(UTC) + timedelta(hours=1))
    assert_type(
        EmailTask.start_many([params, {"subject": "x", "recipients": []}]), list[TaskHandle[Any]]
    )
    assert_type(EmailTask.name, str)
    assert_type(EmailTask.backoff(2), timedelta)

    with capture_tasks() as captured:
        assert_type(captured, TaskCapture)
        task.start()
        captured.assert_started(EmailTask, params, queue="emails")
        captured.assert_started(EmailTask, params_subset={"subject": "Hi"}, count=1)
        captured.run_all()


class NotifyParams(BaseModel):
    user: tasks.ModelRef[User]
    others: list[tasks.ModelRef[User]] = []


class NotifyTask(tasks.Task[NotifyParams]):
    missing_models_fail = True

    def run(self) -> str:
        assert_type(self.params.user, User)
        assert_type(self.params.others, list[User])
        return self.params.user.get_username()


def use_model_refs(user: User) -> None:
    NotifyTask(NotifyParams(user=user, others=[user])).start()
    error: tasks.TasksError = tasks.ModelNotFoundError("gone")
    del error


class QuoteParams(BaseModel):
    amount: int


class QuoteResult(BaseModel):
    total: int


class QuoteTask(tasks.Task[QuoteParams, QuoteResult]):
    def run(self) -> QuoteResult:
        return QuoteResult(total=self.params.amount)

    def on_success(self, result: QuoteResult) -> None:
        assert_type(result.total, int)


class AsyncQuoteTask(tasks.Task[QuoteParams, QuoteResult]):
    async def run(self) -> QuoteResult:
        return QuoteResult(total=self.params.amount)


async def use_results() -> None:
    handle = QuoteTask(QuoteParams(amount=1)).start()
    assert_type(handle, TaskHandle[QuoteResult])
    assert_type(handle.result, QuoteResult | None)
    assert_type(handle.wait(timeout=5), QuoteResult)
    assert_type(handle.refresh().result, QuoteResult | None)
    assert_type(await handle.await_result(timeout=1.5), QuoteResult)
    assert_type(AsyncQuoteTask(QuoteParams(amount=1)).start().wait(), QuoteResult)
    assert_type(QuoteTask.start_many([{"amount": 1}]), list[TaskHandle[QuoteResult]])
    assert_type(EmailTask(EmailParams(subject="x", recipients=[])).start().wait(), Any)
    try:
        handle.wait()
    except tasks.RunFailedError as exc:
        assert_type(exc.error, tasks.ErrorInfo)
        assert_type(exc.status, TaskStatus | None)
        assert_type(exc.run_id, str)


def use_handles(run_id: str) -> None:
    assert_type(QuoteTask.handle(run_id), TaskHandle[QuoteResult])
    assert_type(QuoteTask.handle(run_id).wait(timeout=1), QuoteResult)
    assert_type(tasks.get_handle(run_id), TaskHandle[Any])
    assert_type(tasks.get_handle(run_id).cancel().refresh().status, TaskStatus)


class ReceiptParams(BaseModel):
    quote: QuoteResult


class ReceiptTask(tasks.Task[ReceiptParams, str]):
    def run(self) -> str:
        return f"{self.params.quote.total}"


class TotalsParams(BaseModel):
    quotes: list[QuoteResult]


class TotalsTask(tasks.Task[TotalsParams, int]):
    def run(self) -> int:
        return len(self.params.quotes)


def use_workflows() -> None:
    first = QuoteTask(QuoteParams(amount=1))
    assert_type(tasks.chain(first).start().wait(), QuoteResult)
    assert_type(tasks.chain(first, ReceiptTask).start().wait(timeout=5), str)
    handle = tasks.chain(first, ReceiptTask).start()
    assert_type(handle, tasks.WorkflowHandle[str])
    assert_type(handle.failed_step, int | None)
    assert_type(handle.error, tasks.ErrorInfo | None)
    group = tasks.group([QuoteTask(QuoteParams(amount=n)) for n in range(3)])
    assert_type(group.start().wait(), list[QuoteResult])
    assert_type(group.then(TotalsTask).start().wait(), int)
    assert_type(group.then(TotalsTask, on_failure="fail").start().run_ids, tuple[str, ...])
