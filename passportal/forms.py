"""Forms of the pages portal users see (activation)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.utils import timezone

from .models import PortalUser, row_version


class ChoosePasswordForm(forms.Form):
    """Choose the account's password; Django's validators judge it against this user's names and email."""

    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, user: PortalUser, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        password1 = cleaned.get("password1")
        password2 = cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords are not the same.")
        elif password1:
            try:
                # The validators read the user's attributes only; the stubs take the auth user model alone.
                password_validation.validate_password(password1, user=self.user)  # type: ignore[arg-type]
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class SignInForm(forms.Form):
    """An end user's email and password; the organisation only when the email has accounts in several."""

    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "username",
                                                                          "autofocus": True}))
    password = forms.CharField(label="Password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    organisation = forms.IntegerField(required=False, widget=forms.HiddenInput)


class PortalUserAdminForm(forms.ModelForm):
    """The admin's portal user form: a save over a row that changed since the page was opened is refused.

    A sync (or another staff member) may change the user while this page is open; saving the form as
    it was rendered would write the old values back, and lock an old level against the mappings.
    """

    seen_version = forms.CharField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = PortalUser
        # The fields staff may type; the admin shows the rest read-only.
        fields = ["client", "first_name", "last_name", "email", "disabled_by_staff", "permission_level",
                  "permission_level_set_by_hand"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["seen_version"].initial = row_version(self.instance.updated_at)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.instance.pk:
            now = PortalUser.objects.filter(pk=self.instance.pk).values_list("updated_at", flat=True).first()
            if now is not None and cleaned.get("seen_version") != row_version(now):
                changed_at = timezone.localtime(now).strftime("%H:%M:%S")
                raise forms.ValidationError(
                    f"This user changed since you opened the page (at {changed_at}, by a sync or another staff "
                    "member). Nothing was saved: reload the page, review the user and save again.",
                    code="stale",
                )
        return cleaned
