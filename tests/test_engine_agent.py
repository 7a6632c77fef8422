"""R17: an agent's committed upload starts its integration's run, which provisions from that upload."""

from __future__ import annotations

from directory.models import Folder
from passportal.models import PortalUser
from provisioning.models import Mapping, SyncRun
from tests.engine_helpers import site_level
from tests.test_agent_api import Agent, agent_integration, folder, user


def test_r17_a_committed_agent_upload_starts_a_run_that_provisions_from_it(
    client_org, settings, django_capture_on_commit_callbacks
):
    settings.TASKS_RUN_INLINE = True
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    sales, it = folder("Sales"), folder("IT")
    ann, bob = user(sales["id"], "Ann"), user(it["id"], "Bob")

    with django_capture_on_commit_callbacks(execute=True):
        agent.push([sales, it], [ann, bob])
    first = SyncRun.objects.get()
    assert first.trigger == "agent" and first.status == "succeeded", first.error
    assert PortalUser.objects.count() == 0, "nothing is mapped yet: the run only recorded the folders"

    Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=sales["id"]),
                           permission_level=site_level())
    with django_capture_on_commit_callbacks(execute=True):
        agent.push([sales, it], [ann, bob])
    latest = SyncRun.objects.filter(trigger="agent").first()
    assert latest.status == "succeeded" and latest.counts["created"] == 1
    assert list(PortalUser.objects.values_list("email", flat=True)) == ["ann@corp.test"]


def test_r21_an_upload_never_committed_starts_no_run(client_org, settings, django_capture_on_commit_callbacks):
    settings.TASKS_RUN_INLINE = True
    _, token = agent_integration(client_org)
    sales = folder("Sales")
    with django_capture_on_commit_callbacks(execute=True):
        Agent(token).push([sales], [user(sales["id"])], commit=False)
    assert not SyncRun.objects.exists()
