"""Which tasks are on the router, what an HTTP caller may do with a task's params, whose keys.

- Exposure: a task has endpoints when its ``api_exposed`` says so, else when
  ``TASKS_API_EXPOSED_BY_DEFAULT`` does (``True`` unless set).
- Object-level authorization: before a direct call runs or a start starts, the params'
  ``ModelRef`` rows are loaded and ``task.api_authorize(request)`` is asked; a row that does
  not exist answers exactly like a refusal (403, one body), so callers cannot probe for rows.
- Caller-scoped keys: ``POST <task>/start?key=`` is stored under the caller's scope
  (``task.api_key_scope(request)``, default the caller's identity), so two callers never share
  a key, and HTTP keys never meet the keys of ``start(key=...)`` calls in code.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from pydantic import BaseModel

from ..conf import get_settings
from ..core.modelref import resolve_model_refs
from ..core.params import dump_params
from ..core.task import Task
from ..exceptions import ModelNotFoundError

FORBIDDEN = "You may not run this task with these params."
KEY_PREFIX = "http:"
"""Stored keys of HTTP starts begin with it (``start(key=...)`` in code never collides)."""
MAX_STORED_KEY = 255  # TaskRun.key's max_length


def is_exposed(task_class: type[Any]) -> bool:
    """Whether the router gives ``task_class`` endpoints (``api_exposed``, else the setting)."""
    exposed = getattr(task_class, "api_exposed", None)
    if exposed is None:
        return get_settings().api_exposed_by_default
    return bool(exposed)


def authorizes(task_class: type[Any]) -> bool:
    """Whether ``task_class`` defines its own ``api_authorize``."""
    return getattr(task_class, "api_authorize", None) is not Task.api_authorize


def checks_objects(task_class: type[Any]) -> bool:
    """Whether HTTP calls of ``task_class`` load model refs or ask ``api_authorize`` first."""
    return authorizes(task_class) or bool(getattr(task_class, "_has_model_refs", False))


def authorize(task: Any, request: HttpRequest) -> None:
    """Load ``task.params``' model refs, then ask ``task.api_authorize(request)``: 403 when a
    row is missing or the answer is false (the same 403 for both)."""
    try:
        resolve_model_refs(task.params)
    except ModelNotFoundError:
        raise HttpError(403, FORBIDDEN) from None
    if task.api_authorize(request) is not True:
        raise HttpError(403, FORBIDDEN)


def caller_identity(request: HttpRequest) -> str:
    """Who calls, as the auth says: its return value (a user, OIDC claims, a string or number),
    else the session user; ``""`` for an anonymous caller (one scope for all of them)."""
    auth = getattr(request, "auth", None)
    identity = _identity_of(auth)
    if identity is None:
        identity = _identity_of(getattr(request, "user", None))
    return identity or ""


def _identity_of(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None  # True: an auth that admits without saying who
    if isinstance(value, str | int):
        return f"auth:{value}"
    if isinstance(value, dict):  # OIDC claims (GoogleOIDCAuth) or a similar token
        for claim in ("sub", "email"):
            if value.get(claim):
                return f"{claim}:{value.get('iss', '')}:{value[claim]}"
        return None
    if getattr(value, "is_authenticated", False) and getattr(value, "pk", None) is not None:
        meta = getattr(value, "_meta", None)
        return f"user:{getattr(meta, 'label_lower', type(value).__name__)}:{value.pk}"
    return None


def scoped_key(task: Any, request: HttpRequest, key: str) -> str:
    """The key stored for ``key`` sent by the caller of ``request``: ``http:<scope hash>:key``
    (the key hashed too when the whole would not fit the column)."""
    scope = task.api_key_scope(request)
    if scope is None:
        scope = caller_identity(request)
    digest = hashlib.sha256(scope.encode()).hexdigest()[:32]
    stored = f"{KEY_PREFIX}{digest}:{key}"
    if len(stored) > MAX_STORED_KEY:
        stored = f"{KEY_PREFIX}{digest}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return stored


_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def has_nul(body: bytes) -> bool:
    """Whether the JSON ``body`` holds a NUL character (``\\u0000``, not an escaped backslash
    followed by ``u0000``). Raw control characters are not JSON, so this is the only way."""
    return b"\\u0000" in body and _NUL_ESCAPE.search(body) is not None


def same_params(params: BaseModel, stored: Any) -> bool:
    """Whether ``stored`` (a run's params as JSON data) are ``params``."""
    return bool(json.loads(dump_params(params)) == stored)
