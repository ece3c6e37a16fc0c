"""Type-checked (never run) misuse: every line with an "expect" comment naming an error code
must be a mypy error with that code; ``tests/typing/test_typing.py`` checks each is reported."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from pydantic import BaseModel

import django_generic_tasks as tasks


class EmailParams(BaseModel):
    subject: str


class SmsParams(BaseModel):
    number: str


class EmailTask(tasks.Task[EmailParams]):
    def run(self) -> None:
        print(self.params.number)  # expect: [attr-defined]


class NotAModel(tasks.Task[int]):  # expect: [type-var]
    def run(self) -> None:
        pass


def misuse() -> None:
    EmailTask(SmsParams(number="1"))  # expect: [arg-type]
    task = EmailTask(EmailParams(subject="x"))
    task.start(delay=5)  # expect: [arg-type]
    task.start(dealy=timedelta(seconds=1))  # expect: [call-arg]
    number: int = task.params.subject  # expect: [assignment]
    del number


class RefParams(BaseModel):
    user: tasks.ModelRef[User]


def misuse_model_refs(user: User) -> None:
    name: int = RefParams(user=user).user.username  # expect: [assignment]
    del name


class NotAModelRef(BaseModel):
    number: tasks.ModelRef[int]  # expect: [type-var]


class CountTask(tasks.Task[EmailParams, int]):
    def run(self) -> str:  # expect: [override]
        return "not a count"


def misuse_results() -> None:
    handle = CountTask(EmailParams(subject="x")).start()
    text: str = handle.wait()  # expect: [assignment]
    count: int = handle.result  # expect: [assignment]
    del text, count


class CountParams(BaseModel):
    count: int


class DoubleTask(tasks.Task[CountParams, int]):
    def run(self) -> int:
        return self.params.count * 2


def misuse_workflows() -> None:
    first = DoubleTask(CountParams(count=1))
    text: str = tasks.chain(first, DoubleTask).start().wait()  # expect: [assignment]
    tasks.chain(first, first)  # expect: [call-overload]
    tasks.chain(DoubleTask)  # expect: [call-overload]
    tasks.group([first]).then(DoubleTask, on_failure="skip")  # expect: [arg-type]
    del text
