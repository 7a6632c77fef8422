"""SCIM filters (RFC 7644 3.4.2.2) as database queries: parsed by scim2-models, translated here.

The attributes the IdPs look resources up by are columns, so a lookup is an indexed query, not a scan:
users by userName (case-insensitive, through its casefolded column), externalId, id, displayName,
name.givenName / name.familyName, active and their email (`emails.value`, `emails[type eq "work"].value`);
groups by displayName, externalId, id and member (`members[value eq "..."]`, `members.value`). Operators:
eq, ne, co, sw, ew, pr; and, or, not. Anything else is answered 400 invalidFilter.
"""

from __future__ import annotations

from django.db.models import Q
from scim2_models import ScimFilter
from scim2_models.path.expressions import AttrPath, Comparison, FilterNode, LogicalExpr, Not, Present, ValuePath

from .resources import ScimError, user_name_key

USER_COLUMNS = {
    "username": "user_name_key", "externalid": "external_id", "id": "scim_id", "displayname": "display_name",
    "name.givenname": "given_name", "name.familyname": "family_name", "emails": "email", "emails.value": "email",
    "active": "active",
}
GROUP_COLUMNS = {
    "displayname": "display_name", "externalid": "external_id", "id": "scim_id",
    "members": "memberships__user__scim_id", "members.value": "memberships__user__scim_id",
}
CASE_EXACT = {"external_id"}  # RFC 7643: externalId is caseExact; userName, emails, displayName are not


def parse(text: str) -> FilterNode:
    try:
        return ScimFilter(text).ast
    except Exception as exc:  # InvalidFilterException and friends
        raise ScimError(400, f"filter: {exc}", "invalidFilter") from None


def to_q(text: str, columns: dict[str, str]) -> Q:
    return _node(parse(text), columns, prefix="")


def _name(attr_path: AttrPath, prefix: str) -> str:
    name = attr_path.attr if not attr_path.sub_attr else f"{attr_path.attr}.{attr_path.sub_attr}"
    return f"{prefix}.{name}" if prefix else name


def _column(name: str, columns: dict[str, str]) -> str:
    column = columns.get(name.lower())
    if column is None:
        raise ScimError(400, f"filtering on {name} is not supported", "invalidFilter")
    return column


def _node(node: FilterNode, columns: dict[str, str], prefix: str) -> Q:
    if isinstance(node, LogicalExpr):
        parts = [_node(t, columns, prefix) for t in node.terms]
        result = parts[0]
        for part in parts[1:]:
            result = (result & part) if str(node.op.value) == "and" else (result | part)
        return result
    if isinstance(node, Not):
        return ~_node(node.expr, columns, prefix)
    if isinstance(node, Present):
        column = _column(_name(node.attr_path, prefix), columns)
        if column == "active":
            return Q()
        return ~Q(**{column: ""}) & Q(**{f"{column}__isnull": False})
    if isinstance(node, ValuePath):
        return _value_path(node, columns)
    if isinstance(node, Comparison):
        return _comparison(_name(node.attr_path, prefix), str(node.op.value), node.value, columns)
    raise ScimError(400, "unsupported filter", "invalidFilter")


def _value_path(node: ValuePath, columns: dict[str, str]) -> Q:
    attr = node.attr_path.attr.lower()
    inner = node.val_filter
    if attr == "emails":
        # emails[type eq "work"].value eq "x" and emails[value eq "x"]: the portal keeps one email per user
        # (primary, else work): a type selector is satisfied by it, a value comparison is on it.
        return _emails_filter(inner, columns)
    if attr == "members":
        return _node(inner, {"value": columns["members.value"]}, prefix="")
    raise ScimError(400, f"filtering inside {node.attr_path.attr} is not supported", "invalidFilter")


def _emails_filter(node: FilterNode, columns: dict[str, str]) -> Q:
    if isinstance(node, LogicalExpr):
        parts = [_emails_filter(t, columns) for t in node.terms]
        result = parts[0]
        for part in parts[1:]:
            result = (result & part) if str(node.op.value) == "and" else (result | part)
        return result
    if isinstance(node, Comparison) and node.attr_path.attr.lower() in ("type", "primary"):
        return Q()
    if isinstance(node, Comparison) and node.attr_path.attr.lower() == "value":
        return _comparison("emails.value", str(node.op.value), node.value, columns)
    raise ScimError(400, "unsupported emails filter", "invalidFilter")


def _comparison(name: str, op: str, value: object, columns: dict[str, str]) -> Q:
    column = _column(name, columns)
    if column == "active":
        if not isinstance(value, bool) or op not in ("eq", "ne"):
            raise ScimError(400, "active compares with eq or ne and true or false", "invalidFilter")
        q = Q(active=value)
        return ~q if op == "ne" else q
    if not isinstance(value, str):
        raise ScimError(400, f"{name} compares with a string", "invalidFilter")
    if column == "user_name_key":
        value = user_name_key(value)
        lookups = {"eq": "exact", "ne": "exact", "co": "contains", "sw": "startswith", "ew": "endswith"}
    elif column.endswith("scim_id"):
        value = value.strip().lower()
        lookups = {"eq": "exact", "ne": "exact", "co": "contains", "sw": "startswith", "ew": "endswith"}
    elif column in CASE_EXACT:
        lookups = {"eq": "exact", "ne": "exact", "co": "contains", "sw": "startswith", "ew": "endswith"}
    else:
        lookups = {"eq": "iexact", "ne": "iexact", "co": "icontains", "sw": "istartswith", "ew": "iendswith"}
    if op not in lookups:
        raise ScimError(400, f"operator {op} is not supported on {name}", "invalidFilter")
    q = Q(**{f"{column}__{lookups[op]}": value})
    return ~q if op == "ne" else q
