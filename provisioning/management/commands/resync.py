from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from directory.connectors import DirectoryError
from directory.models import Integration, IntegrationKind
from passportal.models import Client
from provisioning import agent_requests, runs, sync
from provisioning.models import SyncStatus, SyncTrigger
from provisioning.views.rows import change_rows
from provisioning.wording import counts_in_words, run_outcome


class Command(BaseCommand):
    help = ("Run a full sync now for one or more integrations, a client's, or all; --dry-run shows what it would "
            "change and changes nothing; --incremental runs the every-5-minutes delta sync instead of a full one.")

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--integration", type=int, action="append", default=[], metavar="ID")
        parser.add_argument("--client", metavar="ID-or-name")
        parser.add_argument("--all", action="store_true")
        parser.add_argument("--dry-run", action="store_true", help="Show what would change; change nothing.")
        parser.add_argument("--wait", action="store_true", help="Run here and wait, instead of queueing.")
        parser.add_argument(
            "--timeout", type=float, metavar="SECONDS",
            help="With --dry-run of an on-prem agent's integration: how long to wait for the agent's read (default: "
                 "AGENT_PREVIEW_TIMEOUT_MINUTES for it to pick the request up, AGENT_REQUEST_TIMEOUT_MINUTES in all).")
        parser.add_argument(
            "--last-upload", action="store_true",
            help="With --dry-run of an on-prem agent's integration: preview the agent's last upload instead of "
                 "asking it to read Active Directory now (the output says how old that upload is).")
        parser.add_argument(
            "--incremental", action="store_true",
            help="Run the incremental sync the 5-minute schedule runs: Entra ID reads only what changed since the "
                 "last run. Active Directory is always read in full.")

    def handle(self, *args: str, integration: list[int], client: str | None, all: bool, dry_run: bool, wait: bool,
               incremental: bool, timeout: float | None = None, last_upload: bool = False, **options: Any) -> None:
        self.timeout, self.last_upload = timeout, last_upload
        if dry_run and incremental:
            raise CommandError("--dry-run previews a full read; it cannot be combined with --incremental.")
        integrations = self._select(integration, client, all)
        full = not incremental
        failed = 0
        for item in integrations:
            label = f"[{item.pk}] {item.client.name} / {item.name}"
            if incremental:
                self.stdout.write(f"{label}: {incremental_read(item)}")
            if dry_run:
                failed += self._dry_run(item, label)
            elif wait:
                self.stdout.write(f"{label}: syncing...")
                run = sync.run_sync(item, SyncTrigger.COMMAND, full=full)
                self.stdout.write(f"{label}: {run_outcome(run)}; {counts_in_words(run.counts)}")
                if run.status == SyncStatus.FAILED:
                    failed += 1
                    self.stderr.write(f"{label}: {run.error}")
                elif run.status == SyncStatus.HELD:
                    self.stdout.write(f"{label}: {run.error}")
            else:
                run = runs.request_sync(item, SyncTrigger.COMMAND, full=full)
                self.stdout.write(f"{label}: queued as run {run.pk}")
        if failed:
            raise CommandError(f"{failed} of {len(integrations)} integration(s) failed")

    def _select(self, ids: list[int], client: str | None, everything: bool) -> list[Integration]:
        if not (ids or client or everything):
            raise CommandError("Say which: --integration ID (repeatable), --client ID-or-name, or --all.")
        qs = Integration.objects.select_related("client")
        if everything:
            return list(qs)
        chosen: list[Integration] = []
        if ids:
            found = {i.pk: i for i in qs.filter(pk__in=ids)}
            missing = [str(i) for i in ids if i not in found]
            if missing:
                raise CommandError(f"No integration with id {', '.join(missing)}")
            chosen += [found[i] for i in ids]
        if client:
            match = Client.objects.filter(pk=int(client)) if client.isdigit() else Client.objects.filter(
                name__iexact=client)
            target = match.first()
            if target is None:
                raise CommandError(f"No client with id or name {client!r}")
            chosen += [i for i in qs.filter(client=target) if i not in chosen]
        return chosen

    def _dry_run(self, item: Integration, label: str) -> int:
        if agent_requests.needs_agent(item) and not self.last_upload:
            return self._agent_dry_run(item, label)
        try:
            result = sync.preview(item, trigger=SyncTrigger.COMMAND)
        except DirectoryError as exc:
            self.stderr.write(f"{label}: cannot read the directory: {exc}")
            return 1
        self._show(item, label, result.plan.counts, result.changes)
        return 0

    def _agent_dry_run(self, item: Integration, label: str) -> int:
        """Ask the on-prem agent to read AD now and wait for it; "agent not responding" when it does not answer."""
        self.stdout.write(f"{label}: asking the on-prem agent to read Active Directory now...")
        run = agent_requests.start_preview(item, SyncTrigger.COMMAND)
        outcome = agent_requests.wait_for_preview(run, timeout_seconds=self.timeout)
        if run.status != SyncStatus.SUCCEEDED:
            prefix = "agent not responding" if outcome.state == agent_requests.NOT_RESPONDING else "agent read failed"
            self.stderr.write(f"{label}: {prefix}: {run.error or outcome.message} (--last-upload previews the "
                              "agent's last upload instead)")
            return 1
        self._show(item, label, run.counts, run.changes)
        return 0

    def _show(self, item: Integration, label: str, counts: dict[str, int], changes: dict[str, Any]) -> None:
        self.stdout.write(f"{label}: dry run, nothing changed; {counts_in_words(counts, preview=True)}")
        if changes.get("source"):  # the agent's last upload: what the preview was computed from
            self.stdout.write(f"  {changes['source']}")
        # The same rows, in the same words, as the confirmation page shows.
        for row in change_rows(changes, directory_kind=item.kind):
            self.stdout.write(f"  {row.action:<15} {row.user}{': ' + row.detail if row.detail else ''}")
        if changes["hold_reason"]:
            self.stdout.write(f"  disables would be held: {changes['hold_reason']}")


def incremental_read(integration: Integration) -> str:
    """What an incremental run of this integration reads, in words, so nobody takes a full read for a delta one."""
    if integration.kind != IntegrationKind.ENTRA:
        return f"incremental: {integration.get_kind_display()} has no incremental read, it is read in full"
    if not integration.delta_state:
        return "incremental: no changes tracked yet, so this run reads everything and starts tracking them"
    return "incremental: only what changed in Entra ID since the last run"
