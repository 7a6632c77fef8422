"""Serializers of the staff API, one module per part of it: clients (`clients`), integrations with their folders,
mappings, runs and agent tokens (`integrations`), portal users and the bell (`users`), the vault's levels and groups
(`vault`), creation issues (`issues`); `common` holds what they share. Secrets (bind password, client secret) are
write-only: never returned (R25). The API's views take them all from here (`from . import serializers as s`)."""

from .clients import ClientSerializer, SiteAdminSerializer, site_admins_of
from .integrations import (
    AgentTokenSerializer,
    ApplySerializer,
    FolderSerializer,
    IntegrationSerializer,
    MappingSerializer,
    SyncRunSerializer,
)
from .issues import CreationIssueSerializer, IssueFilterSerializer
from .users import (
    ActivationSentSerializer,
    DirectoryIdentitySerializer,
    EnabledSerializer,
    MembershipSerializer,
    NewPortalUserSerializer,
    NotificationSerializer,
    PortalUserSerializer,
    ResyncSerializer,
    UserGroupSerializer,
)
from .vault import PermissionLevelSerializer, SecurityGroupSerializer

__all__ = [
    "ActivationSentSerializer", "AgentTokenSerializer", "ApplySerializer", "ClientSerializer",
    "CreationIssueSerializer", "DirectoryIdentitySerializer", "EnabledSerializer", "FolderSerializer",
    "IntegrationSerializer", "IssueFilterSerializer", "MappingSerializer", "MembershipSerializer",
    "NewPortalUserSerializer", "NotificationSerializer", "PermissionLevelSerializer", "PortalUserSerializer",
    "ResyncSerializer", "SecurityGroupSerializer", "SiteAdminSerializer", "SyncRunSerializer", "UserGroupSerializer",
    "site_admins_of",
]
