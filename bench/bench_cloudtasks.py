"""CloudTasksBackend enqueue throughput against the Cloud Tasks emulator, side by side.

- one client reused by every start (ours) vs a new ``tasks_v2.CloudTasksClient()`` per task,
  the original release's way;
- ``enqueue_many`` (concurrent creates) vs the same creates one after the other.

Both ways run as in production, with local real components only:

- TLS: the emulator (its own process and virtualenv) also listens on a TLS port, the gRPC
  server's own TLS with a certificate made for this run; clients trust it through
  ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``, the roots every default TLS channel of gRPC uses.
- Credentials: Application Default Credentials from ``GOOGLE_APPLICATION_CREDENTIALS``, a
  service-account JSON key made for this run (new RSA key) whose ``token_uri`` is a local
  token server. Both sides build their client the production way, only with
  ``client_options={"api_endpoint": ...}`` (ours: the backend's ``api_endpoint`` option).
- Network: straight to the emulator on loopback, and through a TCP proxy on 127.0.0.1 that
  delays every chunk by a one-way latency (TCP, TLS handshakes and calls all pay it), a model
  of the round trip to the Cloud Tasks API.

The queue is paused, so the emulator only stores the tasks. Rounds are interleaved (ours,
original, bulk, ...) and each figure is the median over rounds with its min-max range.
Run: ``.venv/bin/python bench/bench_cloudtasks.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.cloudtasks_emulator import VENV, Emulator, free_port  # noqa: E402

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
    """The emulator with a TLS port too (``tls_host``) and ``workers`` server threads (0: its own 2)."""

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


class TokenServer:
    """A local OAuth2 token endpoint (the key file's ``token_uri``); counts the fetches."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.fetches += 1
                body = json.dumps(
                    {"access_token": f"ya29.bench-{owner.fetches}", "expires_in": 3600}
                    | {"token_type": "Bearer"}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.fetches = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

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
                "client_email": "enqueuer@test-project.iam.gserviceaccount.com",
                "client_id": "100000000000000000001",
                "token_uri": token_uri,
            }
        )
    )
    return cert_file, key_file, account


def _rate(count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def _spread(rates: list[float]) -> str:
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f})"


def _ratio(ours: list[float], baseline: list[float]) -> str:
    ratios = [a / b for a, b in zip(ours, baseline, strict=True)]
    return f"{statistics.median(ratios):.1f}x ({min(ratios):.1f}–{max(ratios):.1f})"


