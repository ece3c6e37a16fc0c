"""CloudTasksBackend enqueue throughput against the Cloud Tasks emulator, side by side.

- one client reused by every start (ours) vs a new ``tasks_v2.CloudTasksClient()`` per task,
  the original release's way;
- ``enqueue_many`` (concurrent creates) vs the same creates one after the other.

Both ways run as in production, with local real components only:

- TLS: the emulator (its own process and virtualenv) also listens on a TLS port, the gRPC
  server's own TLS with a certificate made for this run; clients trust it through
  ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``, the roots every default TLS channel of gRPC uses.
- Application Default Credentials, two sources: a service-account JSON key made for this run
  (``GOOGLE_APPLICATION_CREDENTIALS``; its ``token_uri`` is local, but current google-auth signs
  a self-signed JWT instead of fetching a token, and parses the RSA key on every new client),
  and a local GCE metadata server (``GCE_METADATA_HOST``, as on Cloud Run: a new client looks
  it up and fetches a token). Both sides build their client the production way, only with
  ``client_options={"api_endpoint": ...}`` (ours: the backend's ``api_endpoint`` option).
- Network: straight to the emulator on loopback, and through a TCP proxy on 127.0.0.1 that
  delays every chunk by a one-way latency (TCP, TLS handshakes and calls all pay it), a model
  of the round trip to the Cloud Tasks API. DNS lookups of a new channel are not modelled.

The queue is paused, so the emulator only stores the tasks. Rounds are interleaved (ours,
the original's way, bulk); each figure is the median over rounds with its min-max range, each
ratio the median of the per-round ratios. The second table counts what each way cost per
task: CPU of this process (with the proxy's thread on the RTT rows) and of the emulator, TCP
connections through the proxy and token fetches.
Run: ``.venv/bin/python bench/bench_cloudtasks.py [--quick]``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from cloudtasks_local import AuthServer, LatencyProxy, TlsEmulator, make_credentials


class Counters:
    """What one way of enqueueing cost, summed over its runs: time, CPU, connections, auth."""

    def __init__(self, emulator: TlsEmulator, auth: AuthServer, proxy: LatencyProxy) -> None:
        self.emulator, self.auth, self.proxy = emulator, auth, proxy
        self.rates: list[float] = []
        self.tasks = 0
        self.totals: dict[str, float] = {}

    def run(self, count: int, work: Callable[[], object]) -> None:
        """Run ``work`` (``count`` creates), record its rate and add up its costs."""
        before = self._snapshot()
        started = time.perf_counter()
        work()
        self.rates.append(count / (time.perf_counter() - started))
        self.tasks += count
        for name, value in self._snapshot().items():
            self.totals[name] = self.totals.get(name, 0) + value - before[name]

    def per_task(self, name: str) -> float:
        """The average of cost ``name`` per task."""
        return self.totals.get(name, 0) / max(self.tasks, 1)

    def _snapshot(self) -> dict[str, float]:
        return {
            "client_cpu": time.process_time(),
            "server_cpu": self.emulator.cpu_seconds(),
            "connections": self.proxy.connections,
            **{kind: float(n) for kind, n in self.auth.hits.items()},
            **{kind: 0.0 for kind in ("token", "ping", "info") if kind not in self.auth.hits},
        }


def _median(rates: list[float]) -> str:
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def _ratio(ours: list[float], baseline: list[float]) -> str:
    ratios = [a / b for a, b in zip(ours, baseline, strict=True)]
    return f"**{statistics.median(ratios):.1f}x** ({min(ratios):.1f}-{max(ratios):.1f})"


def _measure(
    emulator: TlsEmulator,
    host: str,
    counts: tuple[int, int],
    rounds: int,
    counters: Callable[[], Counters],
    what: tuple[bool, bool],
) -> dict[str, Counters]:
    """Interleaved rounds of: ours one by one, the original's way, ``enqueue_many``."""
    from google.cloud import tasks_v2
    from tests.cloudtasks_emulator import LOCATION, PROJECT
    from tests.testapp.tasks import AddTask

    from django_generic_tasks.backends import CloudTasksBackend
    from django_generic_tasks.core.enqueue import EnqueueRequest

    (count, original_count), (with_original, with_bulk) = counts, what
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

    def one_by_one(requests: list[EnqueueRequest]) -> None:
        for request in requests:
            backend.enqueue(request)

    def original(tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            # What the original release did on each start (only the endpoint is ours); it
            # dropped the client, and collecting it closes the channel as this does.
            client = tasks_v2.CloudTasksClient(client_options={"api_endpoint": host})
            parent = client.queue_path(PROJECT, LOCATION, queue.rsplit("/", 1)[1])
            client.create_task(request={"parent": parent, "task": task})
            client.transport.close()

    results = {"ours": counters(), "original": counters(), "bulk": counters()}
    try:
        backend.enqueue(batch(1)[0])  # warm up: client, channel, token, retry object
        for _ in range(rounds):
            requests = batch(count)
            results["ours"].run(count, partial(one_by_one, requests))
            if with_original:
                tasks = [backend.create_task_request(r)["task"] for r in batch(original_count)]
                results["original"].run(original_count, partial(original, tasks))
            if with_bulk:
                results["bulk"].run(count, partial(backend.enqueue_many, batch(count)))
    finally:
        backend.close()
        emulator.delete_queue(queue)
    return results


def _start(quick: bool, workdir: Path, auth: AuthServer) -> list[TlsEmulator]:
    """Credentials, environment and emulators (the second one: 16 server threads)."""
    cert, key, account = make_credentials(workdir, f"http://{auth.host}/token")
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(cert)  # before any TLS channel
    os.environ["BENCH_KEY_FILE"] = str(account)
    os.environ["CLOUDSDK_CONFIG"] = str(workdir / "no-gcloud")  # no gcloud ADC file
    # Read when google.auth's metadata module is imported, which happens later.
    os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = auth.host
    from tests.cloudtasks_emulator import ensure_venv

    executable = ensure_venv()
    emulators = [TlsEmulator(executable, cert, key)]
    if not quick:
        emulators.append(TlsEmulator(executable, cert, key, workers=16))
    try:
        for emulator in emulators:
            emulator.start()
    except BaseException:
        for emulator in emulators:
            emulator.stop()
        raise
    return emulators


def _use_adc(source: str) -> None:
    if source == "key file":
        os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = os.environ["BENCH_KEY_FILE"]
    else:  # google.auth.default() then finds the metadata server, as on Cloud Run
        os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)


