"""OpenTelemetry's cost on the hot path: ``start()`` on ``ImmediateBackend`` (start, hand over,
run, report: one run per call) in four variants, measured in alternating rounds in one session:

- ``baseline``: the tree before the OpenTelemetry hooks (``--baseline``, a git ref; default: the
  parent of the commit that added ``observability/``), extracted with ``git archive``;
- ``api, no SDK``: this tree with ``opentelemetry-api`` installed and no provider configured
  (target: >= 0.97x the baseline);
- ``SDK traces``: a ``TracerProvider`` with a ``BatchSpanProcessor`` (exporter that drops spans,
  so the figure is our instrumentation plus the SDK, not a network);
- ``SDK traces + metrics``: the same plus a ``MeterProvider`` (periodic reader, dropping exporter).

Each variant runs in its own process (OpenTelemetry's providers are process-global); medians of
``--rounds`` rounds of ``--runs`` starts each. Run: ``.venv/bin/python bench/bench_otel.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
variant, runs = sys.argv[2], int(sys.argv[3])
if variant.startswith("sdk"):
    from opentelemetry import trace, metrics
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    if variant == "sdk-metrics":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            MetricExporter, MetricExportResult, PeriodicExportingMetricReader,
        )

        class DropMetrics(MetricExporter):
            def __init__(self):
                super().__init__()
            def export(self, metrics_data, timeout_millis=10_000, **kwargs):
                return MetricExportResult.SUCCESS
            def force_flush(self, timeout_millis=10_000):
                return True
            def shutdown(self, timeout_millis=30_000, **kwargs):
                pass

        metrics.set_meter_provider(
            MeterProvider(metric_readers=[PeriodicExportingMetricReader(DropMetrics(), 5_000)])
        )
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django_generic_tasks"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    USE_TZ=True,
)
django.setup()
from pydantic import BaseModel
import django_generic_tasks as tasks
from django_generic_tasks.backends import ImmediateBackend

class P(BaseModel):
    user_id: int
    subject: str

class Noop(tasks.Task[P]):
    name = "bench.otel.noop"
    def run(self):
        return None

params, backend = P(user_id=42, subject="Welcome"), ImmediateBackend()
for _ in range(2000):
    Noop(params).start(backend=backend)
gc.collect()
began = time.perf_counter()
for _ in range(runs):
    Noop(params).start(backend=backend)
print(json.dumps({"us_per_run": (time.perf_counter() - began) / runs * 1e6}))
"""

VARIANTS = {
    "baseline": "baseline (before the hooks)",
    "api": "api, no SDK",
    "sdk": "SDK traces (batch processor)",
    "sdk-metrics": "SDK traces + metrics",
}


def default_baseline() -> str:
    """The parent of the commit that added ``observability/``."""
    first = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--",
         "src/django_generic_tasks/observability/__init__.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()[-1]  # fmt: skip
    return f"{first}^"


def extract(ref: str, into: Path) -> Path:
    """``src/`` of ``ref``, extracted into ``into``."""
    data = subprocess.run(
        ["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    return into / "src"


def measure(src: Path, variant: str, runs: int) -> float:
    """Microseconds per ``start()`` of one child process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), variant, str(runs)],
        capture_output=True, text=True, check=True, cwd=tempfile.gettempdir(),
    ).stdout  # fmt: skip
    return float(json.loads(out.splitlines()[-1])["us_per_run"])


def main(quick: bool = False, argv: list[str] | None = None) -> None:
    """Print the table (``quick``: one short round, the smoke run of ``bench/run.py --quick``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default=None, help="git ref of the tree before the hooks")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument(
        "--no-sdk", action="store_true", help="only the baseline and the API without an SDK"
    )
    args = parser.parse_args(argv)
    if quick:
        args.rounds, args.runs = 1, 2_000
    ref = args.baseline or default_baseline()
    with tempfile.TemporaryDirectory() as tmp:
        baseline_src = extract(ref, Path(tmp))
        sources = {"baseline": baseline_src}
        variants = {k: v for k, v in VARIANTS.items() if not (args.no_sdk and "sdk" in k)}
        results: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant in variants:
                src = sources.get(variant, ROOT / "src")
                results[variant].append(measure(src, variant, args.runs))
    base = statistics.median(results["baseline"])
    print(f"start() on ImmediateBackend, {args.runs:,} runs x {args.rounds} rounds; "
          f"baseline {ref}; Python {sys.version.split()[0]}\n")  # fmt: skip
    print(
        "| variant | µs per run, median (min-max) | speed vs baseline | median round ratio "
        "| added µs per run |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for variant, label in variants.items():
        values = results[variant]
        median = statistics.median(values)
        paired = statistics.median(b / v for b, v in zip(results["baseline"], values, strict=True))
        print(
            f"| {label} | {median:.2f} ({min(values):.2f}-{max(values):.2f}) | "
            f"{base / median:.3f}x | {paired:.3f}x | {median - base:+.2f} |"
        )


if __name__ == "__main__":
    main()
