"""Creation issues (R7) and the filter of their list."""

from __future__ import annotations

from rest_framework import serializers

from ...models import CreationIssue, IssueReason


class CreationIssueSerializer(serializers.ModelSerializer):
    """A directory user in scope who could not become a portal user, with the reason; open until the cause goes."""

    client = serializers.IntegerField(source="integration.client_id", read_only=True)
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    reason_label = serializers.CharField(source="get_reason_display", read_only=True)
    open = serializers.SerializerMethodField()

    class Meta:
        model = CreationIssue
        fields = ["id", "client", "integration", "integration_name", "external_id", "reason", "reason_label",
                  "user_name", "email", "folder", "folder_path", "message", "open", "opened_at", "closed_at",
                  "opened_by_run"]
        read_only_fields = fields

    def get_open(self, obj: CreationIssue) -> bool:
        return obj.closed_at is None


class IssueFilterSerializer(serializers.Serializer):
    """The filters of the creation issue list; each is optional."""

    client = serializers.IntegerField(required=False)
    integration = serializers.IntegerField(required=False)
    reason = serializers.ChoiceField(choices=IssueReason.choices, required=False)
    open = serializers.BooleanField(required=False, allow_null=True, default=None,
                                    help_text="true: open issues only; false: closed ones only.")