def main(quick: bool) -> None:
    """Print Markdown tables of enqueue rates against the emulator, with ratios."""
    rounds = 1 if quick else 5
    loop_counts, rtt_counts = ((40, 6), (10, 3)) if quick else ((1000, 100), (200, 30))
    delay = 0.010  # one way: a 20 ms round trip
    print(f"\n### Cloud Tasks backend vs the emulator over TLS, median of {rounds} (range)\n")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.pop("CLOUD_TASKS_EMULATOR_HOST", None)
    import django

    django.setup()
    from tests.cloudtasks_emulator import EmulatorUnavailable

    auth = AuthServer()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cloudtasks-"))  # the keys made for the run
    try:
        emulators = _start(quick, workdir, auth)
    except EmulatorUnavailable as exc:
        auth.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        reason = str(exc).replace("\n", " ")
        print(f"Emulator unavailable, not measured: {reason[:80]} ... {reason[-150:]}")
        return
    proxy = LatencyProxy(emulators[0].tls_port, delay).start()
    rows: list[tuple[str, str, Counters, Counters]] = []
    try:
        networks = [("loopback", emulators[0].tls_host, loop_counts)]
        networks.append((f"+{delay * 2000:g} ms RTT", f"127.0.0.1:{proxy.port}", rtt_counts))
        for network, host, counts in networks:
            for source in ("key file", "metadata server"):
                _use_adc(source)
                got = _measure(
                    emulators[0],
                    host,
                    counts,
                    rounds,
                    partial(Counters, emulators[0], auth, proxy),
                    (True, source == "key file"),
                )
                what = f"single start, ADC from {source}: reused client vs client per task"
                rows.append((network, what, got["ours"], got["original"]))
                if source == "key file":
                    what = "bulk: enqueue_many (16 in flight) vs one by one"
                    rows.append((network, what, got["bulk"], got["ours"]))
        if not quick:
            _use_adc("key file")
            got = _measure(
                emulators[1],
                emulators[1].tls_host,
                loop_counts,
                rounds,
                partial(Counters, emulators[1], auth, proxy),
                (False, True),
            )
            what = "bulk, emulator patched to 16 server threads (default 2)"
            rows.append(("loopback", what, got["bulk"], got["ours"]))
    finally:
        proxy.stop()
        for emulator in emulators:
            emulator.stop()
        auth.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    _print(rows)


def _print(rows: list[tuple[str, str, Counters, Counters]]) -> None:
    print("| network | what (ours vs baseline) | ours, tasks/s | baseline, tasks/s | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    for network, what, ours, baseline in rows:
        print(
            f"| {network} | {what} | {_median(ours.rates)} | {_median(baseline.rates)} "
            f"| {_ratio(ours.rates, baseline.rates)} |"
        )
    print("\nPer task, summed over the rounds (CPU in µs; 2 cores shared by both processes):\n")
    print("| network | what | way | bench CPU | emulator CPU | new connections | token fetches |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for network, what, ours, baseline in rows:
        ways = [("enqueue_many", ours)] if what.startswith("bulk") else []
        ways = ways or [("reused client", ours), ("client per task", baseline)]
        for way, c in ways:
            # Connections are counted at the proxy, so only on the rows through it.
            connections = "-" if network == "loopback" else f"{c.per_task('connections'):.2f}"
            print(
                f"| {network} | {what.split(':')[0]} | {way} | "
                f"{c.per_task('client_cpu') * 1e6:,.0f} | {c.per_task('server_cpu') * 1e6:,.0f} | "
                f"{connections} | {c.per_task('token'):.2f} |"
            )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
