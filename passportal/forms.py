"""Forms of the pages portal users see (activation)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation

from .models import PortalUser


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

    def __init__(self, user: PortalUser, *args, **kwargs) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        password1 = cleaned.get("password1")
        password2 = cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords are not the same.")
        elif password1:
            try:
                password_validation.validate_password(password1, user=self.user)
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
