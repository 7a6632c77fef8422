"""Request bodies of the agent push API. Record chunks are checked by directory.uploads (record and field named)."""

from __future__ import annotations

from rest_framework import serializers

from directory.models import AgentUpload


class StartUploadSerializer(serializers.Serializer):
    directory_id = serializers.CharField(max_length=255, help_text="The AD domain the agent reads.")
    agent_version = serializers.CharField(max_length=50, allow_blank=True, required=False, default="")


class ChunkSerializer(serializers.Serializer):
    records = serializers.JSONField(help_text="A list of at most 2,000 folder or user objects.")


class CommitSerializer(serializers.Serializer):
    folder_count = serializers.IntegerField(min_value=0)
    user_count = serializers.IntegerField(min_value=0)


class UploadSerializer(serializers.ModelSerializer):
    upload_id = serializers.IntegerField(source="pk", read_only=True)

    class Meta:
        model = AgentUpload
        fields = ["upload_id", "status", "directory_id", "agent_version", "folder_count", "user_count",
                  "chunk_count", "created_at", "committed_at"]
        read_only_fields = fields
