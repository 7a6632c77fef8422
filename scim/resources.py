"""SCIM resources in and out: scim2-models validates and patches, with the tolerance real clients need.

What the portal keeps of a user is the resource as scim2-models read it (any attribute of the core User
and enterprise schemas round-trips), minus `id`, `meta` and `password` (the portal never stores an IdP's
password: end users choose theirs through activation, R18). Unknown attributes are dropped, not refused.
Entra's quirks are scim2-models' policy options (ops in any case, "False" for false, path-less values keyed
by attribute paths, removal by a value array, a path filter that creates the entry it names); what is left
(a value it still refuses on an attribute the portal does not use, such as a manager without `$ref`) is
dropped here, one attribute at a time, so the rest of the request still applies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import ValidationError
from scim2_models import (
    ComplexAttribute,
    Context,
    EnterpriseUser,
    Group,
    GroupMember,
    PatchOp,
    ResponseParameters,
    ScimPolicy,
)
from scim2_models import User as CoreUser
from scim2_models.resources.user import Email as CoreEmail

from .models import ScimGroup, ScimUser


class Email(CoreEmail):
    """An email as text: the planner judges it (R7), so an invalid one is a creation issue staff see."""

    value: str | None = None


class User(CoreUser):
    # pydantic takes a field narrowed to a subclass; mypy sees a list, invariant, as another type.
    emails: list[Email] | None = None  # type: ignore[assignment]
    Emails: ClassVar[type[ComplexAttribute]] = Email


# scim2-models' __class_getitem__ makes any User subclass take an extension at run time; mypy sees ours as not
# generic (it subclasses User without re-declaring the type variable, which that __class_getitem__ would not take).
UserModel = User[EnterpriseUser]  # type: ignore[type-arg]
USER_SCHEMA = str(User.__schema__)
GROUP_SCHEMA = str(Group.__schema__)

POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

# Attributes the engine reads: a value it cannot take is refused (400), never silently dropped.
USED = {"username", "name", "emails", "active", "externalid", "displayname", "id", "schemas"}
MAX_TEXT = 256  # userName, names, displayName, externalId: longer is refused, never cut


class ScimError(Exception):
    """An answer other than success: HTTP status, SCIM scimType and a detail for the client's log."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def _first_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def _used(loc: tuple) -> bool:
    return bool(loc) and str(loc[0]).lower() in USED


def _drop(payload: Any, loc: tuple) -> bool:
    """Remove what `loc` names from the payload; False when it cannot be found."""
    target = payload
    for part in loc[:-1]:
        if not _holds(target, part):
            return False
        target = target[part]
    last = loc[-1] if loc else None
    if not _holds(target, last):
        return False
    del target[last]
    return True


def _holds(target: Any, key: Any) -> bool:
    if isinstance(target, dict):
        return key in target
    return isinstance(target, list) and isinstance(key, int) and key < len(target)


def _tolerant(validate: Callable[[dict], Any], payload: dict) -> Any:
    """Validate; a value refused on an attribute the engine does not use is dropped and validation retried."""
    payload = copy.deepcopy(payload)
    for _ in range(20):
        try:
            return validate(payload)
        except ValidationError as exc:
            dropped = False
            for err in exc.errors():
                loc = tuple(err.get("loc", ()))
                if _used(loc):
                    raise ScimError(400, _first_message(exc), "invalidValue") from None
                # A nested error's location may end in pydantic's own names: drop the attribute it is under.
                for cut in range(len(loc), 0, -1):
                    if _drop(payload, loc[:cut]):
                        dropped = True
                        break
            if not dropped:
                raise ScimError(400, _first_message(exc), "invalidValue") from None
    raise ScimError(400, "too many invalid attributes", "invalidValue")