def _measure(
    emulator: TlsEmulator, host: str, counts: tuple[int, int], rounds: int, with_original: bool
) -> dict[str, Any]:
    """Interleaved rounds of: ours one by one, the original's way, ``enqueue_many``."""
    from google.cloud import tasks_v2

    from django_generic_tasks.backends import CloudTasksBackend
    from django_generic_tasks.backends.base import EnqueueRequest
    from tests.cloudtasks_emulator import LOCATION, PROJECT
    from tests.testapp.tasks import AddTask

    count, original_count = counts
    queue = emulator.create_queue(paused=True)
    backend = CloudTasksBackend(
        project=PROJECT,
        location=LOCATION,
        queue=queue,
        base_url="https://app.example.com/api/tasks/",
        service_account_email="invoker@test-project.iam.gserviceaccount.com",
        api_endpoint=host,
    )

    def batch(n: int) -> list[EnqueueRequest]:
        return [EnqueueRequest.for_task(AddTask({"a": i, "b": 1})) for i in range(n)]

    def original(tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            # As the original release did per start (only the endpoint is ours); its client
            # was dropped and garbage-collected, which closes the channel as this does.
            client = tasks_v2.CloudTasksClient(client_options={"api_endpoint": host})
            parent = client.queue_path(PROJECT, LOCATION, queue.rsplit("/", 1)[1])
            client.create_task(request={"parent": parent, "task": task})
            client.transport.close()

    def cpu_per_task(run: Callable[[], None], n: int) -> tuple[float, float]:
        client_cpu, server_cpu = time.process_time(), emulator.cpu_seconds()
        run()
        client_cpu, server_cpu = (
            time.process_time() - client_cpu,
            emulator.cpu_seconds() - server_cpu,
        )
        return client_cpu / n * 1e6, server_cpu / n * 1e6

    results: dict[str, Any] = {"ours": [], "original": [], "bulk": [], "cpu": {}}
    try:
        backend.enqueue(batch(1)[0])  # warm up: client, channel, token, retry object
        for _ in range(rounds):
            requests = batch(count)
            results["ours"].append(_rate(count, lambda: [backend.enqueue(r) for r in requests]))
            if with_original:
                tasks = [backend.create_task_request(r)["task"] for r in batch(original_count)]
                results["original"].append(_rate(original_count, lambda: original(tasks)))
            requests = batch(count)
            results["bulk"].append(_rate(count, lambda: backend.enqueue_many(requests) and None))
        requests = batch(count)
        results["cpu"]["one by one"] = cpu_per_task(
            lambda: [backend.enqueue(r) for r in requests], count
        )
        requests = batch(count)
        results["cpu"]["enqueue_many"] = cpu_per_task(
            lambda: backend.enqueue_many(requests) and None, count
        )
        if with_original:
            tasks = [backend.create_task_request(r)["task"] for r in batch(original_count)]
            results["cpu"]["client per task"] = cpu_per_task(
                lambda: original(tasks), original_count
            )
        results["concurrency"] = backend.bulk_concurrency
    finally:
        backend.close()
        emulator.delete_queue(queue)
    return results


def main(quick: bool) -> None:
    """Print Markdown tables of enqueue rates against the emulator, with ratios."""
    rounds = 3 if quick else 5
    loop_counts = (60, 15) if quick else (1000, 150)
    rtt_counts = (20, 5) if quick else (200, 30)
    delay = 0.010  # one way: a 20 ms round trip
    print(
        f"\n### Cloud Tasks backend vs the emulator, TLS + service-account key (median of {rounds})\n"
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.pop("CLOUD_TASKS_EMULATOR_HOST", None)
    import django

    django.setup()
    from tests.cloudtasks_emulator import EmulatorUnavailable, ensure_venv

    workdir = Path(tempfile.mkdtemp(prefix="bench-cloudtasks-"))
    tokens = TokenServer()
    cert, key, account = make_credentials(workdir, tokens.url)
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(account)
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(cert)  # before any TLS channel
    emulators: list[TlsEmulator] = []
    proxy: LatencyProxy | None = None
    try:
        try:
            executable = ensure_venv()
            emulators.append(TlsEmulator(executable, cert, key))
            if not quick:
                emulators.append(TlsEmulator(executable, cert, key, workers=16))
            for emulator in emulators:
                emulator.start()
        except EmulatorUnavailable as exc:
            reason = str(exc).replace("|", "/").replace("\n", " ")
            print(f"emulator unavailable, not measured: {reason[:80]} ... {reason[-150:]}")
            return
        main_emulator = emulators[0]
        proxy = LatencyProxy(main_emulator.tls_port, delay).start()
        runs = [
            ("loopback", main_emulator, main_emulator.tls_host, loop_counts, True),
            (
                f"+{delay * 2000:g} ms RTT",
                main_emulator,
                f"127.0.0.1:{proxy.port}",
                rtt_counts,
                True,
            ),
        ]
        if not quick:
            runs.append(
                (
                    "loopback, emulator 16 threads",
                    emulators[1],
                    emulators[1].tls_host,
                    loop_counts,
                    False,
                )
            )
        rows, cpu_rows, connections = [], [], {}
        for network, emulator, host, counts, with_original in runs:
            fetches, opened = tokens.fetches, proxy.connections
            result = _measure(emulator, host, counts, rounds, with_original)
            if with_original:
                rows.append(
                    (
                        network,
                        f"single start, {counts[0]} vs {counts[1]} tasks: reused client (ours) vs client per task (original)",
                        result["ours"],
                        result["original"],
                    )
                )
            rows.append(
                (
                    network,
                    f"bulk, {counts[0]} tasks: enqueue_many ({result['concurrency']} in flight) vs one by one",
                    result["bulk"],
                    result["ours"],
                )
            )
            if "RTT" in network:
                connections = {
                    "tasks": counts,
                    "opened": proxy.connections - opened,
                    "fetches": tokens.fetches - fetches,
                }
            for what, (client_us, server_us) in result["cpu"].items():
                cpu_rows.append((network, what, client_us, server_us))
        print(
            "| network | what | ours, tasks/s (range) | baseline, tasks/s (range) | ratio (range) |"
        )
        print("| --- | --- | ---: | ---: | ---: |")
        for network, what, ours, baseline in rows:
            print(
                f"| {network} | {what} | {_spread(ours)} | {_spread(baseline)} | {_ratio(ours, baseline)} |"
            )
        print("\nCPU per task (µs; the machine's cores are shared by both processes):\n")
        print("| network | how | bench process | emulator process |")
        print("| --- | --- | ---: | ---: |")
        for network, what, client_us, server_us in cpu_rows:
            print(f"| {network} | {what} | {client_us:,.0f} | {server_us:,.0f} |")
        print(
            f"\nThrough the proxy: {connections.get('opened', 0)} TCP+TLS connections opened and "
            f"{connections.get('fetches', 0)} token fetches in all "
            f"({rounds + 1} x {rtt_counts[1]} tasks the original's way, {rounds * 2 + 2} x "
            f"{rtt_counts[0]} + 1 ours); {tokens.fetches} token fetches in the whole run."
        )
    finally:
        if proxy is not None:
            proxy.stop()
        for emulator in emulators:
            emulator.stop()
        tokens.stop()


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
