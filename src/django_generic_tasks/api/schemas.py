"""What the tasks endpoints read and answer: response schemas and run envelopes.

Used by ``django_generic_tasks.api``; the names are re-exported there. What a push queue's
delivery carries is read by Cloud Tasks' receiving side (``backends.cloudtasks.push``).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticSerializationError, core_schema, to_json, to_jsonable_python

from ..backends.cloudtasks.push import answer_status, push_headers_openapi
from ..conf import get_settings
from ..core.status import AttemptRecord, ErrorInfo, TaskStatus
from ..execution import Outcome
from ..execution.progress import Progress
from .markdown import markdown_descriptions

GENERIC_ERROR_MESSAGE = "The task failed; the server's logs have the details."
_RUN_RESPONSES = {
    "responses": {
        200: {
            "description": "Finished: succeeded, discarded, or (a push queue's delivery "
            "only) failed for good."
        },
        500: {
            "description": "Failed. A push queue's delivery that the task's policy wants "
            "another attempt of: scheduled, the queue retries on 5xx. A direct call: failed, "
            "nothing retries it (call again to retry)."
        },
        400: {"description": "The body is not JSON."},
        401: {"description": "Missing or invalid credentials."},
        403: {
            "description": "A caller that is not allowed, or params it may not use "
            "(api_authorize said no, or a model reference does not exist: the same answer)."
        },
        415: {"description": "The body is not sent as application/json."},
        422: {"description": "Invalid params: nothing was run."},
        503: {"description": "Credentials cannot be checked now, or the process is at capacity."},
    }
}


def _markdown_schema(schema: dict[str, Any]) -> None:
    schema.update(markdown_descriptions(schema))


class _Out(BaseModel):
    """A response body: its OpenAPI descriptions are Markdown (the docstrings are rST)."""

    model_config = ConfigDict(json_schema_extra=_markdown_schema)


class ErrorOut(_Out):
    """Why a run failed: the exception type, and its message only with ``DEBUG`` or
    ``TASKS_API_EXPOSE_ERROR_MESSAGES`` (a generic text otherwise; the traceback only with
    ``DEBUG``)."""

    type: str
    message: str
    traceback: str | None = None


class RunOut(_Out):
    """The envelope of one attempt run through ``POST <mount>/<Task.name>``.

    Only a push queue's delivery (a request authenticated as the push queue that carries its
    ``X-CloudTasks-*`` headers) is ever retried, by the queue, when this answer is 500. A
    direct call runs exactly one attempt: a failure is final (``failed``, 500), nothing
    retries it, and the run is not stored, so ``runs/<run_id>`` does not know it.
    """

    run_id: str
    task: str
    status: TaskStatus = Field(
        description="succeeded; discarded; failed (final: nothing retries it); or scheduled "
        "(a push queue's delivery that failed: the queue retries it on this 500 answer)."
    )
    attempt: int
    max_attempts: int = Field(
        description="The task's limit for a push queue's delivery; a direct call gets one "
        "attempt, so it equals attempt."
    )
    result: Any = Field(default=None, description="The return value, when JSON-serialisable.")
    error: ErrorOut | None = None
    retry_at: datetime | None = Field(
        default=None, description="When the push queue's next attempt is due (scheduled only)."
    )
    retried_by: Literal["push_queue"] | None = Field(
        default=None,
        description="Who retries this run: push_queue (it delivered this attempt and retries "
        "it on this 500 answer), or null: nobody.",
    )
    detail: str | None = Field(
        default=None, description="What a failure means for the caller, in words."
    )


def run_out_for(task_class: type[Any], schema_name: str) -> type[RunOut]:
    """``RunOut`` documenting ``result`` as the task's result type (``Task[P, R]``), under
    ``schema_name``; plain ``RunOut`` for tasks without one. Only the OpenAPI document uses
    it: the views write their JSON themselves."""
    if task_class._result_adapter is None:
        return RunOut
    result_type = task_class.result_type | None
    field = Field(default=None, description="What run() returned (null unless succeeded).")
    return create_model(schema_name, __base__=RunOut, result=(result_type, field))


class StartedOut(_Out):
    """A run handed to the configured backend by ``POST <mount>/<Task.name>/start``."""

    run_id: str
    task: str
    status: TaskStatus


class ProgressOut(_Out):
    """The last progress a run reported (``self.report_progress()``)."""

    done: float
    total: float | None = Field(default=None, description="null: the total is not known.")
    message: str = ""
    updated_at: datetime


def progress_out(progress: Progress | None) -> ProgressOut | None:
    """``progress`` as the API shows it."""
    if progress is None:
        return None
    return ProgressOut(
        done=progress.done,
        total=progress.total,
        message=progress.message,
        updated_at=progress.updated_at,
    )


class AttemptOut(_Out):
    """One attempt of a run. The error message and the worker (its host and process) only with
    ``DEBUG`` or ``TASKS_API_EXPOSE_ERROR_MESSAGES``, like a run's error."""

    attempt: int
    outcome: str = Field(
        description="`retried`, `lost` (its worker stopped), or the run's status for its "
        "last attempt."
    )
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error_type: str | None = None
    error_message: str | None = None
    worker: str | None = None


