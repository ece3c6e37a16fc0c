"""HTTP overhead: ``POST /tasks/<noop>`` vs a bare django-ninja endpoint with the same body.

One gunicorn server (2 sync workers, the full Django middleware stack, ``DEBUG = False``) serves
three endpoints from one NinjaAPI, so they are compared under identical conditions:

- ``bare``: ``@api.post("/bare/noop")`` taking the same params model and returning ``{"ok": 1}``;
- ``tasks``: ``POST /api/tasks/bench.noop`` (the tasks router, no authentication);
- ``tasks+oidc``: ``POST /api/tasks/bench.noop_oidc`` (``api_auth = "oidc"``: an RS256 token
  verified against certificates served from 127.0.0.1, warm in the cache).

A local client (threads + ``http.client``, 127.0.0.1 only, bounded by time) measures requests/s
with 4 concurrent connections, and the gunicorn workers' CPU time per request (from ``/proc``:
the figure the client's own CPU use on a small machine disturbs least), then per-request
latency with one connection. Variants alternate over several rounds in a rotating order, and
ratios are taken within each round (same background load), so noise from other processes
shows as spread, printed as ``median [min, max]``, rather than as a bias.
Run: ``.venv/bin/python bench/bench_http.py [--quick]``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SITE = '''
"""A minimal Django project for bench_http (settings, URLs, WSGI app and the noop tasks)."""
import os

from pydantic import BaseModel

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "bench_http_site"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_generic_tasks",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
TASKS_OIDC_AUDIENCE = os.environ["BENCH_OIDC_AUDIENCE"]
TASKS_OIDC_SERVICE_ACCOUNTS = [os.environ["BENCH_OIDC_EMAIL"]]
TASKS_OIDC_CERTS_URL = os.environ["BENCH_OIDC_CERTS_URL"]
LOGGING = {"version": 1, "disable_existing_loggers": False}

import django
from django.conf import settings

if not settings.configured:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_http_site")
    django.setup()

import django_generic_tasks as tasks
import django_generic_tasks.api
from django.urls import path
from ninja import NinjaAPI


class NoopParams(BaseModel):
    """The body every variant takes."""

    n: int
    label: str = ""


class NoopTask(tasks.Task[NoopParams]):
    """Does nothing."""

    name = "bench.noop"

    def run(self) -> int:
        return self.params.n


class OidcNoopTask(tasks.Task[NoopParams]):
    """Does nothing, behind OIDC."""

    name = "bench.noop_oidc"
    api_auth = "oidc"

    def run(self) -> int:
        return self.params.n


api = NinjaAPI(urls_namespace="bench")


@api.post("/bare/noop")
def bare_noop(request, params: NoopParams) -> dict:
    return {"ok": params.n}


api.add_router("/tasks/", django_generic_tasks.api.router)
urlpatterns = [path("api/", api.urls)]

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
'''

BODY = json.dumps({"n": 7, "label": "hello"}).encode()
ROUNDS, SECONDS = 16, 0.6
VARIANTS = {
    "bare": "/api/bare/noop",
    "tasks": "/api/tasks/bench.noop",
    "tasks+oidc": "/api/tasks/bench.noop_oidc",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Client:
    """One keep-alive connection that reconnects when the server closes it (sync workers do)."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.port, self.path = port, path
        self.headers = {"Content-Type": "application/json", **headers}
        self.conn: http.client.HTTPConnection | None = None

    def post(self) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.conn.request("POST", self.path, BODY, self.headers)
        response = self.conn.getresponse()
        response.read()
        if response.getheader("Connection", "").lower() == "close" or response.will_close:
            self.conn.close()
            self.conn = None
        return response.status


