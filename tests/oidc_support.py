"""Locally minted Google-style OIDC tokens, and a local certificates server, for tests.

Nothing here touches the network: an RSA key and a self-signed certificate are made in
process, the certificates are served as ``{kid: PEM}`` from 127.0.0.1 with a
``Cache-Control: max-age``, and tokens are signed RS256 with that key.

>>> key = make_signing_key("key-1")
>>> with CertsServer({key.kid: key.cert_pem}) as server:
...     token = mint_token(google_claims(audience="https://x/tasks/", email="sa@p.iam"), key=key)

Pytest fixtures (import them into a test module or a conftest to use them):
``signing_key`` (session), ``other_signing_key`` (session), ``certs_server`` (a running server
serving ``signing_key``) and ``oidc_settings`` (``TASKS_API_AUTHENTICATION = "oidc"`` pointed
at ``certs_server``, with ``OIDC_AUDIENCE`` and ``OIDC_EMAIL`` allowed).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

OIDC_AUDIENCE = "https://tasks.example.test/api/tasks/"
OIDC_EMAIL = "tasks-invoker@example-project.iam.gserviceaccount.com"
GOOGLE_ISSUER = "https://accounts.google.com"


@dataclass(frozen=True)
class SigningKey:
    """An RSA private key, its key id and its self-signed certificate (PEM)."""

    kid: str
    private_key: rsa.RSAPrivateKey
    cert_pem: str

    @property
    def public_pem(self) -> bytes:
        """The public key in PEM (SubjectPublicKeyInfo), as an attacker would know it."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def make_signing_key(kid: str = "test-key-1") -> SigningKey:
    """A fresh 2048-bit RSA key with a one-day self-signed certificate."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tests-{kid}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return SigningKey(kid=kid, private_key=private_key, cert_pem=pem)


def google_claims(
    *,
    audience: str = OIDC_AUDIENCE,
    email: str = OIDC_EMAIL,
    issued_at: float | None = None,
    lifetime: float = 3600,
    **extra: Any,
) -> dict[str, Any]:
    """The claims Google puts in a Cloud Tasks OIDC token; ``extra`` adds or overrides."""
    iat = int(time.time() if issued_at is None else issued_at)
    claims: dict[str, Any] = {
        "iss": GOOGLE_ISSUER,
        "aud": audience,
        "azp": "112233445566778899000",
        "sub": "112233445566778899000",
        "email": email,
        "email_verified": True,
        "iat": iat,
        "exp": int(iat + lifetime),
    }
    claims.update(extra)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: Mapping[str, Any]) -> str:
    return _b64(json.dumps(dict(value), separators=(",", ":")).encode())


def mint_token(
    claims: Mapping[str, Any] | None = None,
    *,
    key: SigningKey,
    kid: str | None = None,
    alg: str = "RS256",
    header: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` (default: ``google_claims()``) into a compact JWT.

    ``kid`` defaults to ``key.kid``. ``alg`` is ``"RS256"`` (a real signature),
    ``"none"`` (no signature) or ``"HS256"`` (HMAC keyed with the *public* key's PEM, the
    classic algorithm-confusion forgery). ``header`` adds or overrides header fields.
    """
    full_header: dict[str, Any] = {"alg": alg, "typ": "JWT", "kid": key.kid if kid is None else kid}
    full_header.update(header or {})
    signing_input = f"{_segment(full_header)}.{_segment(claims or google_claims())}"
    if alg == "RS256":
        signature = key.private_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    elif alg == "HS256":
        signature = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    elif alg == "none":
        signature = b""
    else:
        raise ValueError(f"mint_token cannot sign with alg={alg!r}")
    return f"{signing_input}.{_b64(signature)}"


class CertsServer:
    """Serves ``{kid: PEM}`` at ``url`` on 127.0.0.1, like Google's v1 certs endpoint.

    ``certs`` may be changed while it runs; ``fail = True`` makes it answer 500; ``requests``
    counts the fetches it served. ``drip`` > 0 sends the body in ``DRIP_PIECES`` pieces spread
    over that many seconds (a slow server); ``dripping`` is set while a slow body is being
    sent, ``drip_done`` once one was sent in full.
    """

    DRIP_PIECES = 24

    def __init__(self, certs: Mapping[str, str], *, max_age: int = 3600) -> None:
        self.certs = dict(certs)
        self.max_age = max_age
        self.fail = False
        self.requests = 0
        self.drip = 0.0
        self.dripping = threading.Event()
        self.drip_done = threading.Event()
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if server.fail:
                    self.send_error(500, "certs unavailable")
                    return
                body = json.dumps(server.certs).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", f"public, max-age={server.max_age}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drip <= 0:
                    self.wfile.write(body)
                    return
                server.dripping.set()
                size = -(-len(body) // server.DRIP_PIECES)
                for start in range(0, len(body), size):
                    if server._stopping.wait(server.drip / server.DRIP_PIECES):
                        return
                    try:
                        self.wfile.write(body[start : start + size])
                        self.wfile.flush()
                    except OSError:
                        return  # the client gave up
                server.drip_done.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """The certificates URL (for ``TASKS_OIDC_CERTS_URL``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/oauth2/v1/certs"

    def start(self) -> CertsServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (and dripping) and close the socket."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> CertsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    """The key the local certs server publishes (kid ``test-key-1``)."""
    return make_signing_key("test-key-1")


@pytest.fixture(scope="session")
def other_signing_key() -> SigningKey:
    """A key nobody publishes (kid ``test-key-1`` too, to forge a known kid)."""
    return make_signing_key("test-key-1")


@pytest.fixture
def certs_server(signing_key: SigningKey) -> Iterator[CertsServer]:
    """A running ``CertsServer`` publishing ``signing_key``; the certs cache starts empty."""
    from django_generic_tasks import security

    with CertsServer({signing_key.kid: signing_key.cert_pem}) as server:
        security.certs_cache(server.url).clear()
        yield server
        security.certs_cache(server.url).clear()


@pytest.fixture
def oidc_settings(settings: Any, certs_server: CertsServer) -> CertsServer:
    """``TASKS_API_AUTHENTICATION = "oidc"`` against ``certs_server`` (pytest-django settings)."""
    settings.TASKS_API_AUTHENTICATION = "oidc"
    settings.TASKS_OIDC_AUDIENCE = OIDC_AUDIENCE
    settings.TASKS_OIDC_SERVICE_ACCOUNTS = [OIDC_EMAIL]
    settings.TASKS_OIDC_CERTS_URL = certs_server.url
    return certs_server
