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

from django_generic_tasks.schedules.cloudscheduler import (
    EMULATOR_HOST_ENV,
    default_namespace,
    job_id,
)
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
NS = default_namespace(BASE_URL)
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
    morning = created[f"django-generic-tasks schedule@{NS} add-morning"]
    assert morning.parent == PARENT
    job = morning.job
    assert job.name == f"{PARENT}/jobs/{job_id('add-morning', NS)}"
    assert job_id("add-morning", NS).startswith(f"dgt-{NS}-add-morning-")
    assert (job.schedule, job.time_zone) == ("30 6 * * mon-fri", "Europe/Berlin")
    target = job.http_target
    assert target.uri == "https://tasks.example.test/api/tasks/tests.add"
    assert target.http_method == scheduler_v1.HttpMethod.POST
    assert dict(target.headers) == {"Content-Type": "application/json"}
    assert json.loads(target.body) == {"a": 2, "b": 3}
    assert target.oidc_token.service_account_email == OIDC_EMAIL
    assert target.oidc_token.audience == OIDC_AUDIENCE
    quarter = created[f"django-generic-tasks schedule@{NS} add-quarter"].job
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
    assert fake.requests[2][1].name == f"{PARENT}/jobs/{job_id('add-quarter', NS)}"
    assert f"~ {PARENT}/jobs/{job_id('add-morning', NS)}" in output
    assert f"- {PARENT}/jobs/{job_id('add-quarter', NS)}" in output
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
    job = fake.jobs[f"{PARENT}/jobs/{job_id('add-morning', NS)}"]
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


STAGING_URL = "https://staging.example.test/api/tasks/"


def sync_to(base_url: str, *extra: str) -> str:
    flags = [f for f in FLAGS if not f.startswith("--base-url=")]
    out = io.StringIO()
    call_command("tasks_sync_schedules", *flags, f"--base-url={base_url}", *extra, stdout=out)
    return out.getvalue()


def test_two_deployments_in_one_project_never_touch_each_others_jobs(
    fake: FakeCloudScheduler, settings: Any
) -> None:
    sync_to(BASE_URL)
    production = dict(fake.jobs)
    sync_to(STAGING_URL)  # the same schedule ids, another deployment
    assert len(fake.jobs) == 4
    assert all(fake.jobs[name] == job for name, job in production.items())
    settings.TASKS_SCHEDULES = {}  # staging drops every schedule
    fake.requests.clear()
    sync_to(STAGING_URL)
    assert fake.calls() == ["ListJobs", "DeleteJob", "DeleteJob"]
    assert fake.jobs == production  # production's jobs: not redirected, not deleted


def test_an_explicit_namespace_names_the_jobs(fake: FakeCloudScheduler) -> None:
    sync("--namespace=prod_eu")
    assert sorted(fake.jobs) == sorted(
        f"{PARENT}/jobs/{job_id(schedule, 'prod_eu')}" for schedule in SCHEDULES
    )
    assert all(
        job.description.startswith("django-generic-tasks schedule@prod_eu ")
        for job in fake.jobs.values()
    )


def test_jobs_synced_before_namespaces_are_listed_and_deleted_only_when_asked(
    fake: FakeCloudScheduler,
) -> None:
    old = scheduler_v1.Job(
        name=f"{PARENT}/jobs/dgt-add-morning-12345678",
        description="django-generic-tasks schedule add-morning",
    )
    fake.jobs[old.name] = old
    output = sync()
    assert old.name in fake.jobs
    assert "--delete-legacy" in output
    assert old.name in output
    sync("--delete-legacy")
    assert old.name not in fake.jobs
    assert len(fake.jobs) == 2


@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://tasks.example.test/api/tasks/",
        "http://tasks.example.test/api/tasks/",
        "file:///etc/passwd",
        "https:///no-host",
    ],
)
def test_a_base_url_that_is_not_https_is_refused(fake: FakeCloudScheduler, base_url: str) -> None:
    with pytest.raises(CommandError, match="https URLs only"):
        sync_to(base_url)
    assert fake.requests == []


@pytest.mark.parametrize(
    "base_url", ["http://localhost:8000/t/", "http://127.0.0.1/t/", "http://[::1]/t/"]
)
def test_http_is_accepted_for_loopback_hosts(fake: FakeCloudScheduler, base_url: str) -> None:
    sync_to(base_url, "--dry-run")
    assert fake.calls() == ["ListJobs"]


@pytest.mark.parametrize("namespace", ["", "a-b", "x" * 31, "ü"])
def test_a_namespace_outside_the_job_id_alphabet_is_refused(
    fake: FakeCloudScheduler, namespace: str
) -> None:
    with pytest.raises(CommandError, match="--namespace"):
        sync(f"--namespace={namespace}")
    assert fake.requests == []