def attempts_out(history: tuple[AttemptRecord, ...]) -> list[AttemptOut]:
    """``handle.history`` for an HTTP caller (see ``AttemptOut``)."""
    exposed = expose_error_messages()
    return [
        AttemptOut(
            attempt=record.attempt,
            outcome=record.outcome,
            started_at=record.started_at,
            ended_at=record.ended_at,
            error_type=record.error_type or None,
            error_message=(record.error_message if exposed else GENERIC_ERROR_MESSAGE)
            if record.error_type
            else None,
            worker=record.worker or None if exposed else None,
        )
        for record in history
    ]


class WorkflowRefOut(_Out):
    """The workflow a run belongs to (``tasks.chain``, ``tasks.group``, ``tasks.batch``)."""

    id: str
    kind: str = Field(description="chain, group or batch.")
    position: int = Field(description="The run's step (a chain) or member number (0-based).")
    role: str = Field(description="member (a step or member), or callback (a group's).")


class RunStatusOut(_Out):
    """A run's last known state, from a backend that keeps results."""

    run_id: str
    task: str
    status: TaskStatus
    attempts: int
    result: Any = None
    error: ErrorOut | None = None
    progress: ProgressOut | None = Field(
        default=None,
        description="The last progress reported, on backends that store it (DatabaseBackend); "
        "null otherwise or before the first report.",
    )
    history: list[AttemptOut] = Field(
        default_factory=list,
        description="The run's attempts, oldest first, on backends that keep them "
        "(DatabaseBackend: the last 10 earlier attempts and the last one); empty otherwise.",
    )
    workflow: WorkflowRefOut | None = Field(
        default=None,
        description="The workflow this run is part of, on backends that keep workflows; null "
        "for a run started alone.",
    )


class DetailOut(_Out):
    """An error that is not about a task's own failure."""

    detail: str


class ValidationErrorOut(_Out):
    """Field-level validation errors, as django-ninja reports them."""

    detail: list[dict[str, Any]]


def body_model(params_model: type[BaseModel]) -> type[BaseModel]:
    """The params model as the body schema, rejecting unknown fields like ``start()`` does."""
    if "extra" in params_model.model_config:
        return params_model
    return type(
        params_model.__name__,
        (params_model,),
        {
            "model_config": ConfigDict(**{**params_model.model_config, "extra": "forbid"}),
            "__module__": params_model.__module__,
            "__qualname__": params_model.__qualname__,
            "__doc__": params_model.__doc__,
        },
    )


def run_headers_openapi(*, push_queue: bool = True) -> dict[str, Any]:
    """OpenAPI ``parameters`` and response descriptions for ``POST <mount>/<Task.name>``.

    The push headers are documented only when the endpoint's auth authenticates the push
    queue (``push_queue``): any other caller's are ignored, so they are no part of its API.
    """
    if not push_queue:
        return copy.deepcopy(_RUN_RESPONSES)
    return {"parameters": push_headers_openapi(), **copy.deepcopy(_RUN_RESPONSES)}


def jsonable(value: Any) -> Any:
    """``value`` as JSON-compatible data, or ``None`` when it cannot be represented."""
    if value is None:
        return None
    try:
        return to_jsonable_python(value)
    except (PydanticSerializationError, TypeError, ValueError):
        return None


def expose_error_messages() -> bool:
    """Whether error bodies carry exception messages: ``DEBUG`` or the explicit opt-in
    ``TASKS_API_EXPOSE_ERROR_MESSAGES`` (messages may hold URLs, hosts, credentials)."""
    return bool(settings.DEBUG) or get_settings().api_expose_error_messages


def error_out(error: ErrorInfo | None) -> ErrorOut | None:
    """``error`` for an HTTP caller: its type; its message only when ``expose_error_messages()``;
    the traceback only when ``DEBUG``."""
    if error is None:
        return None
    return ErrorOut(
        type=error.type,
        message=error.message if expose_error_messages() else GENERIC_ERROR_MESSAGE,
        traceback=error.traceback if settings.DEBUG else None,
    )


