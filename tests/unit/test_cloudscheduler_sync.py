"""``tasks_sync_schedules --cloud-scheduler`` against a local gRPC server implementing the
CloudScheduler service from google-cloud-scheduler's own protos: the exact requests, an
idempotent second run, only our jobs touched; and the synced job's HTTP request, replayed with
a locally minted OIDC token, passes our own endpoint's OIDC check."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from google.cloud import scheduler_v1
from google.protobuf import empty_pb2

from django_generic_tasks.schedules.cloudscheduler import EMULATOR_HOST_ENV, job_id
from tests.oidc_support import (
    OIDC_AUDIENCE,
    OIDC_EMAIL,
    certs_server,
    google_claims,
    mint_token,
    oidc_settings,
    signing_key,
)
from tests.testapp.tasks import calls

__all__ = ["certs_server", "oidc_settings", "signing_key"]
PARENT = "projects/proj/locations/europe-west1"
BASE_URL = "https://tasks.example.test/api/tasks/"
SCHEDULES = {
    "add-morning": {
        "task": "tests.add",
        "cron": "30 6 * * mon-fri",
        "tz": "Europe/Berlin",
        "params": {"a": 2, "b": 3},
    },
    "add-quarter": {"task": "tests.add", "every": 900, "params": {"a": 1}},
}
FLAGS = [
    "--cloud-scheduler",
    "--project=proj",
    "--location=europe-west1",
    f"--base-url={BASE_URL}",
    f"--service-account={OIDC_EMAIL}",
    f"--audience={OIDC_AUDIENCE}",
]


class FakeCloudScheduler:
    """Keeps jobs by name and records every request as it arrives on the wire."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, Any] = {}
        self.requests: list[tuple[str, Any]] = []

    def list_jobs(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.requests.append(("ListJobs", request))
            jobs = [j for n, j in sorted(self.jobs.items()) if n.startswith(request.parent + "/")]
        return scheduler_v1.ListJobsResponse(jobs=jobs)

    def create_job(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.requests.append(("CreateJob", request))
            if request.job.name in self.jobs:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "job exists")
            self.jobs[request.job.name] = request.job
        return request.job

    def update_job(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.requests.append(("UpdateJob", request))
            if request.job.name not in self.jobs:
                context.abort(grpc.StatusCode.NOT_FOUND, "no such job")
            self.jobs[request.job.name] = request.job
        return request.job

    def delete_job(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.requests.append(("DeleteJob", request))
            if self.jobs.pop(request.name, None) is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "no such job")
        return empty_pb2.Empty()

    def calls(self) -> list[str]:
        return [name for name, _ in self.requests]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudScheduler]:
    state = FakeCloudScheduler()
    v1 = scheduler_v1

    def unary(method: Any, request_type: Any, response_serializer: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            method,
            request_deserializer=request_type.deserialize,
            response_serializer=response_serializer,
        )

    handler = grpc.method_handlers_generic_handler(
        "google.cloud.scheduler.v1.CloudScheduler",
        {
            "ListJobs": unary(state.list_jobs, v1.ListJobsRequest, v1.ListJobsResponse.serialize),
            "CreateJob": unary(state.create_job, v1.CreateJobRequest, v1.Job.serialize),
            "UpdateJob": unary(state.update_job, v1.UpdateJobRequest, v1.Job.serialize),
            "DeleteJob": unary(
                state.delete_job, v1.DeleteJobRequest, empty_pb2.Empty.SerializeToString
            ),
        },
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv(EMULATOR_HOST_ENV, f"127.0.0.1:{port}")
    yield state
    server.stop(grace=None)


@pytest.fixture(autouse=True)
def _schedules(settings: Any) -> None:
    settings.TASKS_SCHEDULES = SCHEDULES


def sync(*extra: str) -> str:
    out = io.StringIO()
    call_command("tasks_sync_schedules", *FLAGS, *extra, stdout=out)
    return out.getvalue()


def test_first_sync_creates_one_http_job_per_schedule_with_exact_fields(
    fake: FakeCloudScheduler,
) -> None:
    output = sync()
    assert fake.calls() == ["ListJobs", "CreateJob", "CreateJob"]
    assert fake.requests[0][1].parent == PARENT
    created = {r.job.description: r for name, r in fake.requests if name == "CreateJob"}
    morning = created["django-generic-tasks schedule add-morning"]
    assert morning.parent == PARENT
    job = morning.job
    assert job.name == f"{PARENT}/jobs/{job_id('add-morning')}"
    assert job_id("add-morning").startswith("dgt-add-morning-")
    assert (job.schedule, job.time_zone) == ("30 6 * * mon-fri", "Europe/Berlin")
    target = job.http_target
    assert target.uri == "https://tasks.example.test/api/tasks/tests.add"
    assert target.http_method == scheduler_v1.HttpMethod.POST
    assert dict(target.headers) == {"Content-Type": "application/json"}
    assert json.loads(target.body) == {"a": 2, "b": 3}
    assert target.oidc_token.service_account_email == OIDC_EMAIL
    assert target.oidc_token.audience == OIDC_AUDIENCE
    quarter = created["django-generic-tasks schedule add-quarter"].job
    assert (quarter.schedule, quarter.time_zone) == ("*/15 * * * *", "UTC")
    assert output.count("+ projects/proj/locations/europe-west1/jobs/dgt-") == 2
    assert "Created 2, updated 0, deleted 0 job(s)." in output


def test_a_second_sync_changes_nothing_and_says_so(fake: FakeCloudScheduler) -> None:
    sync()
    fake.requests.clear()
    output = sync()
    assert fake.calls() == ["ListJobs"]
    assert "Nothing to change: 2 job(s) up to date." in output


def test_changed_params_update_and_removed_schedules_delete_only_our_jobs(
    fake: FakeCloudScheduler, settings: Any
) -> None:
    sync()
    foreign = scheduler_v1.Job(name=f"{PARENT}/jobs/nightly-backup", description="backups")
    lookalike = scheduler_v1.Job(name=f"{PARENT}/jobs/dgt-mine", description="hand-made job")
    fake.jobs[foreign.name] = foreign
    fake.jobs[lookalike.name] = lookalike
    settings.TASKS_SCHEDULES = {"add-morning": {**SCHEDULES["add-morning"], "params": {"a": 9}}}
    fake.requests.clear()
    output = sync()
    assert fake.calls() == ["ListJobs", "UpdateJob", "DeleteJob"]
    updated = fake.requests[1][1].job
    assert json.loads(updated.http_target.body) == {"a": 9, "b": 0}
    assert fake.requests[2][1].name == f"{PARENT}/jobs/{job_id('add-quarter')}"
    assert f"~ {PARENT}/jobs/{job_id('add-morning')}" in output
    assert f"- {PARENT}/jobs/{job_id('add-quarter')}" in output
    assert foreign.name in fake.jobs
    assert lookalike.name in fake.jobs


def test_dry_run_prints_the_plan_and_changes_nothing(fake: FakeCloudScheduler) -> None:
    output = sync("--dry-run")
    assert fake.calls() == ["ListJobs"]
    assert output.count("+ ") == 2
    assert "Dry run: nothing was changed." in output
    assert fake.jobs == {}


def test_an_interval_that_is_no_cron_is_refused_with_a_clear_message(
    fake: FakeCloudScheduler, settings: Any
) -> None:
    settings.TASKS_SCHEDULES = {"odd": {"task": "tests.add", "every": 7, "params": {"a": 1}}}
    with pytest.raises(CommandError, match=r"every=0:00:07 is not a cron schedule"):
        sync()
    assert fake.requests == []


@pytest.mark.django_db
@pytest.mark.usefixtures("oidc_settings")
def test_the_synced_job_request_passes_our_oidc_check_when_replayed(
    fake: FakeCloudScheduler, signing_key: Any
) -> None:
    sync()
    job = fake.jobs[f"{PARENT}/jobs/{job_id('add-morning')}"]
    target = job.http_target
    token = mint_token(
        google_claims(
            audience=target.oidc_token.audience, email=target.oidc_token.service_account_email
        ),
        key=signing_key,
    )
    headers = {**dict(target.headers), "Authorization": f"Bearer {token}"}
    response = Client().post(
        urlsplit(target.uri).path,
        bytes(target.body),
        content_type=headers.pop("Content-Type"),
        headers=headers,
    )
    assert response.status_code == 200, response.content
    assert ("tests.add", 5) in calls
    forged = mint_token(google_claims(audience="https://evil.test/"), key=signing_key)
    refused = Client().post(
        urlsplit(target.uri).path,
        bytes(target.body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert refused.status_code == 401
