"""Request bodies of the agent push API. Record chunks are checked by directory.uploads (record and field named)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from directory.models import AgentUpload
from directory.upload_records import MAX_RECORDS_PER_CHUNK


class ChunkSerializer(serializers.Serializer):
    records = serializers.JSONField(help_text="A list of at most 2,000 folder or user objects, in a body of at "
                                              "most AGENT_CHUNK_MAX_BYTES (the start of the upload says it).")


class CommitSerializer(serializers.Serializer):
    folder_count = serializers.IntegerField(min_value=0)
    user_count = serializers.IntegerField(min_value=0)
    gone_count = serializers.IntegerField(min_value=0, required=False, default=None, allow_null=True,
                                          help_text="How many deleted users the agent named (uploads/<id>/gone/).")


class MissingSerializer(serializers.Serializer):
    after = serializers.CharField(max_length=36, allow_blank=True, required=False, default="",
                                  help_text="The last id of the previous page (blank for the first page).")
    limit = serializers.IntegerField(min_value=1, max_value=MAX_RECORDS_PER_CHUNK, required=False,
                                     default=MAX_RECORDS_PER_CHUNK, help_text="The most ids one page holds.")


class MissingReplySerializer(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.CharField(),
                                     help_text="Linked users (objectGUIDs) this upload does not hold, sorted; at most "
                                               "2,000 a page. The agent looks them up in AD.")
    more = serializers.BooleanField(help_text="Ask again with `after` set to the last id for the next page.")


class GoneSerializer(serializers.Serializer):
    records = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=2000,
                                    help_text="objectGUIDs of missing users that AD deleted (a tombstone, or found "
                                              "nowhere in the domain); a user moved elsewhere is not named.")


class UploadSerializer(serializers.ModelSerializer):
    upload_id = serializers.IntegerField(source="pk", read_only=True)

    class Meta:
        model = AgentUpload
        fields = ["upload_id", "status", "directory_id", "agent_version", "folder_count", "user_count",
                  "chunk_count", "created_at", "committed_at"]
        read_only_fields = fields


class LimitsSerializer(serializers.Serializer):
    chunk_bytes = serializers.IntegerField(help_text="Largest request body (AGENT_CHUNK_MAX_BYTES).")
    chunk_records = serializers.IntegerField(help_text="Most records in one chunk.")
    upload_records = serializers.IntegerField(help_text="Most folders + users per upload (AGENT_UPLOAD_MAX_RECORDS).")
    upload_bytes = serializers.IntegerField(help_text="Most bytes of records per upload (AGENT_UPLOAD_MAX_BYTES).")
    requests_per_minute = serializers.IntegerField(help_text="Per integration (AGENT_REQUESTS_PER_MINUTE).")


class StartedUploadSerializer(UploadSerializer):
    """The new upload and the portal's limits: the agent sizes its chunks by them, so the two never disagree."""

    limits = serializers.SerializerMethodField()

    class Meta(UploadSerializer.Meta):
        fields = [*UploadSerializer.Meta.fields, "limits"]
        read_only_fields = fields

    @extend_schema_field(LimitsSerializer)
    def get_limits(self, upload: AgentUpload) -> dict[str, int]:
        return {"chunk_bytes": settings.AGENT_CHUNK_MAX_BYTES, "chunk_records": MAX_RECORDS_PER_CHUNK,
                "upload_records": settings.AGENT_UPLOAD_MAX_RECORDS, "upload_bytes": settings.AGENT_UPLOAD_MAX_BYTES,
                "requests_per_minute": settings.AGENT_REQUESTS_PER_MINUTE}


class AgentHealthSerializer(serializers.Serializer):
    """What every poll and failure report says about the agent (a push says it when its upload starts)."""

    agent_version = serializers.CharField(max_length=50, allow_blank=True, required=False, default="")
    host = serializers.CharField(max_length=255, allow_blank=True, required=False, default="",
                                 help_text="The host name the agent runs on.")
    last_read_seconds = serializers.FloatField(min_value=0, allow_null=True, required=False, default=None,
                                               help_text="How long the agent's last read of AD took (none yet: null).")


