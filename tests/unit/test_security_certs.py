"""The OIDC certificates cache against real local servers: a slow one, and a controlled clock.

Attacks and mutants it pins (issue 10, items 10 and 17): a server dripping the certificates
must not hold requests past one total deadline, nor make more than one fetch at a time;
expired certificates keep serving while a refresh runs; plain http is refused unless
loopback; a fresh cache is never refetched, a stale one is, and unknown key ids cannot make a
fetch per request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from django_generic_tasks import security
from django_generic_tasks.exceptions import ConfigurationError
from django_generic_tasks.security import CertificatesUnavailable, CertsCache
from tests.oidc_support import (
    CertsServer,
    SigningKey,
    certs_server,
    mint_token,
    oidc_settings,
    signing_key,
)
from tests.testapp.tasks import calls

__all__ = ["certs_server", "oidc_settings", "signing_key"]

pytestmark = pytest.mark.django_db


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server(signing_key: SigningKey) -> Iterator[CertsServer]:
    with CertsServer({signing_key.kid: signing_key.cert_pem}, max_age=300) as running:
        yield running


def test_slow_certs_server_cannot_hold_concurrent_cold_requests_past_one_deadline(
    server: CertsServer, signing_key: SigningKey
) -> None:
    server.drip = 12.0  # the whole body takes 12 s to arrive
    cache = CertsCache(server.url, timeout=0.5)
    outcomes: list[str] = []

    def cold_request() -> None:
        try:
            cache.get(signing_key.kid)
            outcomes.append("certs")
        except CertificatesUnavailable:
            outcomes.append("503")

    threads = [threading.Thread(target=cold_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == ["503"] * 4
    assert not server.drip_done.is_set()  # they gave up while the body was still arriving
    assert server.requests == 1  # one fetch for all four
    assert cache.wait_for_refresh(30)


def test_a_cold_request_to_the_endpoint_answers_503_while_the_certs_server_drips(
    oidc_settings: CertsServer, signing_key: SigningKey
) -> None:
    oidc_settings.drip = 12.0
    security.certs_cache(oidc_settings.url).timeout = 0.5
    try:
        response = Client().post(
            "/api/tasks/tests.add",
            {"a": 1},
            content_type="application/json",
            headers={"Authorization": f"Bearer {mint_token(key=signing_key)}"},
        )
        assert response.status_code == 503
        assert not oidc_settings.drip_done.is_set()
        assert calls == []
    finally:
        security.certs_cache(oidc_settings.url).timeout = 5.0


def test_expired_certs_are_served_while_a_slow_refresh_is_in_flight(
    server: CertsServer, signing_key: SigningKey
) -> None:
    clock = Clock()
    cache = CertsCache(server.url, timeout=5.0, clock=clock)
    assert signing_key.kid in cache.get(signing_key.kid)
    clock.now += 301  # expired
    server.drip = 12.0
    assert signing_key.kid in cache.get(signing_key.kid)  # at once, from the expired cache
    assert not cache.wait_for_refresh(0)  # while the refresh is still running
    assert server.dripping.wait(10)
    assert not server.drip_done.is_set()
    assert signing_key.kid in cache.get(signing_key.kid)
    assert server.requests == 2  # and a second request did not start another fetch


@pytest.mark.parametrize(
    "url",
    [
        "http://www.googleapis.com/oauth2/v1/certs",
        "http://10.0.0.7/certs",
        "ftp://127.0.0.1/certs",
        "https:///no-host",
    ],
)
def test_certs_url_that_is_not_https_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="https"):
        security.certs_cache(url)


def test_oidc_with_a_plain_http_certs_url_fails_closed(
    oidc_settings: CertsServer, signing_key: SigningKey, settings: Any
) -> None:
    settings.TASKS_OIDC_CERTS_URL = "http://certs.example.test/oauth2/v1/certs"
    with pytest.raises(ConfigurationError):
        Client().post(
            "/api/tasks/tests.add",
            {"a": 1},
            content_type="application/json",
            headers={"Authorization": f"Bearer {mint_token(key=signing_key)}"},
        )
    assert calls == []


def test_fresh_certs_are_never_refetched(server: CertsServer, signing_key: SigningKey) -> None:
    clock = Clock()
    cache = CertsCache(server.url, clock=clock)
    for step in (0, 100, 100, 99):  # up to 299 s after the fetch of a max-age=300 document
        clock.now += step
        assert signing_key.kid in cache.get(signing_key.kid)
        assert cache.wait_for_refresh(10)
    assert (cache.fetches, server.requests) == (1, 1)


def test_stale_certs_are_refetched(server: CertsServer, signing_key: SigningKey) -> None:
    clock = Clock()
    cache = CertsCache(server.url, clock=clock)
    cache.get(signing_key.kid)
    clock.now += 301
    cache.get(signing_key.kid)
    assert cache.wait_for_refresh(10)
    assert (cache.fetches, server.requests) == (2, 2)
    cache.get(signing_key.kid)  # fresh again
    assert cache.wait_for_refresh(10)
    assert server.requests == 2


def test_unknown_key_ids_fetch_at_most_once_per_interval(
    server: CertsServer, signing_key: SigningKey
) -> None:
    clock = Clock()
    cache = CertsCache(server.url, clock=clock, min_interval=5.0)
    cache.get(signing_key.kid)
    for n in range(10):  # a flood of tokens naming keys nobody published, within 5 s
        clock.now += 0.4
        assert f"forged-{n}" not in cache.get(f"forged-{n}")
    assert cache.wait_for_refresh(10)
    assert server.requests == 1
    clock.now += 1.5  # 5.5 s after the first fetch: one more may go
    cache.get("forged-again")
    cache.get("forged-once-more")
    assert cache.wait_for_refresh(10)
    assert server.requests == 2
