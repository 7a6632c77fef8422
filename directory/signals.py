"""Signals the directory app sends; the provisioning engine listens (directory never imports it)."""

from django.dispatch import Signal

# Sent after an agent upload is committed. Keyword arguments: integration, upload.
agent_upload_committed = Signal()

# Sent when an agent reports that its read of AD failed. Keyword arguments: integration, message, permanent, host.
# The receiver records the failed run and answers with it.
agent_read_failed = Signal()

# Sent on each poll of an agent. Keyword argument: integration. A receiver answers True when the portal wants a
# fresh read from the agent now (a Force Re-sync or single-user resync is waiting for it).
agent_polled = Signal()

# Sent when an agent asks which linked users its upload did not hold. Keyword argument: integration. A receiver
# answers with the external ids (objectGUIDs) of the integration's linked directory users.
agent_expected_users = Signal()

# Sent on each poll of an agent and when an upload starts. Keyword argument: integration. A receiver answers what
# the agent is to read: {"read_from": "full" or {"host", "invocation_id", "usn"}, "why": plain words when full,
# "folders_digest": the mapped folders' digest the read is asked for}.
agent_read_from = Signal()

# Sent when the portal refuses an agent's partial upload (the mark it read from is not the one the portal would
# hand out now). Keyword argument: integration. The receiver forgets the mark, so the next read is a full one.
agent_mark_refused = Signal()