class StartUploadSerializer(AgentHealthSerializer):
    """A push says the agent's health when its upload starts, as every poll does."""

    directory_id = serializers.CharField(max_length=255, help_text="The AD domain the agent reads.")
    request_id = serializers.IntegerField(
        min_value=1, required=False, default=None, allow_null=True,
        help_text="The request (from a poll's `requests`) this upload answers: a preview or a folder read. It is "
                  "committed as an answer, never as the integration's last read, and starts no run.")
    # What the agent read (an older agent sends none of these: its upload is a full read).
    # DRF's metaclass takes declared fields off the class, so this never shadows Serializer.partial at run time.
    partial = serializers.BooleanField(  # type: ignore[assignment]
        required=False, default=False,
        help_text="Only the changes since the poll's `read_from` mark: the users with news, the linked users AD "
                  "deleted (uploads/<id>/gone/), no folders. Refused (409) when the portal no longer hands that mark "
                  "out; then read everything.")
    read_from = serializers.JSONField(required=False, default=None,
                                      help_text="The mark a partial read started from, as the poll gave it.")
    mark = serializers.JSONField(required=False, default=None,
                                 help_text="The domain controller's mark at the start of this read: host, "
                                           "invocation_id, usn (its highestCommittedUSN). Kept once the run of this "
                                           "upload succeeded.")
    folders_digest = serializers.CharField(max_length=32, required=False, default="", allow_blank=True,
                                           help_text="The poll's folders_digest the read was asked for.")
    full_because = serializers.CharField(max_length=300, required=False, default="", allow_blank=True,
                                         help_text="A full read: why, in plain words (shown on the run's page).")


class AgentRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Send it as `request_id` when the upload answering it starts.")
    kind = serializers.ChoiceField(choices=["preview", "folders"],
                                   help_text="preview: read everything now and upload it as the answer (shown, "
                                             "never applied); folders: read the OUs and groups now, upload only them.")


class PollSerializer(AgentHealthSerializer):
    take_requests = serializers.BooleanField(
        required=False, default=True,
        help_text="false: only ask what to read (an agent run once, which carries out no request).")


class PollReplySerializer(serializers.Serializer):
    read_now = serializers.BooleanField(help_text="A Force Re-sync or single-user resync waits for a fresh read.")
    requests = AgentRequestSerializer(many=True, help_text="Reads a person is waiting for, oldest first; each is "
                                                           "handed out again at every poll until it is answered.")
    mapped_folder_ids = serializers.ListField(child=serializers.CharField(),
                                              help_text="objectGUIDs of the OUs mapped in the portal (--check).")
    read_from = serializers.JSONField(
        help_text='"full", or the mark to read the changes from: {"host", "invocation_id", "usn"}.')
    read_why = serializers.CharField(help_text="Why a full read, in plain words (empty with a mark).")
    folders_digest = serializers.CharField(help_text="The mapped folders' digest: send it back with the upload.")


class LinkedSerializer(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1,
                                     max_length=MAX_RECORDS_PER_CHUNK,
                                     help_text="objectGUIDs of users the agent saw change outside its base DN, or "
                                               "deleted in AD (at most 2,000).")


class LinkedReplySerializer(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.CharField(), help_text="Those the portal links, sorted.")


class FailureSerializer(AgentHealthSerializer):
    stage = serializers.ChoiceField(choices=["read"], help_text="What failed: the read of AD.")
    message = serializers.CharField(max_length=2000, help_text="Why, as the agent saw it; never a secret.")
    permanent = serializers.BooleanField(default=False, help_text="Credentials refused: a person must act.")
    request_id = serializers.IntegerField(
        min_value=1, required=False, default=None, allow_null=True,
        help_text="The request whose read failed (a preview or a folder read): its page says why; no run is recorded.")


class FailureReplySerializer(serializers.Serializer):
    run_id = serializers.IntegerField(allow_null=True,
                                      help_text="The failed run the portal recorded (null for a request's read).")
