"""Forms of the User Mapping flow: the setup (folders -> level + groups), Add Domain, the link switch."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from directory import validators
from directory.entra_tenant import check_entra_integration
from directory.forms import apply_cloud, cloud_choices
from directory.models import EntraRole, Folder, Integration, IntegrationKind
from passportal.models import Client, PermissionLevel, SecurityGroup, validate_level_for_client

MAX_FOLDERS_PER_APPLY = 100  # R15: per apply; there is no limit on how many are configured in total


class SetupForm(forms.Form):
    """The right-hand side of User Auto-Provisioning Setup, and the ticked folders on the left."""

    folders = forms.ModelMultipleChoiceField(
        queryset=Folder.objects.none(), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick at least one folder (OU or AU) to apply a mapping to."},
    )
    permission_level = forms.ModelChoiceField(
        queryset=PermissionLevel.objects.none(), empty_label="Choose a permission level",
        error_messages={"required": "Choose the permission level the users of these folders get."},
    )
    security_groups = forms.ModelMultipleChoiceField(
        queryset=SecurityGroup.objects.none(), required=False, widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    new_group = forms.CharField(
        label="Or create a security group", max_length=200, required=False, strip=True,
        help_text="Created when you confirm with Yes, and added to these folders' mapping.",
    )

    def __init__(self, integration: Integration, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.integration = integration
        client = integration.client
        # self.fields holds copies of the fields declared above, typed by the stubs as any Field.
        cast(forms.ModelMultipleChoiceField, self.fields["folders"]).queryset = integration.folders.filter(gone=False)
        # Every level is accepted as a choice so a level of the wrong kind gets a reason, not "not a valid
        # choice"; the list offers only the levels that fit this client's users.
        level_field = cast(forms.ModelChoiceField, self.fields["permission_level"])
        level_field.queryset = PermissionLevel.objects.all()
        level_field.widget.choices = [("", level_field.empty_label)] + [
            (level.pk, str(level)) for level in PermissionLevel.objects.filter(user_kind=client.user_kind)
        ]
        self.groups = SecurityGroup.objects.filter(client=client)  # the client's groups, offered here
        cast(forms.ModelMultipleChoiceField, self.fields["security_groups"]).queryset = self.groups

    def clean_permission_level(self) -> PermissionLevel:
        level = self.cleaned_data["permission_level"]
        validate_level_for_client(level, self.integration.client)
        return level

    def clean_folders(self) -> QuerySet[Folder]:
        folders = self.cleaned_data["folders"]
        if len(folders) > MAX_FOLDERS_PER_APPLY:
            raise ValidationError(
                f"You ticked {len(folders)} folders: one apply takes at most {MAX_FOLDERS_PER_APPLY}. Apply them "
                "in several goes; there is no limit on how many folders are configured in total."
            )
        return folders


class AddDomainForm(forms.ModelForm):
    """Add Domain (an additional Entra ID domain) with its app credentials; the tenant is checked (R5)."""

    client_secret = forms.CharField(
        label="Client secret", widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted, never shown again.",
    )
    graph_base_url = forms.URLField(label="Graph base URL", assume_scheme="https", required=False,
                                    initial="https://graph.microsoft.com/v1.0")

    class Meta:
        model = Integration
        fields = ["name", "tenant", "app_client_id", "client_secret", "entra_cloud", "login_host", "graph_base_url",
                  "graph_scope", "tls_ca_pem"]
        help_texts = {
            "tenant": "The tenant's GUID or one of its verified domains, e.g. contoso.onmicrosoft.com.",
            "tls_ca_pem": "Only for a private Microsoft endpoint; leave empty for Microsoft's own.",
        }

    def __init__(self, client: Client, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.client = client
        self.instance.kind = IntegrationKind.ENTRA
        self.instance.entra_role = EntraRole.ADDITIONAL
        for name in ("tenant", "app_client_id"):
            self.fields[name].required = True
        self.fields["tls_ca_pem"].required = False
        cloud_choices(self)

    # Checked on their own fields before the tenant check: it would only say "login refused".
    def clean_tenant(self) -> str:
        return validators.clean_tenant(self.cleaned_data.get("tenant", ""))

    def clean_tls_ca_pem(self) -> str:
        return validators.clean_ca_pem(self.cleaned_data.get("tls_ca_pem", ""))

    def clean_login_host(self) -> str:
        return validators.clean_login_host(self.cleaned_data.get("login_host", ""))

    def clean_graph_base_url(self) -> str:
        return validators.clean_graph_base_url(self.cleaned_data.get("graph_base_url", ""))

    def clean_graph_scope(self) -> str:
        return validators.clean_graph_scope(self.cleaned_data.get("graph_scope", ""))

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        apply_cloud(self, cleaned)  # the cloud sets login host, Graph URL and scope (Custom: as typed)
        if self.errors:
            return cleaned
        for name in ("tenant", "app_client_id", "client_secret", "entra_cloud", "login_host", "graph_base_url",
                     "graph_scope", "tls_ca_pem"):
            setattr(self.instance, name, cleaned.get(name) or getattr(self.instance, name))
        try:
            check_entra_integration(self.instance)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):  # already says which field
                self.add_error(None, exc)
            else:
                self.add_error("client_secret" if exc.code == "entra_refused" else "tenant", exc.messages)
        return cleaned
