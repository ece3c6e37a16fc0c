"""``python manage.py tasks_sync_schedules --cloud-scheduler [--dry-run]``."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    """Create, update and delete Cloud Scheduler jobs so each schedule calls its endpoint."""

    help = (
        "Sync schedules to Google Cloud Scheduler HTTP jobs (only jobs this command created "
        "are changed). Prints the plan as a diff; --dry-run stops there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """``--cloud-scheduler`` (required: the one target), ``--dry-run``, target overrides."""
        parser.add_argument(
            "--cloud-scheduler", action="store_true", help="Sync to Cloud Scheduler."
        )
        parser.add_argument("--dry-run", action="store_true", help="Print the plan only.")
        parser.add_argument("--project", help="Default: CloudTasksBackend's project.")
        parser.add_argument("--location", help="Default: CloudTasksBackend's location.")
        parser.add_argument("--base-url", help="Default: CloudTasksBackend's base_url.")
        parser.add_argument("--service-account", help="Default: CloudTasksBackend's account.")
        parser.add_argument("--audience", help="Default: CloudTasksBackend's audience.")
        parser.add_argument(
            "--namespace",
            help="This deployment's jobs (letters, digits, _); only they are changed. "
            "Default: a hash of the base URL.",
        )
        parser.add_argument(
            "--delete-legacy",
            action="store_true",
            help="Also delete jobs synced before namespaces (only if this deployment owns "
            "every one of them).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Plan, print, apply."""
        from django_generic_tasks.exceptions import TasksError
        from django_generic_tasks.schedules import cloudscheduler as cs
        from django_generic_tasks.schedules.registry import all_entries

        if not options["cloud_scheduler"]:
            raise CommandError("Say where to sync: --cloud-scheduler (the only target so far).")
        try:
            target = _target(options)
            entries = all_entries()
            for entry in entries:
                cs.cron_of(entry)
            client = cs.new_client(os.environ.get(cs.EMULATOR_HOST_ENV))
            result = cs.plan(client, target, entries, delete_legacy=options["delete_legacy"])
        except TasksError as exc:
            raise CommandError(str(exc)) from None
        for line in result.lines():
            self.stdout.write(line)
        if options["dry_run"] or result.empty:
            if options["dry_run"] and not result.empty:
                self.stdout.write("Dry run: nothing was changed.")
            return
        cs.apply(client, target, result)
        self.stdout.write(
            f"Created {len(result.create)}, updated {len(result.update)}, "
            f"deleted {len(result.delete) + len(result.legacy_deleted)} job(s)."
        )


def _target(options: dict[str, Any]) -> Any:
    from dataclasses import replace

    from django_generic_tasks.schedules.cloudscheduler import check_base_url, check_namespace

    target = _given_target(options)
    check_base_url(target.base_url)
    if options["namespace"] is not None:
        target = replace(target, namespace=check_namespace(options["namespace"]))
    return target


def _given_target(options: dict[str, Any]) -> Any:
    from django_generic_tasks.backends.cloudtasks.request import default_audience
    from django_generic_tasks.conf import get_backend
    from django_generic_tasks.schedules.cloudscheduler import Target, target_from_backend

    given = [options[k] for k in ("project", "location", "base_url", "service_account")]
    if all(given):
        project, location, base_url, account = given
        return Target(
            project, location, base_url, account, options["audience"] or default_audience(base_url)
        )
    target = target_from_backend(get_backend())
    overrides = {
        "project": options["project"],
        "location": options["location"],
        "base_url": options["base_url"],
        "service_account_email": options["service_account"],
        "audience": options["audience"],
    }
    from dataclasses import replace

    return replace(target, **{k: v for k, v in overrides.items() if v})
