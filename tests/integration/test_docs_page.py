"""The OpenAPI docs page, loaded by headless Chromium from a real server, lists every task.

The server is Django's ``runserver`` (with ``--insecure`` so it serves django-ninja's bundled
Swagger UI from static files, with no CDN: there is no internet here), started on 127.0.0.1
with the test settings plus ``ninja`` and ``django.contrib.staticfiles`` in INSTALLED_APPS.
The screenshot is saved to ``artifacts/openapi-docs.png`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_service

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

pytestmark = pytest.mark.slow

DOCS_SETTINGS = textwrap.dedent(
    """
    from tests.settings import *  # noqa: F403

    _EXTRA = ("ninja", "django.contrib.staticfiles")
    INSTALLED_APPS = [
        *INSTALLED_APPS,  # noqa: F405
        *[app for app in _EXTRA if app not in INSTALLED_APPS],  # noqa: F405
    ]
    STATIC_URL = "/static/"
    DEBUG = False
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    need_service("Chromium is not installed (apt-get install -y chromium)")
    raise AssertionError("unreachable")


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "docs_settings.py").write_text(DOCS_SETTINGS)
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "docs_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}"),
            *("--insecure", "--noreload", "--skip-checks"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/api/openapi.json", timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        f"docs server did not start:\n{(tmp_path / 'server.log').read_text()}"
                    )
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _chromium_args(profile: Path) -> list[str]:
    return [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        "--window-size=1280,2400",
    ]


def test_docs_page_lists_every_task_offline(docs_server: str, tmp_path: Path) -> None:
    url = docs_server + "/api/docs"
    with urllib.request.urlopen(url, timeout=5) as response:
        html = response.read().decode()
    assert "cdn.jsdelivr.net" not in html
    assert "/static/ninja/swagger-ui-bundle.js" in html

    dom = subprocess.run(
        [*_chromium_args(tmp_path / "profile-dom"), "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "swagger-ui" in dom
    with urllib.request.urlopen(docs_server + "/api/openapi.json", timeout=5) as response:
        paths = json.load(response)["paths"]
    testapp_tasks = ("tests.add", "tests.flaky", "tests.async_echo")
    assert {f"/api/tasks/{name}" for name in testapp_tasks} <= set(paths)
    for path in paths:
        assert f'data-path="{path}"' in dom, path
    assert "Adds two numbers and records the call." in dom

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "openapi-docs.png"
    screenshot.unlink(missing_ok=True)
    subprocess.run(
        [
            *_chromium_args(tmp_path / "profile-shot"),
            f"--screenshot={screenshot}",
            url + "#/tasks/run_tests_add",  # deep link: the operation is shown expanded
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 10_000
