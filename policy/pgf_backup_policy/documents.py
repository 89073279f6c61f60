"""Reading IAM-style policy documents (key policies, vault and bucket policies) the way AWS evaluates them."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pgf_backup_policy.model import as_list, role_of_arn

Statement = Mapping[str, Any]

# Condition operators a Deny may use to exempt principals, and the key they must test.
_EXEMPTING_OPERATORS = {"arnnotlike", "arnnotequals", "stringnotlike", "stringnotequals"}
_PRINCIPAL_ARN = "aws:principalarn"


class DocumentError(ValueError):
    """A policy document that is not JSON, or not a policy."""


def statements(document: Any) -> list[Statement]:
    """The statements of a policy given as JSON text or data; DocumentError when it is not a policy."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as error:
            raise DocumentError(f"the policy is not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(document, Mapping):
        raise DocumentError("the policy is not a JSON object with a 'Statement'")
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def principal_is_everyone(statement: Statement) -> bool:
    """True when the statement's Principal is `*` (directly or as an AWS principal)."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))


def covers_action(statement: Statement, action: str) -> bool:
    """True when the statement's Action (with IAM wildcards, case-insensitive) includes `action`."""
    wanted = action.lower()
    return any(
        isinstance(pattern, str) and fnmatch.fnmatchcase(wanted, pattern.lower())
        for pattern in as_list(statement.get("Action"))
    )


def covers_every_resource(statement: Statement, service: str) -> bool:
    """True when Resource is `*`, or a wildcard over the whole service's ARNs (`arn:aws:backup:...:*`)."""
    for resource in as_list(statement.get("Resource")):
        if resource == "*":
            return True
        if isinstance(resource, str) and f":{service}:" in resource and resource.endswith("*"):
            return True
    return False


def exempted_principals(statement: Statement) -> list[str] | None:
    """Principal ARNs a Deny's condition exempts; None when the condition narrows it in any other way."""
    exempted: list[str] = []
    condition = statement.get("Condition") or {}
    if not isinstance(condition, Mapping):
        return None
    for operator, block in condition.items():
        if str(operator).lower() not in _EXEMPTING_OPERATORS or not isinstance(block, Mapping):
            return None
        for key, values in block.items():
            if str(key).lower() != _PRINCIPAL_ARN:
                return None
            exempted.extend(str(v) for v in as_list(values))
    return exempted


def _disallowed(exempted: Iterable[str], allowed_roles: Sequence[str], account: str | None) -> list[str]:
    """The exempted principals that are not one of the allowed roles of this account."""
    bad = []
    for arn in exempted:
        role = role_of_arn(arn)
        in_account = role is not None and (account is None or role[0] == account)
        if not (in_account and role is not None and role[1] in allowed_roles):
            bad.append(arn)
    return bad


def deny_gaps(
    document: Any,
    actions: Sequence[str],
    allowed_roles: Sequence[str],
    account: str | None,
    service: str,
) -> list[str]:
    """What is missing for `actions` to be denied to every principal but `allowed_roles` (of `account`)."""
    found = statements(document)
    denies = [
        s
        for s in found
        if s.get("Effect") == "Deny"
        and "NotAction" not in s
        and "NotPrincipal" not in s
        and principal_is_everyone(s)
        and covers_every_resource(s, service)
    ]
    allowed = " or ".join(allowed_roles)
    gaps: list[str] = []
    for action in actions:
        candidates = [s for s in denies if covers_action(s, action)]
        if not candidates:
            gaps.append(f"no statement denies {action} to every principal (all but {allowed})")
            continue
        verdicts: list[list[str] | None] = []
        for statement in candidates:
            exempted = exempted_principals(statement)
            verdicts.append(None if exempted is None else _disallowed(exempted, allowed_roles, account))
        if any(v == [] for v in verdicts):
            continue
        extra = next((v for v in verdicts if v), None)
        if extra is not None:
            gaps.append(f"the deny of {action} also exempts {', '.join(extra)}; only {allowed} may be exempt")
        else:
            gaps.append(
                f"the deny of {action} has conditions other than exempting {allowed} by aws:PrincipalArn, "
                "so it may not apply"
            )
    return gaps
