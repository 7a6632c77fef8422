"""The integration form: secrets are write-only, and each kind is checked for what it needs."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db import models
from django.forms.models import construct_instance

from . import validators
from .clouds import CUSTOM, DEFAULT_CLOUD, ENDPOINT_FIELDS
from .models import AdMode, EntraCloud, Integration, IntegrationKind

SECRET_HELP = ("Write-only: the stored value is never shown. Leave blank to keep it; type a new one to replace it. "
               "Changing where it is sent (servers, cloud, login host, Graph URL, token scope, tenant, TLS settings) "
               "clears it.")
# The box in which each stored secret is typed again.
SECRET_INPUTS = {"bind_password": "new_bind_password", "client_secret": "new_client_secret"}


def apply_cloud(form: forms.ModelForm, data: dict) -> None:
    """The cloud sets the login host, Graph base URL and token scope; Custom takes them as typed.

    With a Microsoft cloud, only a field changed on this page counts as typed: the others still show the
    previous cloud's values, which simply follow the new one. A problem is said on the field at fault.
    """
    if any(name in form.errors for name in ENDPOINT_FIELDS):
        return  # each says already what is wrong with it
    cloud = data.get("entra_cloud") or DEFAULT_CLOUD
    data["entra_cloud"] = cloud
    names = ENDPOINT_FIELDS if cloud == CUSTOM else [n for n in ENDPOINT_FIELDS if n in form.changed_data]
    stored = {name: getattr(form.instance, name) for name in ENDPOINT_FIELDS}
    try:
        data.update(validators.cloud_endpoints(cloud, {n: data.get(n, "") for n in names}, stored))
    except forms.ValidationError as error:
        for name, messages in error.message_dict.items():
            form.add_error(name, messages)


def cloud_choices(form: forms.ModelForm) -> None:
    """The cloud select lists the clouds only (no empty choice: every integration is in one)."""
    if "entra_cloud" in form.fields:
        # A model field with choices makes a (typed) choice field; Field does not say so.
        cast(forms.ChoiceField, form.fields["entra_cloud"]).choices = EntraCloud.choices


class SecretField(forms.CharField):
    """A password box that is always empty when the page loads (the stored secret never reaches the browser)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault("help_text", SECRET_HELP)
        super().__init__(widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                         **kwargs)


def _formfield(db_field: models.Field[Any, Any], **kwargs: Any) -> forms.Field | None:
    """Model field -> form field; URLs without a scheme are https (Graph and login hosts only speak it)."""
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class IntegrationForm(forms.ModelForm):
    new_bind_password = SecretField(label="Bind password")
    new_client_secret = SecretField(label="Client secret")

    class Meta:
        model = Integration
        formfield_callback = _formfield
        # Secrets, agent token state and what the tenant check finds are never form fields.
        fields = ["client", "name", "kind", "link_enabled", "disable_threshold_percent", "disable_threshold_minimum",
                  "ad_mode", "ldap_urls", "base_dn", "bind_dn", "tls_mode", "tls_ca_pem", "tls_verify", "page_size",
                  "entra_role", "tenant", "app_client_id", "entra_cloud", "login_host", "graph_base_url",
                  "graph_scope"]
        widgets = {
            "ldap_urls": forms.Textarea(attrs={"rows": 3, "placeholder": "ldaps://dc1.corp.example.com:636"}),
            "tls_ca_pem": forms.Textarea(attrs={"rows": 6, "placeholder": "-----BEGIN CERTIFICATE-----"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cloud_choices(self)

    def clean_ldap_urls(self) -> str:
        return validators.clean_ldap_urls(self.cleaned_data.get("ldap_urls", ""))

    def clean_base_dn(self) -> str:
        return validators.clean_dn(self.cleaned_data.get("base_dn", ""))

    def clean_bind_dn(self) -> str:
        return validators.clean_bind_dn(self.cleaned_data.get("bind_dn", ""))

    def clean_tls_ca_pem(self) -> str:
        return validators.clean_ca_pem(self.cleaned_data.get("tls_ca_pem", ""))

    def clean_tenant(self) -> str:
        return validators.clean_tenant(self.cleaned_data.get("tenant", ""))

    def clean_login_host(self) -> str:
        return validators.clean_login_host(self.cleaned_data.get("login_host", ""))

    def clean_graph_base_url(self) -> str:
        return validators.clean_graph_base_url(self.cleaned_data.get("graph_base_url", ""))

    def clean_graph_scope(self) -> str:
        return validators.clean_graph_scope(self.cleaned_data.get("graph_scope", ""))

    # Secrets stored for endpoints this request changes (R26): not used for the new ones, cleared on save.
    moved_secrets: tuple[str, ...] = ()

    def _secret(self, name: str) -> str:
        """The secret this request would use: typed now, or the stored one if it still goes where it went."""
        typed = self.cleaned_data.get(SECRET_INPUTS[name])
        if typed:
            return typed
        return "" if name in self.moved_secrets else str(getattr(self.instance, name) or "")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("kind") == IntegrationKind.ENTRA:
            apply_cloud(self, data)  # before comparing destinations: the cloud may have moved all three
        self.moved_secrets = tuple(s for s in self.instance.moved_secrets(data) if not data.get(SECRET_INPUTS[s]))
        kind = data.get("kind")
        if kind == IntegrationKind.ACTIVE_DIRECTORY:
            self._clean_active_directory(data)
        elif kind == IntegrationKind.ENTRA:
            self._clean_entra(data)
        return data

    def _clean_active_directory(self, data: dict) -> None:
        if not data.get("ad_mode"):
            self.add_error("ad_mode", "Choose agent mode or direct mode.")
            return
        if data["ad_mode"] == AdMode.DIRECT:
            problems = validators.direct_ad_problems(data, password=self._secret("bind_password"),
                                                     password_moved="bind_password" in self.moved_secrets)
            for name, problem in problems.items():
                self.add_error(SECRET_INPUTS.get(name, name), problem)
        page_size = data.get("page_size")
        if page_size is not None and not 1 <= page_size <= 5000:
            self.add_error("page_size", "Between 1 and 5000 (AD's default maximum page is 1000).")

    def _clean_entra(self, data: dict) -> None:
        if self.errors:
            return  # fix the fields first: the tenant check needs them all
        secret = self._secret("client_secret")
        if not secret:  # nothing to log in with: no request leaves, whatever the login host
            self.add_error("new_client_secret",
                           validators.missing_secret("client_secret", moved="client_secret" in self.moved_secrets))
            return
        # The other helper's tenant check resolves the tenant and refuses a second link to it (R5).
        from .entra_tenant import check_entra_integration

        integration = construct_instance(self, self.instance, fields=self._meta.fields, exclude=self._meta.exclude)
        integration.client_secret = secret
        check_entra_integration(integration)

    def save(self, commit: bool = True) -> Integration:
        integration = super().save(commit=False)
        for secret, box in SECRET_INPUTS.items():
            if self.cleaned_data.get(box):
                setattr(integration, secret, self.cleaned_data[box])
            elif secret in self.moved_secrets:
                setattr(integration, secret, "")  # R26: it was typed for the old endpoints only
        if commit:
            integration.save()
            self.save_m2m()
        return integration
