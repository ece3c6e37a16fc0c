"""CloudTasksBackend enqueue throughput against the Cloud Tasks emulator, side by side.

- one client reused by every start (ours) vs a new client per task (the original release's way);
- ``enqueue_many`` (concurrent creates) vs the same creates one after the other.

The queue is paused, so the emulator only stores the tasks and dispatches nothing. On loopback
each create costs well under a millisecond and the emulator's own Python server (two worker
threads) is the bottleneck; the real service is a network round trip away. So each comparison
runs twice: straight to the emulator, and through a TCP proxy on 127.0.0.1 that delays every
chunk by a fixed one-way latency, a model of the round trip to the Cloud Tasks API.
Run: ``.venv/bin/python bench/bench_cloudtasks.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _setup_django() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def _rate(count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def _median_rate(repeats: int, count: int, make_run: Callable[[], Callable[[], None]]) -> float:
    return statistics.median(_rate(count, make_run()) for _ in range(repeats))


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that forwards each chunk after ``delay`` seconds, in order.

    A new connection also waits one round trip (``2 * delay``) first, as a TCP handshake does;
    TLS and fetching an access token, which a new client also pays on the real service, are
    not modelled, so the per-client cost here is a lower bound.
    """

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
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


def _own_connection_client(host: str) -> Any:
    """A new client with its own connection, as a new production client gets one.

    gRPC shares connections between channels of one process with the same target and
    arguments; a production client's fresh credentials make its connection its own, so this
    one asks for a private connection pool.
    """
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    channel = grpc.insecure_channel(host, options=[("grpc.use_local_subchannel_pool", 1)])
    transport = CloudTasksGrpcTransport(channel=channel, credentials=AnonymousCredentials())
    return tasks_v2.CloudTasksClient(transport=transport)


def _measure(emulator: Any, count: int, repeats: int, host: str) -> list[tuple[str, float, float]]:
    from tests.cloudtasks_emulator import LOCATION, PROJECT
    from tests.testapp.tasks import AddTask

    from django_generic_tasks.backends import CloudTasksBackend
    from django_generic_tasks.backends.base import EnqueueRequest

    queue = emulator.create_queue(paused=True)
    backend = CloudTasksBackend(
        project=PROJECT,
        location=LOCATION,
        queue=queue,
        base_url="http://127.0.0.1:9/api/tasks/",
        service_account_email="bench@example.iam.gserviceaccount.com",
        emulator_host=host,
    )

    def requests() -> list[EnqueueRequest]:
        return [EnqueueRequest.for_task(AddTask({"a": i})) for i in range(count)]

    def reused() -> Callable[[], None]:
        batch = requests()
        return lambda: [backend.enqueue(r) for r in batch] and None

    def client_per_task() -> Callable[[], None]:
        batch = requests()

        def run() -> None:
            for request in batch:
                client = _own_connection_client(host)  # as the original: one per start
                client.create_task(request=backend.create_task_request(request))
                client.transport.close()

        return run

    def bulk() -> Callable[[], None]:
        batch = requests()
        return lambda: backend.enqueue_many(batch) and None

    try:
        backend.enqueue(requests()[0])  # warm up: client, channel, retry object
        ours = _median_rate(repeats, count, reused)
        original = _median_rate(repeats, count, client_per_task)
        sequential = _median_rate(repeats, count, reused)
        concurrent = _median_rate(repeats, count, bulk)
    finally:
        backend.close()
        emulator.delete_queue(queue)
    return [
        ("single start: reused client (ours) vs client per task (original)", ours, original),
        (
            f"bulk: enqueue_many ({backend.bulk_concurrency} in flight) vs one by one",
            concurrent,
            sequential,
        ),
    ]


def main(quick: bool) -> None:
    """Print a Markdown table of enqueue rates against the emulator, with ratios."""
    count, repeats = (40, 1) if quick else (1000, 3)
    slow_count, delay = (12, 0.005) if quick else (100, 0.010)
    print(f"\n### Cloud Tasks backend vs the emulator (median of {repeats})\n")
    print("| network | what | ours (tasks/s) | baseline (tasks/s) | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    _setup_django()
    from tests.cloudtasks_emulator import EmulatorUnavailable, start_emulator

    try:
        emulator = start_emulator()
    except EmulatorUnavailable as exc:
        reason = str(exc).replace("|", "/").replace("\n", " ")
        reason = reason if len(reason) <= 240 else f"{reason[:80]} ... {reason[-150:]}"
        print(f"| — | emulator unavailable, not measured: {reason} | — | — | — |")
        return
    proxy = LatencyProxy(emulator.port, delay).start()
    try:
        runs = [
            (f"loopback, {count} tasks", count, emulator.host),
            (
                f"+{delay * 2000:g} ms round trip (proxy), {slow_count} tasks",
                slow_count,
                f"127.0.0.1:{proxy.port}",
            ),
        ]
        for network, n, host in runs:
            for what, ours, baseline in _measure(emulator, n, repeats, host):
                ratio = ours / baseline
                print(f"| {network} | {what} | {ours:,.0f} | {baseline:,.0f} | {ratio:.1f}x |")
    finally:
        proxy.stop()
        emulator.stop()


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
