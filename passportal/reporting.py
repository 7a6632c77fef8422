"""Error reports (500 pages with DEBUG on, the emails to ADMINS) never carry a secret (R25).

Django hides POST fields only for views marked with @sensitive_post_parameters; the admin's change form
and the API are not, and they receive bind passwords, client secrets and new passwords. This filter
hides every POST field whose name looks secret, on every view, and the Authorization header.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        parameters = super().get_post_parameters(request)
        if request is None or not hasattr(parameters, "copy"):
            return parameters
        cleansed = parameters.copy()
        for name in cleansed:
            if self.hidden_settings.search(name):
                cleansed[name] = self.cleansed_substitute
        return cleansed
