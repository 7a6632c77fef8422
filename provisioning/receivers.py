"""R17: an agent's committed upload starts its integration's run."""

from django.dispatch import receiver

from directory.signals import agent_upload_committed

from .models import SyncTrigger
from .services import request_sync


@receiver(agent_upload_committed, dispatch_uid="provisioning-agent-upload")
def start_run_after_agent_upload(sender, integration, **kwargs) -> None:
    request_sync(integration, SyncTrigger.AGENT, full=True)