def _clean_payload(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    body = {k: v for k, v in payload.items() if k.lower() not in ("password", "id", "meta")}
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not schemas:
        body["schemas"] = [USER_SCHEMA]
    return body


def parse_user(payload: Any, *, replacing: bool = False) -> User:
    body = _clean_payload(payload)
    context = Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    user = _tolerant(lambda p: UserModel.model_validate(p, scim_ctx=context, scim_policy=POLICY), body)
    check_user(user)
    return user


def check_user(user: User) -> None:
    if not user.user_name or not user.user_name.strip():
        raise ScimError(400, "userName is required", "invalidValue")
    for label, value in (("userName", user.user_name), ("externalId", user.external_id),
                         ("displayName", user.display_name),
                         ("name.givenName", user.name.given_name if user.name else None),
                         ("name.familyName", user.name.family_name if user.name else None)):
        if value and len(value) > MAX_TEXT:
            raise ScimError(400, f"{label} is {len(value)} characters long, at most {MAX_TEXT} are accepted",
                            "invalidValue")


def user_email(user: User) -> str:
    """R7: the primary email, else the work one, else the first; "" when there is none."""
    emails = [e for e in (user.emails or []) if e.value]
    for pick in (lambda e: e.primary, lambda e: str(e.type or "").lower() == "work", lambda e: True):
        found = next((e for e in emails if pick(e)), None)
        if found is not None:
            return (found.value or "").strip()  # never None: emails holds those with a value
    return ""


def user_columns(user: User) -> dict[str, Any]:
    data = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, scim_policy=POLICY)
    for key in ("id", "meta"):
        data.pop(key, None)
    assert user.user_name is not None, "check_user refuses a user without a userName"
    return {
        "user_name": user.user_name.strip(), "user_name_key": user_name_key(user.user_name),
        "external_id": user.external_id or "",
        "given_name": (user.name.given_name or "") if user.name else "",
        "family_name": (user.name.family_name or "") if user.name else "",
        "display_name": user.display_name or "", "email": user_email(user),
        "active": True if user.active is None else bool(user.active), "data": data,
    }


def user_name_key(value: str) -> str:
    return value.strip().casefold()


def _meta(kind: str, row: ScimUser | ScimGroup, base: str) -> dict:
    return {"resourceType": kind, "created": row.created_at.isoformat(), "lastModified": row.updated_at.isoformat(),
            "location": f"{base}/{kind}s/{row.scim_id}", "version": f'W/"{row.version}"'}


def user_model(row: ScimUser, base: str) -> User:
    return UserModel.model_validate({**row.data, "id": row.scim_id, "meta": _meta("User", row, base)},
                                    scim_policy=POLICY)


# A resource class (UserModel, Group): scim2-models parametrises its messages with it at run time, so Any.
def project(model_cls: Any, resource: dict, params: dict | None) -> dict:
    """Apply `attributes` / `excludedAttributes` (RFC 7644 3.9) through scim2-models."""
    if not params:
        return resource
    try:
        wanted = ResponseParameters[model_cls].model_validate(params)
        obj = model_cls.model_validate(resource, scim_policy=POLICY)
    except ValidationError as exc:
        raise ScimError(400, _first_message(exc), "invalidValue") from None
    return obj.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=wanted, scim_policy=POLICY)


def user_resource(row: ScimUser, base: str, params: dict | None = None) -> dict:
    resource = {**row.data, "id": row.scim_id, "meta": _meta("User", row, base)}
    resource.setdefault("schemas", [USER_SCHEMA])
    return project(UserModel, resource, params)


def patched_user(row: ScimUser, body: Any, base: str) -> User:
    user = user_model(row, base)
    _patch(UserModel, user, body)
    check_user(user)
    return user


def _patch(model_cls: Any, obj: Any, body: Any) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("Operations", body.get("operations")), list):
        raise ScimError(400, "a PATCH body carries an Operations list", "invalidSyntax")
    operations = body.get("Operations", body.get("operations")) or []  # a list, checked above
    for index, operation in enumerate(operations):
        one = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [operation]}
        try:
            patch = PatchOp[model_cls].model_validate(one, scim_ctx=Context.RESOURCE_PATCH_REQUEST,
                                                      scim_policy=POLICY)
            patch.patch(obj, scim_policy=POLICY)
        except ValidationError as exc:
            if _touches_unused(operation):
                continue  # an attribute the portal does not use, in a form scim2-models refuses: ignored
            raise ScimError(400, f"operation {index}: {_first_message(exc)}", _scim_type(exc)) from None
        except Exception as exc:  # scim2-models' SCIMException family: noTarget, invalidPath, mutability
            scim_type = getattr(exc, "scim_type", None) or "invalidValue"
            if _touches_unused(operation) and scim_type != "mutability":
                continue
            raise ScimError(400, f"operation {index}: {exc}", scim_type) from None


