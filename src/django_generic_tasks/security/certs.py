"""Google's token signing certificates: fetched over https, cached per ``max-age``, one fetch
at a time with one total deadline, stale ones served while a refresh is in flight."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ninja.errors import HttpError

from ..exceptions import ConfigurationError

logger = logging.getLogger("django_generic_tasks")

_MAX_BODY = 1_000_000
_CHUNK = 16_384


class CertificatesUnavailable(HttpError):
    """Google's signing certificates could not be fetched: answer 503 so the caller retries."""

    def __init__(self, message: str = "Token signing certificates are unavailable.") -> None:
        super().__init__(503, message)


def check_certs_url(url: str) -> None:
    """Raise ``ConfigurationError`` unless ``url`` is https, or http to a loopback address.

    Tokens are verified against what this URL serves: over plain http anyone on the path
    could serve their own keys and mint tokens the endpoint would accept.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise ConfigurationError(
        f"TASKS_OIDC_CERTS_URL {url!r} must be an https URL (plain http is only accepted for a "
        "loopback address such as 127.0.0.1, for tests)."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _CachedCerts:
    certs: dict[str, str]
    expires_at: float


@dataclass
class CertsCache:
    """``{kid: PEM certificate}`` from ``url``, kept for the response's ``Cache-Control: max-age``.

    Certificates are never fetched per request: a fetch starts when the cache has expired, or
    when a token names an unknown ``kid`` (key rotation), and never more often than once per
    ``min_interval`` seconds. One fetch runs at a time, on its own thread, and gives up after
    ``timeout`` seconds in all (not per socket read). While it runs, requests whose key is in
    the expired cache are served from it; requests that have nothing usable wait for the
    fetch, at most until its deadline. Cached certificates stay usable for ``max_stale``
    seconds past their expiry when refreshes fail; after that, and with none cached, requests
    get ``CertificatesUnavailable`` (503). ``clock`` is ``time.monotonic`` (tests replace it).
    """

    url: str
    timeout: float = 5.0
    min_interval: float = 5.0
    default_max_age: float = 300.0
    max_stale: float = 86400.0
    clock: Callable[[], float] = time.monotonic
    fetches: int = 0
    _cached: _CachedCerts | None = None
    _last_attempt: float = float("-inf")
    _inflight: threading.Event | None = None
    _inflight_deadline: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, kid: str | None = None) -> dict[str, str]:
        """The current certificates; a refresh starts first if expired or ``kid`` is unknown."""
        cached = self._cached
        now = self.clock()
        if cached is not None and now < cached.expires_at and (kid is None or kid in cached.certs):
            return cached.certs
        flight = self._refresh(now)
        if (
            cached is not None
            and (kid is None or kid in cached.certs)
            and now <= cached.expires_at + self.max_stale
        ):
            return cached.certs  # stale, while the refresh runs (or was just tried)
        if flight is not None:
            flight.wait(max(0.0, self._inflight_deadline - time.monotonic()))
        cached = self._cached
        if cached is None or self.clock() > cached.expires_at + self.max_stale:
            raise CertificatesUnavailable()
        return cached.certs

    def wait_for_refresh(self, timeout: float | None = None) -> bool:
        """Wait until no fetch is in flight; ``False`` if one still is after ``timeout``."""
        flight = self._inflight
        return flight is None or flight.wait(timeout)

    def clear(self) -> None:
        """Forget the cached certificates and the fetch throttle (tests)."""
        self.wait_for_refresh(self.timeout)
        with self._lock:
            self._cached = None
            self._last_attempt = float("-inf")

    def _refresh(self, now: float) -> threading.Event | None:
        """Start a fetch unless one is in flight or one was tried too recently.

        Returns the in-flight fetch's event (new or running), ``None`` when throttled.
        """
        with self._lock:
            if self._inflight is not None:
                return self._inflight
            if now - self._last_attempt < self.min_interval:
                return None
            self._last_attempt = now
            flight = self._inflight = threading.Event()
            self._inflight_deadline = time.monotonic() + self.timeout
        thread = threading.Thread(
            target=self._fetch_in_background, args=(flight,), name="tasks-oidc-certs", daemon=True
        )
        thread.start()
        return flight

    def _fetch_in_background(self, flight: threading.Event) -> None:
        try:
            cached = self._fetch()
        except Exception as exc:
            logger.warning("Could not fetch OIDC certificates from %s: %s", self.url, exc)
        else:
            self._cached = cached
        finally:
            with self._lock:
                self._inflight = None
            flight.set()

    def _fetch(self) -> _CachedCerts:
        self.fetches += 1
        deadline = self._inflight_deadline
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the certificates took longer than {self.timeout:g}s")
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > _MAX_BODY:
                    raise ValueError("the certificates document is too large")
                chunks.append(chunk)
            cache_control = response.headers.get("Cache-Control", "")
            age = response.headers.get("Age", "0")
        certs = json.loads(b"".join(chunks))
        if not isinstance(certs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in certs.items()
        ):
            raise ValueError("the certificates document is not a JSON object of PEM strings")
        max_age = self.default_max_age
        match = re.search(r"max-age=(\d+)", cache_control)
        if match:
            max_age = float(match.group(1))
        if age.isdigit():
            max_age -= float(age)
        return _CachedCerts(certs=certs, expires_at=self.clock() + max(max_age, 0.0))


_certs_caches: dict[str, CertsCache] = {}
_certs_lock = threading.Lock()


def certs_cache(url: str) -> CertsCache:
    """The process-wide ``CertsCache`` of ``url`` (``ConfigurationError`` if not https)."""
    cache = _certs_caches.get(url)
    if cache is None:
        check_certs_url(url)
        with _certs_lock:
            cache = _certs_caches.setdefault(url, CertsCache(url))
    return cache
