"""Staff only, and Django model permissions per request: GET needs view_*, actions name what they need."""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.views import APIView


class StaffModelPermissions(DjangoModelPermissions):
    """Active staff with the model permission for the method; an action may demand more (`action_perms`)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        extra = getattr(view, "action_perms", {}).get(getattr(view, "action", None))
        if extra is not None:
            return user.has_perms(extra)
        return super().has_permission(request, view)