def _scim_type(exc: ValidationError) -> str:
    kind = exc.errors()[0].get("type", "")
    return kind.removeprefix("scim_") if kind.startswith("scim_") else "invalidValue"


def _touches_unused(operation: Any) -> bool:
    if not isinstance(operation, dict):
        return False
    path = operation.get("path")
    if isinstance(path, str) and path.strip():
        head = path.strip()
        if head.lower().startswith("urn:"):
            return not head.lower().startswith(USER_SCHEMA.lower() + ":")
        return head.split("[")[0].split(".")[0].lower() not in USED
    value = operation.get("value")
    return isinstance(value, dict) and all(
        (k.lower().startswith("urn:") and not k.lower().startswith(USER_SCHEMA.lower() + ":"))
        or k.split("[")[0].split(".")[0].lower() not in USED for k in value)


# ---------------------------------------------------------------- groups


def parse_group(payload: Any, *, replacing: bool = False) -> Group:
    if not isinstance(payload, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    body = {k: v for k, v in payload.items() if k.lower() not in ("id", "meta")}
    if not isinstance(body.get("schemas"), list) or not body.get("schemas"):
        body["schemas"] = [GROUP_SCHEMA]
    context = Context.RESOURCE_REPLACEMENT_REQUEST if replacing else Context.RESOURCE_CREATION_REQUEST
    try:
        group = Group.model_validate(body, scim_ctx=context, scim_policy=POLICY)
    except ValidationError as exc:
        raise ScimError(400, _first_message(exc), "invalidValue") from None
    check_group(group)
    return group


def check_group(group: Group) -> None:
    if not group.display_name or not group.display_name.strip():
        raise ScimError(400, "displayName is required", "invalidValue")
    if len(group.display_name) > MAX_TEXT or len(group.external_id or "") > MAX_TEXT:
        raise ScimError(400, f"displayName and externalId take at most {MAX_TEXT} characters", "invalidValue")


def group_name(group: Group) -> str:
    """A checked group's displayName, without its surrounding spaces."""
    assert group.display_name is not None, "check_group refuses a group without a displayName"
    return group.display_name.strip()


def member_dicts(rows: list[tuple[str, str]], base: str) -> list[dict]:
    """(user scim id, display) -> SCIM members."""
    out = []
    for scim_id, display in rows:
        member = {"value": scim_id, "$ref": f"{base}/Users/{scim_id}", "type": "User"}
        if display:
            member["display"] = display
        out.append(member)
    return out


def group_resource(row: ScimGroup, base: str, members: list[tuple[str, str]] | None,
                   params: dict | None = None) -> dict:
    resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": row.scim_id, "displayName": row.display_name,
                                "meta": _meta("Group", row, base)}
    if row.external_id:
        resource["externalId"] = row.external_id
    if members is not None and members:
        resource["members"] = member_dicts(members, base)
    return project(Group, resource, params)


def patched_group(row: ScimGroup, members: list[tuple[str, str]], body: Any, base: str) -> Group:
    group = Group.model_validate(
        {"schemas": [GROUP_SCHEMA], "id": row.scim_id, "displayName": row.display_name,
         "externalId": row.external_id or None, "members": member_dicts(members, base) or None},
        scim_policy=POLICY)
    _patch(Group, group, _members_by_value(body))
    check_group(group)
    return group


def _members_by_value(body: Any) -> Any:
    """Okta and Entra name members by `value` alone; scim2-models matches a removal by every sub-attribute
    given, so a removal's value entries are cut down to their `value`."""
    if not isinstance(body, dict):
        return body
    ops = body.get("Operations", body.get("operations"))
    if not isinstance(ops, list):
        return body
    fixed = []
    for op in ops:
        if (isinstance(op, dict) and str(op.get("op", "")).lower() == "remove"
                and str(op.get("path", "")).strip().lower() == "members" and isinstance(op.get("value"), list)):
            op = {**op, "value": [{"value": m.get("value")} if isinstance(m, dict) else m for m in op["value"]]}
        fixed.append(op)
    return {**body, "Operations": fixed}


def group_members(group: Group) -> dict[str, str]:
    """value -> display, in the order given."""
    members: dict[str, str] = {}
    for member in group.members or []:
        if isinstance(member, GroupMember) and member.value:
            members[str(member.value).strip().lower()] = member.display or ""
    return members