def _worker_cpu_seconds(master: int) -> float:
    """User + system CPU time of gunicorn's worker processes (Linux ``/proc``)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    ticks = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _throughput(port: int, path: str, headers: dict[str, str], seconds: float) -> tuple[float, int]:
    counts: list[int] = []
    stop = time.monotonic() + seconds

    def worker() -> None:
        client, done = _Client(port, path, headers), 0
        while time.monotonic() < stop:
            status = client.post()
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            done += 1
        counts.append(done)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started), sum(counts)


def _latency_ms(port: int, path: str, headers: dict[str, str], count: int) -> float:
    client, samples = _Client(port, path, headers), []
    for _ in range(count):
        began = time.perf_counter()
        if client.post() != 200:
            raise RuntimeError(f"{path} failed")
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main(quick: bool = False) -> None:
    """Run the benchmark and print a Markdown table (quick: a few seconds in all)."""
    from tests.oidc_support import CertsServer, google_claims, make_signing_key, mint_token

    rounds, seconds, latency_count = (2, 0.4, 60) if quick else (ROUNDS, SECONDS, 120)
    key = make_signing_key("bench-key")
    audience, email = "https://bench.test/api/tasks/", "bench@p.iam.gserviceaccount.com"
    token = mint_token(google_claims(audience=audience, email=email, lifetime=3000), key=key)
    headers = {
        "bare": {},
        "tasks": {},
        "tasks+oidc": {"Authorization": f"Bearer {token}"},
    }
    with tempfile.TemporaryDirectory() as tmp, CertsServer({key.kid: key.cert_pem}) as certs:
        Path(tmp, "bench_http_site.py").write_text(SITE)
        port = _free_port()
        env = {
            **os.environ,
            # This tree's src first: the figures are of the code beside this script.
            "PYTHONPATH": os.pathsep.join([tmp, str(ROOT / "src"), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "bench_http_site",
            "BENCH_OIDC_AUDIENCE": audience,
            "BENCH_OIDC_EMAIL": email,
            "BENCH_OIDC_CERTS_URL": certs.url,
        }
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "bench_http_site:application"),
                *("--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
            ],
            cwd=tmp,
            env=env,
        )
        try:
            _wait_ready(port, server)
            for variant, path in VARIANTS.items():  # warm both workers, the certs cache too
                _throughput(port, path, headers[variant], 0.2 if quick else 0.5)
            samples = _Samples()
            order = list(VARIANTS)
            for n in range(rounds):  # rotate the order: load from elsewhere hits all alike
                for variant in order[n % 3 :] + order[: n % 3]:
                    path = VARIANTS[variant]
                    before = _worker_cpu_seconds(server.pid)
                    rate, count = _throughput(port, path, headers[variant], seconds)
                    used = _worker_cpu_seconds(server.pid) - before
                    latency = _latency_ms(port, path, headers[variant], latency_count)
                    samples.add(variant, rate, used / count * 1000, latency)
            fetches = certs.requests
        finally:
            server.terminate()
            server.wait(timeout=30)
    _print_table(samples, rounds, seconds, fetches)


class _Samples:
    """Per-round figures of each variant; ratios are paired within a round (same load)."""

    def __init__(self) -> None:
        self.rps: dict[str, list[float]] = {v: [] for v in VARIANTS}
        self.cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
        self.latency: dict[str, list[float]] = {v: [] for v in VARIANTS}

    def add(self, variant: str, rps: float, cpu_ms: float, latency_ms: float) -> None:
        self.rps[variant].append(rps)
        self.cpu[variant].append(cpu_ms)
        self.latency[variant].append(latency_ms)

    @staticmethod
    def ratios(values: dict[str, list[float]], variant: str, base: str) -> list[float]:
        return [a / b for a, b in zip(values[variant], values[base], strict=True)]

    @staticmethod
    def diffs(values: dict[str, list[float]], variant: str, base: str) -> list[float]:
        return [a - b for a, b in zip(values[variant], values[base], strict=True)]


def _wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start within 30 s")


def _spread(values: list[float], fmt: str, unit: str = "") -> str:
    """``median [min, max]`` of ``values``."""
    med = statistics.median(values)
    if len(values) < 2 or min(values) == max(values):
        return f"{med:{fmt}}{unit}"
    return f"{med:{fmt}}{unit} [{min(values):{fmt}}, {max(values):{fmt}}]"


def _print_table(samples: _Samples, rounds: int, seconds: float, fetches: int) -> None:
    print(
        f"\n### HTTP: POST /tasks/<noop> vs a bare django-ninja endpoint "
        f"(gunicorn, 2 sync workers; {rounds} round(s) of {seconds:g} s per variant, "
        "variants alternating; median [min, max] over rounds; ratios paired within a round)\n"
    )
    print(
        "| endpoint | req/s (4 connections) | vs bare | server CPU / request | vs bare "
        "| p50 latency (1 connection) | added |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    label = {"bare": "bare ninja", "tasks": "tasks router", "tasks+oidc": "tasks router + OIDC"}
    for variant in VARIANTS:
        base = "tasks" if variant == "tasks+oidc" else "bare"
        rps_ratio = _spread(samples.ratios(samples.rps, variant, "bare"), ".2f", "x")
        cpu_ratio = _spread(samples.ratios(samples.cpu, variant, "bare"), ".2f", "x")
        added = (
            ""
            if variant == "bare"
            else _spread(samples.diffs(samples.latency, variant, base), "+.3f", " ms")
        )
        print(
            f"| {label[variant]} | {_spread(samples.rps[variant], ',.0f')} | {rps_ratio} "
            f"| {_spread(samples.cpu[variant], '.3f', ' ms')} | {cpu_ratio} "
            f"| {_spread(samples.latency[variant], '.3f', ' ms')} | {added} |"
        )
    med = statistics.median
    cpu_overhead = med(samples.ratios(samples.cpu, "tasks", "bare")) - 1
    throughput = med(samples.ratios(samples.rps, "tasks", "bare"))
    oidc_cpu = med(samples.diffs(samples.cpu, "tasks+oidc", "tasks"))
    print(
        f"\nTasks router vs bare (medians of per-round ratios): {cpu_overhead:+.1%} server CPU "
        f"per request, {throughput:.2f}x the requests/s (goal: overhead <= 15%). OIDC with warm "
        f"certs: {oidc_cpu:+.3f} ms server CPU per request; latency 'added' is against the "
        f"open tasks endpoint (goal <= 1 ms). Certificates fetched {fetches} time(s) in all "
        "(once per worker process)."
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
