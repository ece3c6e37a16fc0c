"""Sync schedules to Google Cloud Scheduler HTTP jobs (``manage.py tasks_sync_schedules``).

Each schedule becomes one job calling its task's endpoint, ``POST <base_url><task name>`` with
the schedule's params as the JSON body and an OIDC token for ``service_account_email`` and
``audience`` (the values ``CloudTasksBackend`` uses), on the schedule's cron and time zone.
Jobs belong to one deployment's namespace (``--namespace``, by default a hash of the base URL):
their id starts with ``dgt-<namespace>-`` and their description with
``django-generic-tasks schedule@<namespace> ``; only those are updated or deleted, so staging
and production in one project and location never touch each other's jobs. Jobs of versions
before namespaces (``LEGACY_MARKER``) are listed, and deleted only when asked. ``every``
schedules are synced only when they are a cron in disguise (minutes dividing an hour, hours
dividing a day, one day); others are refused. Needs the extra ``cloudscheduler``
(``google-cloud-scheduler``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..core.schedule import ScheduleEntry
from ..exceptions import ConfigurationError, MissingDependencyError

JOB_PREFIX = "dgt-"
MARKER = "django-generic-tasks schedule@"
"""Followed by the namespace, a space and the schedule id, in a job's description."""
LEGACY_MARKER = "django-generic-tasks schedule "
"""The description of jobs synced before namespaces (no deployment can be told from them)."""
NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9_]{1,30}")
"""A namespace: no ``-``, so no namespace's job-id prefix is a prefix of another's."""
EMULATOR_HOST_ENV = "CLOUD_SCHEDULER_EMULATOR_HOST"


class UnsyncableScheduleError(ConfigurationError):
    """A schedule Cloud Scheduler cannot run as it is (an interval that is no cron...)."""


def import_scheduler_v1() -> Any:
    """``google.cloud.scheduler_v1``, or ``MissingDependencyError`` naming the extra."""
    try:
        from google.cloud import scheduler_v1
    except ImportError as exc:
        raise MissingDependencyError(
            "The Cloud Scheduler sync needs google-cloud-scheduler: "
            "pip install 'django-generic-tasks[cloudscheduler]'."
        ) from exc
    return scheduler_v1


def new_client(emulator_host: str | None = None) -> Any:
    """A ``CloudSchedulerClient``: insecure gRPC to ``emulator_host`` (tests), else ADC."""
    scheduler_v1 = import_scheduler_v1()
    if emulator_host:
        import grpc  # type: ignore[import-untyped]
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
            CloudSchedulerGrpcTransport,
        )

        transport = CloudSchedulerGrpcTransport(
            channel=grpc.insecure_channel(emulator_host),
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        )
        return scheduler_v1.CloudSchedulerClient(transport=transport)
    return scheduler_v1.CloudSchedulerClient()


def default_namespace(base_url: str) -> str:
    """The namespace of a deployment that names none: a stable hash of its base URL (two
    deployments calling different URLs never share jobs)."""
    return hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:10]


def check_namespace(namespace: str) -> str:
    """``namespace`` when it is one (``NAMESPACE_PATTERN``), else ``ConfigurationError``."""
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        raise ConfigurationError(
            f"--namespace {namespace!r}: use 1-30 letters, digits or underscores."
        )
    return namespace


