"""OIDC authentication: the forgery matrix, certificate caching, and failure answers.

Tokens are minted locally (RS256 with a key published by a local certs server): no network.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from django_generic_tasks import security
from django_generic_tasks.backends import InMemoryBackend
from django_generic_tasks.conf import override_backend
from tests.oidc_support import (
    OIDC_AUDIENCE,
    OIDC_EMAIL,
    CertsServer,
    SigningKey,
    certs_server,
    google_claims,
    make_signing_key,
    mint_token,
    oidc_settings,
    other_signing_key,
    signing_key,
)
from tests.testapp.tasks import AddTask, calls

__all__ = ["certs_server", "oidc_settings", "other_signing_key", "signing_key"]

URL = "/api/tasks/tests.add"
pytestmark = [pytest.mark.usefixtures("oidc_settings"), pytest.mark.django_db]


def call(authorization: str | None) -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    return Client().post(URL, {"a": 1}, content_type="application/json", headers=headers)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def _tamper_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    new = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{new}.{signature}"


Forgery = Callable[[SigningKey, SigningKey], str | None]

FORGERIES: dict[str, tuple[Forgery, int]] = {
    "missing Authorization header": (lambda k, o: None, 401),
    "Basic instead of Bearer": (lambda k, o: "Basic " + mint_token(key=k), 401),
    "Bearer with an empty token": (lambda k, o: "Bearer ", 401),
    "garbage token": (lambda k, o: bearer("garbage"), 401),
    "three garbage segments": (lambda k, o: bearer("a.b.c"), 401),
    "wrong aud": (
        lambda k, o: bearer(mint_token(google_claims(audience="https://evil.test/"), key=k)),
        401,
    ),
    "no aud": (
        lambda k, o: bearer(mint_token({**google_claims(), "aud": None}, key=k)),
        401,
    ),
    "wrong iss": (
        lambda k, o: bearer(mint_token(google_claims(iss="https://evil.test"), key=k)),
        401,
    ),
    "expired": (
        lambda k, o: bearer(
            mint_token(google_claims(issued_at=time.time() - 7200, lifetime=3600), key=k)
        ),
        401,
    ),
    "iat in the future beyond the skew": (
        lambda k, o: bearer(mint_token(google_claims(issued_at=time.time() + 120), key=k)),
        401,
    ),
    "no exp": (
        lambda k, o: bearer(
            mint_token({c: v for c, v in google_claims().items() if c != "exp"}, key=k)
        ),
        401,
    ),
    "no iat": (
        lambda k, o: bearer(
            mint_token({c: v for c, v in google_claims().items() if c != "iat"}, key=k)
        ),
        401,
    ),
    "alg none": (lambda k, o: bearer(mint_token(key=k, alg="none")), 401),
    "HS256 signed with the public key as secret": (
        lambda k, o: bearer(mint_token(key=k, alg="HS256")),
        401,
    ),
    "unknown kid": (lambda k, o: bearer(mint_token(key=k, kid="not-published")), 401),
    "no kid": (lambda k, o: bearer(mint_token(key=k, kid="")), 401),
    "signed by another key": (lambda k, o: bearer(mint_token(key=o)), 401),
    "claims changed after signing": (
        lambda k, o: bearer(_tamper_payload(mint_token(key=k), email="root@evil.test")),
        401,
    ),
    "email not allowed": (
        lambda k, o: bearer(mint_token(google_claims(email="someone@gmail.com"), key=k)),
        403,
    ),
    "email_verified false": (
        lambda k, o: bearer(mint_token(google_claims(email_verified=False), key=k)),
        403,
    ),
    "email_verified as the string 'true'": (
        lambda k, o: bearer(mint_token(google_claims(email_verified="true"), key=k)),
        403,
    ),
    "email claim that is not a string": (
        lambda k, o: bearer(mint_token(google_claims(email=[OIDC_EMAIL]), key=k)),
        403,
    ),
    "iss claim that is not a string": (
        lambda k, o: bearer(mint_token(google_claims(iss=["https://accounts.google.com"]), key=k)),
        401,
    ),
    "valid token for a different service": (
        lambda k, o: bearer(
            mint_token(
                google_claims(
                    audience="https://other-service.example.test/hooks/",
                    email="other-invoker@example-project.iam.gserviceaccount.com",
                ),
                key=k,
            )
        ),
        401,
    ),
}


@pytest.mark.parametrize("case", list(FORGERIES), ids=list(FORGERIES))
def test_forged_or_unfit_token_is_rejected_never_500(
    case: str, signing_key: SigningKey, other_signing_key: SigningKey
) -> None:
    forge, expected = FORGERIES[case]
    response = call(forge(signing_key, other_signing_key))
    assert response.status_code == expected, response.content
    assert "detail" in response.json()
    assert "Traceback" not in response.content.decode()
    assert calls == []


def test_valid_token_runs_the_task(signing_key: SigningKey) -> None:
    response = call(bearer(mint_token(key=signing_key)))
    assert response.status_code == 200, response.content
    assert response.json()["result"] == 1
    assert calls == [("tests.add", 1)]


@pytest.mark.parametrize("issuer", sorted(security.GOOGLE_ISSUERS))
def test_both_google_issuer_spellings_are_accepted(signing_key: SigningKey, issuer: str) -> None:
    assert call(bearer(mint_token(google_claims(iss=issuer), key=signing_key))).status_code == 200


def test_small_clock_drift_within_the_skew_is_accepted(signing_key: SigningKey) -> None:
    token = mint_token(google_claims(issued_at=time.time() + 5), key=signing_key)
    assert call(bearer(token)).status_code == 200


def test_start_and_runs_endpoints_need_the_token_too(signing_key: SigningKey) -> None:
    client = Client()
    assert client.post(URL + "/start", {"a": 1}, content_type="application/json").status_code == 401
    assert client.get("/api/tasks/runs/abc").status_code == 401
    assert (
        client.post("/api/tasks/tests.nope", {}, content_type="application/json").status_code == 401
    )
    ok = client.post(
        URL + "/start",
        {"a": 1},
        content_type="application/json",
        headers={"Authorization": bearer(mint_token(key=signing_key))},
    )
    assert ok.status_code == 202


def test_reading_a_run_with_a_token_signed_by_another_key_answers_401(
    signing_key: SigningKey, other_signing_key: SigningKey
) -> None:
    # The run exists and its task is guarded by OIDC: only the auth stands in the way.
    with override_backend(InMemoryBackend()):
        run_id = AddTask({"a": 1}).start().id
        forged = Client().get(
            f"/api/tasks/runs/{run_id}",
            headers={"Authorization": bearer(mint_token(key=other_signing_key))},
        )
        genuine = Client().get(
            f"/api/tasks/runs/{run_id}",
            headers={"Authorization": bearer(mint_token(key=signing_key))},
        )
    assert forged.status_code == 401, forged.content
    assert run_id not in forged.content.decode()
    assert (genuine.status_code, genuine.json()["run_id"]) == (200, run_id)


def test_certs_are_fetched_once_and_cached_per_max_age(
    signing_key: SigningKey, oidc_settings: CertsServer
) -> None:
    for _ in range(5):
        assert call(bearer(mint_token(key=signing_key))).status_code == 200
    assert oidc_settings.requests == 1


def test_unknown_kids_do_not_make_a_fetch_per_request(
    signing_key: SigningKey, oidc_settings: CertsServer
) -> None:
    assert call(bearer(mint_token(key=signing_key))).status_code == 200
    for n in range(5):
        assert call(bearer(mint_token(key=signing_key, kid=f"k{n}"))).status_code == 401
    assert oidc_settings.requests == 1


def test_rotated_key_is_picked_up_by_a_refetch(oidc_settings: CertsServer) -> None:
    cache = security.certs_cache(oidc_settings.url)
    cache.min_interval = 0
    try:
        new_key = make_signing_key("rotated-key")
        oidc_settings.certs[new_key.kid] = new_key.cert_pem
        assert call(bearer(mint_token(key=new_key))).status_code == 200
    finally:
        cache.min_interval = 5.0


def test_expired_cache_is_refreshed(signing_key: SigningKey, oidc_settings: CertsServer) -> None:
    oidc_settings.max_age = 0
    cache = security.certs_cache(oidc_settings.url)
    cache.min_interval = 0
    try:
        assert call(bearer(mint_token(key=signing_key))).status_code == 200
        # expired: served while the refresh runs in the background
        assert call(bearer(mint_token(key=signing_key))).status_code == 200
        assert cache.wait_for_refresh(10)
        assert oidc_settings.requests == 2
    finally:
        cache.min_interval = 5.0


def test_certs_fetch_failure_answers_503_not_500(
    signing_key: SigningKey, oidc_settings: CertsServer
) -> None:
    oidc_settings.fail = True
    response = call(bearer(mint_token(key=signing_key)))
    assert response.status_code == 503
    assert calls == []


def test_unreachable_certs_url_answers_503(signing_key: SigningKey, settings: Any) -> None:
    settings.TASKS_OIDC_CERTS_URL = "http://127.0.0.1:9/certs"
    security.certs_cache(settings.TASKS_OIDC_CERTS_URL).clear()
    assert call(bearer(mint_token(key=signing_key))).status_code == 503


def test_cached_certs_are_kept_when_a_refresh_fails(
    signing_key: SigningKey, oidc_settings: CertsServer
) -> None:
    oidc_settings.max_age = 0
    cache = security.certs_cache(oidc_settings.url)
    assert call(bearer(mint_token(key=signing_key))).status_code == 200
    oidc_settings.fail = True
    cache.min_interval = 0
    try:
        assert call(bearer(mint_token(key=signing_key))).status_code == 200
    finally:
        cache.min_interval = 5.0


def test_certs_stale_beyond_the_limit_are_not_used(
    signing_key: SigningKey, oidc_settings: CertsServer
) -> None:
    oidc_settings.max_age = 0
    cache = security.certs_cache(oidc_settings.url)
    assert call(bearer(mint_token(key=signing_key))).status_code == 200
    oidc_settings.fail = True
    cache.min_interval, cache.max_stale = 0, 0
    try:
        assert call(bearer(mint_token(key=signing_key))).status_code == 503
    finally:
        cache.min_interval, cache.max_stale = 5.0, 86400.0


def test_incomplete_oidc_settings_fail_closed(signing_key: SigningKey, settings: Any) -> None:
    settings.TASKS_OIDC_SERVICE_ACCOUNTS = []
    with pytest.raises(security.ConfigurationError):
        call(bearer(mint_token(key=signing_key)))
    assert calls == []


def test_the_verifier_returns_the_claims(signing_key: SigningKey) -> None:
    claims = security.OIDCVerifier.from_settings().verify(mint_token(key=signing_key))
    assert (claims["email"], claims["aud"]) == (OIDC_EMAIL, OIDC_AUDIENCE)


def test_push_headers_are_trusted_from_the_push_queue(signing_key: SigningKey) -> None:
    headers = {
        "Authorization": bearer(mint_token(key=signing_key)),
        "X-Task-Run-Id": "run-from-the-queue",
        "X-CloudTasks-TaskName": "t-1",
        "X-CloudTasks-TaskRetryCount": "2",
    }
    response = Client().post(URL, {"a": 1}, content_type="application/json", headers=headers)
    assert (response.json()["run_id"], response.json()["attempt"]) == ("run-from-the-queue", 3)
    invalid = Client().post(URL, {"a": "x"}, content_type="application/json", headers=headers)
    assert (invalid.status_code, invalid.json()["status"]) == (200, "failed")
