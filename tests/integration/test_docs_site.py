"""The documentation site builds strictly and its pages render in headless Chromium.

``mkdocs build --strict`` (no broken link, no missing reference) builds the site into a
temporary folder, a local HTTP server serves it, and Chromium loads the home page and a how-to
guide. The screenshots are saved to ``artifacts/docs-home.png`` and
``artifacts/docs-how-to-backends.png`` (git-ignored).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_docs_page import ARTIFACTS, ROOT, _chromium_args

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("MkDocs is not installed (the `docs` extra)")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_site_has_the_four_parts_and_the_generated_tables(site: Path) -> None:
    home = (site / "index.html").read_text()
    for part in ("Tutorial", "How-to guides", "Reference", "Explanation"):
        assert part in home, part
    capabilities = (site / "reference" / "capabilities" / "index.html").read_text()
    assert "<table>" in capabilities
    assert "DatabaseBackend" in capabilities
    check_ids = (site / "reference" / "check-ids" / "index.html").read_text()
    assert "django_generic_tasks.E301" in check_ids
    api = (site / "reference" / "api" / "package" / "index.html").read_text()
    assert "start_many" in api  # mkdocstrings rendered Task's members


def test_api_reference_documents_every_public_name(site: Path) -> None:
    import django_generic_tasks

    api = site / "reference" / "api"
    html = (api / "package" / "index.html").read_text() + (
        api / "exceptions" / "index.html"
    ).read_text()
    missing = [
        name
        for name in django_generic_tasks.__all__
        if f'id="django_generic_tasks.{name}"' not in html
        and f'id="django_generic_tasks.exceptions.{name}"' not in html
        and f'id="django_generic_tasks.core.registry.{name}"' not in html
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("path", "name", "expected"),
    [
        ("/", "docs-home.png", "Active Job for Django"),
        ("/how-to/backends/", "docs-how-to-backends.png", "DatabaseBackend (durable by default)"),
    ],
)
def test_page_renders_in_chromium(
    served: str, tmp_path: Path, path: str, name: str, expected: str
) -> None:
    args = _chromium_args(tmp_path / "profile")
    args[-1] = "--window-size=1280,1600"
    dom = subprocess.run(
        [*args, "--dump-dom", served + path],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert expected in dom
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / name
    screenshot.unlink(missing_ok=True)
    subprocess.run(
        [*args, f"--screenshot={screenshot}", served + path],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 10_000