def job_id(schedule_id: str, namespace: str) -> str:
    """The job id of a schedule in ``namespace``: readable, unique (a hash of the id), within
    Cloud Scheduler's alphabet ``[A-Za-z0-9_-]``."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", schedule_id).strip("-")[:80]
    digest = hashlib.sha256(schedule_id.encode()).hexdigest()[:8]
    return f"{JOB_PREFIX}{namespace}-{slug}-{digest}"


def cron_of(entry: ScheduleEntry) -> tuple[str, str]:
    """The (cron, time zone) Cloud Scheduler runs ``entry`` on; ``UnsyncableScheduleError``."""
    schedule = entry.schedule
    if schedule.cron is not None:
        if len(schedule.cron.split()) != 5:
            raise UnsyncableScheduleError(
                f"Schedule {entry.id!r}: Cloud Scheduler takes 5-field cron expressions only, "
                f"not {schedule.cron!r}."
            )
        return schedule.cron, schedule.tz
    every = schedule.every or timedelta(0)
    minutes, hours = every / timedelta(minutes=1), every / timedelta(hours=1)
    if every == timedelta(days=1):
        return "0 0 * * *", "UTC"
    if hours.is_integer() and 1 <= hours < 24 and 24 % int(hours) == 0:
        return ("0 * * * *" if hours == 1 else f"0 */{int(hours)} * * *"), "UTC"
    if minutes.is_integer() and 1 <= minutes < 60 and 60 % int(minutes) == 0:
        return ("* * * * *" if minutes == 1 else f"*/{int(minutes)} * * * *"), "UTC"
    raise UnsyncableScheduleError(
        f"Schedule {entry.id!r}: every={every} is not a cron schedule (Cloud Scheduler runs "
        "cron only): use a whole number of minutes dividing an hour, of hours dividing a "
        "day, or one day, or give the schedule a cron expression."
    )


@dataclass(frozen=True)
class Target:
    """Where jobs call and as whom (from ``CloudTasksBackend``'s options)."""

    project: str
    location: str
    base_url: str
    service_account_email: str
    audience: str
    namespace: str = ""
    """This deployment's jobs; empty: ``default_namespace(base_url)``."""

    @property
    def parent(self) -> str:
        """``projects/<project>/locations/<location>``."""
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def job_namespace(self) -> str:
        """The namespace the jobs are synced in."""
        return self.namespace or default_namespace(self.base_url)


def desired_job(entry: ScheduleEntry, target: Target) -> Any:
    """The Cloud Scheduler job for ``entry``."""
    from ..backends.cloudtasks.request import task_url

    scheduler_v1 = import_scheduler_v1()
    cron, zone = cron_of(entry)
    return scheduler_v1.Job(
        name=f"{target.parent}/jobs/{job_id(entry.id, target.job_namespace)}",
        description=f"{MARKER}{target.job_namespace} {entry.id}",
        schedule=cron,
        time_zone=zone,
        http_target=scheduler_v1.HttpTarget(
            uri=task_url(target.base_url, entry.task_name),
            http_method=scheduler_v1.HttpMethod.POST,
            headers={"Content-Type": "application/json"},
            body=entry.params_json.encode(),
            oidc_token=scheduler_v1.OidcToken(
                service_account_email=target.service_account_email, audience=target.audience
            ),
        ),
    )


COMPARED = ("description", "schedule", "time_zone", "http_target")


def _differences(current: Any, wanted: Any) -> list[str]:
    changed = []
    for name in COMPARED:
        old, new = getattr(current, name), getattr(wanted, name)
        if name == "http_target":
            old_t = (
                old.uri,
                int(old.http_method),
                dict(old.headers),
                bytes(old.body),
                old.oidc_token.service_account_email,
                old.oidc_token.audience,
            )
            new_t = (
                new.uri,
                int(new.http_method),
                dict(new.headers),
                bytes(new.body),
                new.oidc_token.service_account_email,
                new.oidc_token.audience,
            )
            if old_t != new_t:
                changed.append(
                    f"http_target: {old.uri} {bytes(old.body)!r} -> {new.uri} {bytes(new.body)!r}"
                )
        elif old != new:
            changed.append(f"{name}: {old!r} -> {new!r}")
    return changed


@dataclass
class Plan:
    """What a sync does: jobs to create, update (with what changes), delete, and keep."""

    create: list[Any] = field(default_factory=list)
    update: list[tuple[Any, list[str]]] = field(default_factory=list)
    delete: list[Any] = field(default_factory=list)
    unchanged: list[Any] = field(default_factory=list)
    legacy: list[Any] = field(default_factory=list)
    """Jobs synced before namespaces: listed; deleted only with ``delete_legacy``."""
    delete_legacy: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not (self.create or self.update or self.delete or self.legacy_deleted)

    @property
    def legacy_deleted(self) -> list[Any]:
        """The legacy jobs this plan deletes."""
        return self.legacy if self.delete_legacy else []

    def lines(self) -> list[str]:
        """The plan as a diff: ``+`` create, ``~`` update, ``-`` delete."""
        out = [
            f"+ {j.name}  [{j.schedule} {j.time_zone}] POST {j.http_target.uri}"
            for j in self.create
        ]
        for job, changes in self.update:
            out.append(f"~ {job.name}")
            out.extend(f"    {change}" for change in changes)
        out.extend(f"- {j.name}  ({j.description})" for j in [*self.delete, *self.legacy_deleted])
        if self.legacy and not self.delete_legacy:
            out.append(
                f"! {len(self.legacy)} job(s) synced before namespaces are left alone (any "
                "deployment may own them); if they are this deployment's, run again with "
                "--delete-legacy, or they fire beside the new ones:"
            )
            out.extend(f"    {j.name}  ({j.description})" for j in self.legacy)
        if self.empty:
            out.append(f"Nothing to change: {len(self.unchanged)} job(s) up to date.")
        return out


def ours(job: Any, namespace: str) -> bool:
    """Whether ``job`` was created by this sync in ``namespace`` (id prefix and description
    marker)."""
    return bool(
        job.name.rsplit("/", 1)[-1].startswith(f"{JOB_PREFIX}{namespace}-")
        and job.description.startswith(f"{MARKER}{namespace} ")
    )


def legacy(job: Any) -> bool:
    """Whether ``job`` was created by a sync before namespaces."""
    return bool(
        job.name.rsplit("/", 1)[-1].startswith(JOB_PREFIX)
        and job.description.startswith(LEGACY_MARKER)
    )


def plan(
    client: Any, target: Target, entries: Sequence[ScheduleEntry], delete_legacy: bool = False
) -> Plan:
    """Compare the schedules with this namespace's jobs under ``target.parent``."""
    namespace = target.job_namespace
    wanted = {job.name: job for job in (desired_job(e, target) for e in entries)}
    jobs = list(client.list_jobs(parent=target.parent))
    existing = {job.name: job for job in jobs if ours(job, namespace)}
    result = Plan(legacy=[job for job in jobs if legacy(job)], delete_legacy=delete_legacy)
    for name, job in wanted.items():
        current = existing.get(name)
        if current is None:
            result.create.append(job)
            continue
        changes = _differences(current, job)
        if changes:
            result.update.append((job, changes))
        else:
            result.unchanged.append(job)
    result.delete = [job for name, job in existing.items() if name not in wanted]
    return result


def apply(client: Any, target: Target, result: Plan) -> None:
    """Carry out ``result``: create, update, then delete jobs."""
    for job in result.create:
        client.create_job(parent=target.parent, job=job)
    for job, _changes in result.update:
        client.update_job(job=job)
    for job in [*result.delete, *result.legacy_deleted]:
        client.delete_job(name=job.name)


def check_base_url(base_url: str) -> str:
    """``base_url`` when jobs may call it: ``https``, or ``http`` to a loopback host (an
    emulator); else ``ConfigurationError`` (jobs carry OIDC tokens: never in clear text)."""
    from ipaddress import ip_address
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "https" and host:
        return base_url
    if parts.scheme == "http" and loopback:
        return base_url
    raise ConfigurationError(
        f"--base-url {base_url!r}: jobs call https URLs only (http only for localhost)."
    )


def target_from_backend(backend: Any) -> Target:
    """The target from a configured ``CloudTasksBackend`` (``ConfigurationError`` if none)."""
    from ..backends.cloudtasks import CloudTasksBackend

    if not isinstance(backend, CloudTasksBackend):
        raise ConfigurationError(
            "tasks_sync_schedules --cloud-scheduler reads project, location, base_url, "
            "service_account_email and audience from CloudTasksBackend: set TASKS_BACKEND to "
            "it, or pass --project, --location, --base-url, --service-account."
        )
    missing = [
        name
        for name in ("project", "location", "base_url", "service_account_email")
        if not getattr(backend, name)
    ]
    if missing:
        raise ConfigurationError(f"CloudTasksBackend needs {', '.join(missing)} to sync jobs.")
    return Target(
        str(backend.project),
        str(backend.location),
        str(backend.base_url),
        str(backend.service_account_email),
        str(backend.audience),
    )
