"""Who may call the tasks endpoints: auth per task, CSRF for session auth, JSON bodies only.

Every operation of the router is wrapped, with django-ninja's public ``decorate_view``, by a
guard that runs before django-ninja's own auth and throttles:

1. a ``POST`` whose ``Content-Type`` is not ``application/json`` answers 415 (a cross-site
   form cannot send JSON without a CORS preflight);
2. when the auth that applies may accept a session cookie (a callable checking
   ``request.user``) and the request carries one, Django's CSRF check must pass (403);
3. the auth that applies is called, unless django-ninja calls it (operations built while it
   was configured carry ``TasksAuth``): ``request.auth`` is set only when a caller was
   authenticated, never on open endpoints, so django-ninja's throttles see anonymous callers.

``GET <mount>/runs/<run_id>`` is authorized with the auth of the run's task, found from the
run; a run that is unknown, or whose task is, answers 404 alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.middleware.csrf import CsrfViewMiddleware
from ninja.errors import AuthenticationError, HttpError

from ..security.auth import AuthCallable, auth_for_task, may_use_session

JSON_MEDIA_TYPE = "application/json"


class TasksAuth:
    """django-ninja auth of a task's endpoints, resolved per request from the settings.

    The task's ``api_auth`` attribute wins over ``TASKS_API_AUTHENTICATION``. Operations carry
    it when auth was configured as the router built them, so the OpenAPI document shows it.
    """

    def __init__(self, task_class: type[Any] | None) -> None:
        self.task_class = task_class

    @property
    def openapi_security_schema(self) -> Any:
        """Bearer in the OpenAPI document when the endpoint uses OIDC or a ninja auth class."""
        try:
            auth = auth_for_task(self.task_class)
        except Exception:
            auth = None
        schema = getattr(auth, "openapi_security_schema", None)
        if schema is None:
            raise AttributeError("openapi_security_schema")
        return schema

    def __call__(self, request: HttpRequest) -> Any:
        """The configured auth's result; ``True`` if the settings made the endpoint open since
        the router was built (only tests change settings at run time)."""
        auth = auth_for_task(self.task_class)
        if auth is None:
            return True
        return call_auth(auth, request)


def call_auth(auth: AuthCallable, request: HttpRequest) -> Any:
    """``auth(request)``, awaited when it is a coroutine (an async ``authenticate``)."""
    result = auth(request)
    if hasattr(result, "__await__"):
        from asgiref.sync import async_to_sync

        async def wait() -> Any:
            return await result

        result = async_to_sync(wait)()
    return result


def _forbidden(request: HttpRequest) -> HttpResponse:
    return HttpResponseForbidden()


def _csrf_view(request: HttpRequest) -> HttpResponse:  # a view that is not csrf_exempt
    return HttpResponseForbidden()


def csrf_fails(request: HttpRequest) -> bool:
    """Whether Django's CSRF check rejects ``request`` (the router's views are exempt from the
    middleware, since most callers send tokens, not cookies)."""
    middleware = CsrfViewMiddleware(_forbidden)
    request.csrf_processing_done = False  # type: ignore[attr-defined]
    middleware.process_request(request)
    return middleware.process_view(request, _csrf_view, (), {}) is not None


def has_session_cookie(request: HttpRequest) -> bool:
    """Whether ``request`` carries Django's session cookie."""
    return settings.SESSION_COOKIE_NAME in request.COOKIES


Respond = Callable[[HttpRequest, Exception], HttpResponse]


def admit(
    request: HttpRequest, auth: AuthCallable | None, *, authenticate: bool, respond: Respond
) -> HttpResponse | None:
    """CSRF for session auth, then ``auth`` unless django-ninja calls it; ``None`` admits."""
    if auth is None:
        return None
    if has_session_cookie(request) and may_use_session(auth) and csrf_fails(request):
        return respond(request, HttpError(403, "CSRF verification failed."))
    if not authenticate:
        return None
    try:
        result = call_auth(auth, request)
    except Exception as exc:
        return respond(request, exc)
    if not result:
        return respond(request, AuthenticationError())
    request.auth = result  # type: ignore[attr-defined]
    return None


def json_body_required(request: HttpRequest, respond: Respond) -> HttpResponse | None:
    """415 for a ``POST`` whose body is not declared ``application/json``."""
    if request.method == "POST" and request.content_type != JSON_MEDIA_TYPE:
        return respond(request, HttpError(415, "Send the body as Content-Type: application/json."))
    return None


def responder(run: Callable[..., Any]) -> Respond:
    """``api.on_exception`` of the operation ``run`` belongs to (errors as the API words them)."""
    operation = getattr(run, "__self__", None)

    def respond(request: HttpRequest, exc: Exception) -> HttpResponse:
        api = getattr(operation, "api", None)
        if api is None:
            raise exc
        return api.on_exception(request, exc)  # type: ignore[no-any-return]

    return respond


def task_guard(
    task_class: type[Any] | None, *, ninja_auth: bool
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The guard of a task's operations (``task_class`` ``None``: the global auth's)."""

    def decorator(run: Callable[..., Any]) -> Callable[..., Any]:
        respond = responder(run)

        @functools.wraps(run)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refused = json_body_required(request, respond)
            if refused is None:
                auth = auth_for_task(task_class)
                refused = admit(request, auth, authenticate=not ninja_auth, respond=respond)
            if refused is not None:
                return refused
            return run(request, *args, **kwargs)

        return guarded

    return decorator
