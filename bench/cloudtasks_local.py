"""Local stand-ins for what a Cloud Tasks client talks to, for ``bench_cloudtasks``.

The emulator with a TLS port (``TlsEmulator``), a TCP proxy that adds network latency
(``LatencyProxy``), an OAuth2 token endpoint and GCE metadata server (``AuthServer``), and a
TLS certificate plus service-account key made for the run (``make_credentials``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.cloudtasks_emulator import VENV, Emulator, free_port  # noqa: E402

EMAIL = "enqueuer@test-project.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"

# Run by the emulator's own interpreter: the emulator as published (``gcloud-tasks-emulator
# start``), whose gRPC server also gets a TLS port and, if asked, a bigger thread pool (its
# source hard-codes ``ThreadPoolExecutor(max_workers=2)``; the CLI has no option for it).
LAUNCHER = r"""
import sys
from concurrent import futures
import grpc
import gcloud_tasks_emulator.server as server
from gcloud_tasks_emulator.__main__ import main
tls_port, cert, key, workers = sys.argv[1:5]
class Grpc:
    def __getattr__(self, name):
        return getattr(grpc, name)
    @staticmethod
    def server(executor, *args, **kwargs):
        if int(workers):
            executor = futures.ThreadPoolExecutor(max_workers=int(workers))
        srv = grpc.server(executor, *args, **kwargs)
        pair = (open(key, "rb").read(), open(cert, "rb").read())
        srv.add_secure_port("127.0.0.1:" + tls_port, grpc.ssl_server_credentials([pair]))
        return srv
server.grpc = Grpc()
sys.argv = ["gcloud-tasks-emulator", "start", *sys.argv[5:]]
main()
"""


class TlsEmulator(Emulator):
    """The emulator, also on a TLS port (``tls_host``), with ``workers`` server threads
    (0: its own 2)."""

    def __init__(self, executable: Path, cert: Path, key: Path, workers: int = 0) -> None:
        super().__init__(executable)
        self.cert, self.key, self.workers = cert, key, workers
        self.tls_port = free_port()
        self.tls_host = f"127.0.0.1:{self.tls_port}"

    def command(self) -> list[str]:
        """The emulator's CLI through ``LAUNCHER``; ``--quiet``: no log line per task."""
        args = [str(self.tls_port), str(self.cert), str(self.key), str(self.workers)]
        return [str(VENV / "bin" / "python"), "-c", LAUNCHER, *args, "--port", str(self.port), "-q"]

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that forwards each chunk after ``delay`` seconds, in order.

    A new connection also waits one round trip (``2 * delay``) first, as a TCP handshake does;
    the TLS handshake's round trips are real ones through it. ``connections`` counts them.
    """

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> LatencyProxy:
        """Start listening on a free port (``self.port``)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop listening and end the proxy's thread."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await asyncio.sleep(2 * self.delay)  # the TCP handshake's round trip
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, data = await chunks.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        forwarding = asyncio.create_task(forward())
        try:
            while True:
                data = await reader.read(65536)
                await chunks.put((loop.time() + self.delay, data))
                if not data:
                    break
        finally:
            await forwarding


class AuthServer:
    """A local OAuth2 token endpoint (``POST /token``, the key file's ``token_uri``) and GCE
    metadata server (``GCE_METADATA_HOST``); ``hits`` counts requests by kind."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer("token", owner.token())

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if self.headers.get("Metadata-Flavor") != "Google":
                    self._answer("refused", b"", 403)
                elif path == "/":
                    self._answer("ping", b"")
                elif path.endswith("/project/project-id"):
                    self._answer("info", b"test-project")
                elif path.endswith("/universe/universe-domain"):
                    self._answer("info", b"googleapis.com")
                elif path.endswith("/service-accounts/default/"):
                    info = {"email": EMAIL, "aliases": ["default"], "scopes": [SCOPE]}
                    self._answer("info", json.dumps(info).encode())
                elif path.endswith("/token"):
                    self._answer("token", owner.token())
                else:
                    self._answer("unknown", b"", 404)

            def _answer(self, kind: str, body: bytes, status: int = 200) -> None:
                with owner.lock:
                    owner.hits[kind] = owner.hits.get(kind, 0) + 1
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self) -> bytes:
        """A new access token's JSON."""
        n = self.hits.get("token", 0)
        answer = {"access_token": f"ya29.bench-{n}", "expires_in": 3600, "token_type": "Bearer"}
        return json.dumps(answer).encode()

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


def make_credentials(directory: Path, token_uri: str) -> tuple[Path, Path, Path]:
    """Write a TLS certificate + key for 127.0.0.1 and a service-account JSON key file."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    tls_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudtasks-bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(tls_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(tls_key, hashes.SHA256())
    )
    pkcs8 = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8)
    cert_file, key_file = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(tls_key.private_bytes(*pkcs8, serialization.NoEncryption()))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = directory / "service-account.json"
    account.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "test-project",
                "private_key_id": "bench-key-1",
                "private_key": sa_key.private_bytes(*pkcs8, serialization.NoEncryption()).decode(),
                "client_email": EMAIL,
                "client_id": "100000000000000000001",
                "token_uri": token_uri,
            }
        )
    )
    return cert_file, key_file, account