def request_body_openapi(params_model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a task's endpoints: its params model's JSON schema.

    The views read the body themselves, so the schema is given here, self-contained: nested
    models are written in place (a model that contains itself becomes a plain object there).
    """
    schema = body_model(params_model).model_json_schema(
        ref_template="#/$defs/{model}", schema_generator=BodyJsonSchema
    )
    definitions = schema.pop("$defs", {})
    return {
        "requestBody": {
            "content": {"application/json": {"schema": _inline(schema, definitions, ())}},
            "required": True,
        }
    }


class BodyJsonSchema(GenerateJsonSchema):
    """The JSON schema of a request body as the views validate it: a nested model refuses
    unknown fields unless it sets ``extra`` itself, and a decimal sent as a string must look
    like one (and, for a non-negative decimal below a power of ten, like one in range)."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        """A model's schema; ``additionalProperties: false`` unless it sets ``extra``."""
        json_schema = super().model_schema(schema)
        if "extra" not in schema["cls"].model_config and json_schema.get("type") == "object":
            json_schema.setdefault("additionalProperties", False)
        return json_schema

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        """A number, or a string in plain decimal notation within the bounds it can show."""
        json_schema = super().decimal_schema(schema)
        for branch in json_schema.get("anyOf", ()):
            if branch.get("type") == "string":
                branch["pattern"] = decimal_pattern(schema)
        return json_schema


def decimal_pattern(schema: core_schema.DecimalSchema) -> str:
    """A pattern of the strings a decimal field takes (plain notation, ASCII digits): no minus
    sign but ``-0`` when its lower bound is not negative; as many integer digits as its upper
    bound has (exact when the bound is ``lt`` a power of ten, as ``lt=1`` or ``lt=10**6``)."""
    low = schema.get("ge", schema.get("gt"))
    high = schema.get("lt", schema.get("le"))
    digits = "[0-9]+"
    if high is not None and low is not None and low >= 0:
        integer_digits = len(str(int(high)))
        width = integer_digits - 1 if high == 10 ** (integer_digits - 1) else integer_digits
        digits = f"0*[0-9]{{1,{width}}}" if width else "0+"
    number = f"({digits}(\\.[0-9]*)?|0*\\.[0-9]+)"
    if low is not None and low >= 0:
        return f"^(\\+?{number}|-(0+(\\.0*)?|0*\\.0+))$"
    return f"^[+-]?{number}$"


def _inline(node: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        rest = {k: _inline(v, definitions, seen) for k, v in node.items() if k != "$ref"}
        if name in seen or name not in definitions:
            return {"type": "object", "title": name, **rest}
        return {**_inline(copy.deepcopy(definitions[name]), definitions, (*seen, name)), **rest}
    return {key: _inline(value, definitions, seen) for key, value in node.items()}


RETRIED_BY_THE_QUEUE = (
    "The attempt failed; the push queue that delivered it retries it (this answer is 500)."
)
FAILED_FOR_GOOD = "The run failed for good; nobody retries it."
FAILED_DIRECT_CALL = (
    "The run failed and was not retried: a direct call runs one attempt, nothing retries it, "
    "and the run is not stored (runs/<run_id> does not know it). Call again to retry, or "
    "start it with POST <mount>/<task>/start to run it on TASKS_BACKEND with retries."
)


def envelope(outcome: Outcome, *, direct: bool = False) -> RunOut:
    """The response body for one executed attempt (``direct``: not a push queue's delivery)."""
    detail = None
    status = outcome.run_status
    if outcome.decision.retry:
        detail = RETRIED_BY_THE_QUEUE
    elif status is TaskStatus.FAILED:
        detail = FAILED_DIRECT_CALL if direct else FAILED_FOR_GOOD
    return RunOut(
        run_id=outcome.run_id,
        task=outcome.task_name,
        status=status,
        attempt=outcome.attempt,
        max_attempts=outcome.max_attempts,
        result=jsonable(outcome.result),
        error=error_out(outcome.error),
        retry_at=outcome.retry_at,
        retried_by="push_queue" if outcome.will_retry else None,
        detail=detail,
    )


def envelope_json(outcome: Outcome, *, direct: bool = False) -> bytes:
    """``envelope(outcome)`` serialised: the same JSON, without building the model when the
    attempt has neither error nor retry time (the hot path of push queues)."""
    if outcome.error is not None or outcome.decision.retry:
        return envelope(outcome, direct=direct).model_dump_json().encode()
    return to_json(
        {
            "run_id": outcome.run_id,
            "task": outcome.task_name,
            "status": outcome.status,
            "attempt": outcome.attempt,
            "max_attempts": outcome.max_attempts,
            "result": jsonable(outcome.result),
            "error": None,
            "retry_at": None,
            "retried_by": None,
            "detail": None,
        },
        inf_nan_mode="null",  # as RunOut's serialiser (Pydantic's default for models)
    )


def http_status(outcome: Outcome, *, direct: bool = False) -> int:
    """The answer to an executed attempt, from the retry policy's decision: 500 when it wants
    another attempt (a push queue retries on 5xx) or, for a direct call, when the attempt
    failed (final: a direct call runs one attempt); else 200. (An attempt refused before it
    ran, ``CapacityExceededError``, is a 503 from the view: no decision was made.)"""
    if not direct:
        return answer_status(outcome)  # the push queue's meaning of the answer
    return 500 if outcome.status is TaskStatus.FAILED or outcome.decision.retry else 200
