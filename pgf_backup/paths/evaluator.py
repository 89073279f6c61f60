"""An offline IAM policy evaluator that follows AWS's documented evaluation rules (no AWS calls)."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from functools import lru_cache
from typing import Any, Literal, TypeAlias

Value: TypeAlias = str | bool | int | float | Sequence[str]

_ACCOUNT_ID = re.compile(r"\d{12}")
_ROOT_ARN = re.compile(r"arn:[^:]+:iam::(\d{12}):root")
_ARN_PARTS = 6


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an IAM principal (role, user or account root ARN) or an AWS service."""

    arn: str = ""
    service: str = ""

    def __post_init__(self) -> None:
        """Refuse a principal that is not exactly one of an ARN with an account id and a service name."""
        if bool(self.arn) == bool(self.service):
            raise ValueError(
                f"a principal needs exactly one of arn or service, got arn={self.arn!r} service={self.service!r}"
            )
        if self.arn and not _ACCOUNT_ID.fullmatch(arn_account(self.arn)):
            raise ValueError(f"principal ARN {self.arn!r} has no 12-digit account id")

    @property
    def account(self) -> str:
        """The 12 digits of `arn`; "" for a service principal."""
        return arn_account(self.arn) if self.arn else ""

    @property
    def is_account_root(self) -> bool:
        """Whether this is the account principal itself (arn:...:iam::<account>:root)."""
        return bool(_ROOT_ARN.fullmatch(self.arn))


@dataclass(frozen=True)
class Request:
    """One request AWS will authorize: who, which action, on which resource, with which condition keys."""

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """How one policy document treats a request."""

    effect: Literal["Allow", "Deny"] | None
    sid: str
    via_account_root: bool = False


@dataclass(frozen=True)
class Decision:
    """Whether AWS would allow a request, and the one sentence that says why."""

    allowed: bool
    reason: str
    statement: str = ""


def arn_account(arn: str) -> str:
    """The account id of an ARN ("" when it has none)."""
    parts = arn.split(":", _ARN_PARTS - 1)
    return parts[4] if len(parts) == _ARN_PARTS else ""


# ---------------------------------------------------------------------------------------------------------------
# Wildcards
# ---------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """`*` is any run of characters and `?` any one character, anywhere in the string."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@lru_cache(maxsize=1024)
def _resource_glob(pattern: str) -> re.Pattern[str]:
    """Resource wildcards stay inside one colon-separated segment unless `*` ends the segment."""
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html : wildcards
    # (* and ?) work "within the individual segments of an ARN"; "If the * wildcard is the last character of a
    # resource ARN segment, it can expand to match beyond the colon boundaries." Matching is case-sensitive (the
    # same page: "In the Resource element, the IAM user name is case sensitive").
    out: list[str] = []
    for i, c in enumerate(pattern):
        if c == "*":
            ends_segment = i + 1 == len(pattern) or pattern[i + 1] == ":"
            out.append(".*" if ends_segment else "[^:]*")
        elif c == "?":
            out.append("[^:]")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def _action_matches(pattern: str, action: str) -> bool:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html : "The prefix and
    # the action name are case insensitive"; "*" may stand for all of a service's actions ("s3:*") or part of a
    # name ("iam:*AccessKey*").
    return bool(_glob(pattern, True).fullmatch(action))


def _resource_matches(pattern: str, resource: str) -> bool:
    _refuse_variables(pattern, "Resource")
    return bool(_resource_glob(pattern).fullmatch(resource))


def _refuse_variables(text: str, where: str) -> None:
    # Policy variables (${aws:username}...) are resolved by AWS from the request; this evaluator does not model
    # them, and treating them as literals would make a statement silently never match.
    if "${" in text:
        raise ValueError(f"policy variables are not supported (in {where}: {text!r})")


# ---------------------------------------------------------------------------------------------------------------
# Principal / NotPrincipal
# ---------------------------------------------------------------------------------------------------------------


class _Via(IntEnum):
    """How a Principal element matched a request's principal; larger is more direct."""

    NONE = 0
    ACCOUNT_ROOT = 1
    DIRECT = 2


def _as_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str | bool | int | float):
        return [value]
    raise ValueError(f"{where} must be a value or a list of values, got {value!r}")


def _principal_entry(entry: str, principal: Principal) -> _Via:
    """How one value of a Principal's "AWS" list matches `principal`."""
    if entry == "*":
        return _Via.DIRECT
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html:
    # "You cannot use a wildcard to match part of a principal name or ARN." AWS refuses such a policy, so a plan holding
    # one is wrong: say so rather than let it match nothing.
    if "*" in entry or "?" in entry:
        raise ValueError(f"a Principal cannot hold a partial wildcard: {entry!r}")
    if not principal.arn:
        return _Via.NONE
    if entry == principal.arn:
        return _Via.DIRECT
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html,
    # "AWS account principals": the account ARN (arn:aws:iam::<id>:root) and the bare account id "behave the same way.
    # Both delegate permissions to the account" and do "not limit permissions to only the root user of the account" -
    # every principal of the account matches, but only through the account.
    root = _ROOT_ARN.fullmatch(entry)
    account = root.group(1) if root else entry if _ACCOUNT_ID.fullmatch(entry) else ""
    if account and account == principal.account:
        return _Via.DIRECT if principal.is_account_root else _Via.ACCOUNT_ROOT
    return _Via.NONE


def _principal_via(element: Any, principal: Principal) -> _Via:
    """How a Principal element admits `principal`."""
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html,
    # "All principals": "Principal": "*" and {"AWS": "*"} are equivalent. Several values are a logical OR ("you
    # authenticate as one principal at a time").
    if element == "*":
        return _Via.DIRECT
    if not isinstance(element, Mapping):
        raise ValueError(f"a Principal must be '*' or a mapping, got {element!r}")
    best = _Via.NONE
    for kind, values in element.items():
        for entry in _as_list(values, f"Principal {kind}"):
            if not isinstance(entry, str):
                raise ValueError(f"a Principal {kind} value must be a string, got {entry!r}")
            if kind == "AWS":
                best = max(best, _principal_entry(entry, principal))
            elif kind == "Service" and entry == principal.service:
                # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html,
                # "AWS service principals": a service is named by its service principal.
                best = _Via.DIRECT
            # Federated and CanonicalUser principals are never the principals this project models.
    return best


def _excluded_by_not_principal(element: Any, principal: Principal) -> bool:
    """Whether a NotPrincipal element exempts `principal` from its statement."""
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html : with Deny,
    # "you must also specify the account ARN of the not-denied principal. Otherwise, the policy might deny access
    # to the entire account containing the principal" ("AWS might validate the account first and then the
    # user"). We take the conservative reading: an IAM principal is exempt only if both its own ARN and its
    # account are listed; the account entry alone exempts only the account principal itself.
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        raise ValueError(f"a NotPrincipal must be '*' or a mapping, got {element!r}")
    if principal.service:
        return _principal_via(element, principal) is _Via.DIRECT
    aws = [e for e in _as_list(element.get("AWS", []), "NotPrincipal AWS") if isinstance(e, str)]
    if "*" in aws:
        return True
    listed = any(_principal_entry(e, principal) is _Via.DIRECT for e in aws)
    account_listed = any(_principal_entry(e, principal) is not _Via.NONE for e in aws if e != principal.arn)
    return listed and (principal.is_account_root or account_listed)


# ---------------------------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------------------------

_Compare = Callable[[Any, Any], bool]


def _text(value: Any) -> str:
    # Context values may be Python bools or numbers; AWS compares their JSON spelling ("true", "10").
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any, what: str) -> Decimal:
    try:
        return Decimal(_text(value))
    except InvalidOperation:
        raise ValueError(f"{what} {value!r} is not a number") from None


def _boolean(value: Any, what: str) -> bool:
    text = _text(value).lower()
    if text not in {"true", "false"}:
        raise ValueError(f"{what} {value!r} is not true or false")
    return text == "true"


def _date(value: Any, what: str) -> datetime:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    # "Date condition operators": values are W3C ISO 8601 dates or epoch (UNIX) time.
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        text = _text(value)
        try:
            moment = datetime.fromtimestamp(int(text), UTC) if text.isdigit() else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an ISO 8601 date or epoch time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _arn_like(pattern: Any, value: Any) -> bool:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    # "ARN condition operators": "Each of the six colon-delimited components of the ARN is checked separately and each
    # can include multi-character match wildcards (*) or single-character match wildcards (?)", case-sensitively;
    # ArnEquals and ArnLike "behave identically".
    # A pattern or value of fewer than six components is not an ARN; the page does not say how AWS treats one, so
    # it never matches here.
    want, got = _text(pattern).split(":", _ARN_PARTS - 1), _text(value).split(":", _ARN_PARTS - 1)
    if len(want) != _ARN_PARTS or len(got) != _ARN_PARTS:
        return False
    return all(_glob(w, False).fullmatch(g) for w, g in zip(want, got, strict=True))


def _ip_in(pattern: Any, value: Any) -> bool:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    # "IP address condition operators": CIDR notation; an address without a prefix means /32.
    try:
        return ipaddress.ip_address(_text(value)) in ipaddress.ip_network(_text(pattern), strict=False)
    except ValueError:
        raise ValueError(f"IP condition: {pattern!r} or {value!r} is not an address or CIDR range") from None


def _numeric(test: Callable[[Decimal, Decimal], bool]) -> _Compare:
    return lambda policy, ctx: test(_number(ctx, "context value"), _number(policy, "policy value"))


def _dated(test: Callable[[datetime, datetime], bool]) -> _Compare:
    return lambda policy, ctx: test(_date(ctx, "context value"), _date(policy, "policy value"))


# Each base operator: (positive comparison of one policy value with one context value, negated?). A negated
# operator is true when no policy value matches (NOR); see _evaluate_key.
_BASE_OPERATORS: dict[str, tuple[_Compare, bool]] = {
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    # "String condition operators".
    "StringEquals": (lambda p, c: _text(p) == _text(c), False),
    "StringNotEquals": (lambda p, c: _text(p) == _text(c), True),
    "StringEqualsIgnoreCase": (lambda p, c: _text(p).casefold() == _text(c).casefold(), False),
    "StringNotEqualsIgnoreCase": (lambda p, c: _text(p).casefold() == _text(c).casefold(), True),
    "StringLike": (lambda p, c: bool(_glob(_text(p), False).fullmatch(_text(c))), False),
    "StringNotLike": (lambda p, c: bool(_glob(_text(p), False).fullmatch(_text(c))), True),
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    # "Numeric condition operators": integers or decimals, compared as numbers.
    "NumericEquals": (_numeric(lambda c, p: c == p), False),
    "NumericNotEquals": (_numeric(lambda c, p: c == p), True),
    "NumericLessThan": (_numeric(lambda c, p: c < p), False),
    "NumericLessThanEquals": (_numeric(lambda c, p: c <= p), False),
    "NumericGreaterThan": (_numeric(lambda c, p: c > p), False),
    "NumericGreaterThanEquals": (_numeric(lambda c, p: c >= p), False),
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    # "Date condition operators".
    "DateEquals": (_dated(lambda c, p: c == p), False),
    "DateNotEquals": (_dated(lambda c, p: c == p), True),
    "DateLessThan": (_dated(lambda c, p: c < p), False),
    "DateLessThanEquals": (_dated(lambda c, p: c <= p), False),
    "DateGreaterThan": (_dated(lambda c, p: c > p), False),
    "DateGreaterThanEquals": (_dated(lambda c, p: c >= p), False),
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    # "Boolean condition operators": compares with "true" or "false". The page's examples write the string; letter
    # case is not documented, so it is ignored (a JSON true/false in the policy reads the same).
    "Bool": (lambda p, c: _boolean(p, "policy value") == _boolean(c, "context value"), False),
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    # "Binary condition operators": the context holds the base-64 text the policy states.
    "BinaryEquals": (lambda p, c: _text(p) == _text(c), False),
    "IpAddress": (_ip_in, False),
    "NotIpAddress": (_ip_in, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
}
_SET_PREFIXES = ("ForAnyValue:", "ForAllValues:")
_IF_EXISTS = "IfExists"


@dataclass(frozen=True)
class _Operator:
    base: str
    set_prefix: str
    if_exists: bool


def _parse_operator(name: str) -> _Operator:
    """Split `ForAnyValue:StringLikeIfExists` into its parts; refuse any operator AWS does not define."""
    # An unknown operator is refused, not treated as false: false would quietly disable a Deny (and a typo in an
    # Allow would hide), which is the opposite of what a plan check is for.
    set_prefix = next((p for p in _SET_PREFIXES if name.startswith(p)), "")
    rest = name[len(set_prefix) :]
    if_exists = rest.endswith(_IF_EXISTS) and rest != _IF_EXISTS
    base = rest[: -len(_IF_EXISTS)] if if_exists else rest
    if base == "Null":
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
        # "...IfExists": "You can add IfExists to the end of any condition operator name except the Null condition".
        if if_exists or set_prefix:
            raise ValueError(f"unknown condition operator {name!r}: Null takes neither IfExists nor a set prefix")
    elif base not in _BASE_OPERATORS:
        raise ValueError(f"unknown condition operator {name!r}")
    return _Operator(base, set_prefix, if_exists)


def _is_empty(value: Value) -> bool:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html:
    # "If the key values in the request resolve to an empty data set (for example, an empty string)".
    return value == "" or (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 0)


def _context_values(value: Value) -> list[Any]:
    if isinstance(value, str | bool | int | float):
        return [] if value == "" else [value]
    return list(value)


def _evaluate_key(op: _Operator, key: str, policy_values: list[Any], context: Mapping[str, Value]) -> bool:
    """One condition key under one operator."""
    present = key.lower() in context
    if op.base == "Null":
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
        # "Condition operator to check existence of condition keys": true means "the key doesn't exist - it is null",
        # false means "the key exists and its value is not null". An empty value counts as null (
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
        # examples: a Null false check stops "context keys with empty values" passing).
        is_null = not present or _is_empty(context[key.lower()])
        return any(_boolean(v, "Null value") == is_null for v in policy_values)
    compare, negated = _BASE_OPERATORS[op.base]
    if not present:
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
        # (Important box): a missing key makes a condition false, except that an operator which requires the key not to
        # match (StringNotLike, ArnNotLike...) is then true; "...IfExists" evaluates "the condition element as true"
        # when the key is missing.
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html:
        # ForAllValues "also returns true if there are no context keys in the request";
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html:
        # ForAnyValue returns false on an empty set.
        return op.if_exists or op.set_prefix == "ForAllValues:" or (not op.set_prefix and negated)
    values = _context_values(context[key.lower()])

    def one(value: Any) -> bool:
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html :
        # several values for one key are OR-ed, and NOR-ed for a negated operator.
        hit = any(compare(policy, value) for policy in policy_values)
        return not hit if negated else hit

    if op.set_prefix:
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html:
        # ForAllValues is true when every request value matches at least one policy value (so true on an empty set);
        # ForAnyValue is true when any request value matches any policy value (so false on an empty set).
        results = [one(v) for v in values]
        return all(results) if op.set_prefix == "ForAllValues:" else any(results)
    if len(values) != 1:
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html:
        # "Multivalued context keys require a condition set operator." AWS does not document what a plain operator does
        # with several values, so refuse rather than pick a meaning.
        raise ValueError(f"condition key {key!r} holds {len(values)} values: {op.base} needs ForAnyValue/ForAllValues")
    return one(values[0])


def _condition_holds(condition: Any, context: Mapping[str, Value]) -> bool:
    """Whether a Condition block holds: every operator AND-ed, every key within an operator AND-ed."""
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html:
    # "If your policy statement has multiple condition operators, the condition operators are evaluated using a logical
    # AND"; multiple keys under one operator are AND-ed too.
    if not isinstance(condition, Mapping):
        raise ValueError(f"a Condition must be a mapping, got {condition!r}")
    results: list[bool] = []
    for name, keys in condition.items():
        op = _parse_operator(name)
        if not isinstance(keys, Mapping):
            raise ValueError(f"condition operator {name!r} must map keys to values, got {keys!r}")
        for key, raw in keys.items():
            policy_values = _as_list(raw, f"condition {name} {key}")
            for value in policy_values:
                _refuse_variables(_text(value), f"condition {name} {key}")
            results.append(_evaluate_key(op, key, policy_values, context))
    # Every block is evaluated (not short-circuited) so that an unknown operator is always reported.
    return all(results)


def _request_context(request: Request) -> dict[str, Value]:
    """The request's condition keys, lower-cased, plus the principal keys AWS always adds."""
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html:
    # "Condition key names are not case-sensitive."
    context: dict[str, Value] = {}
    for key, value in request.context.items():
        if key.lower() in context:
            raise ValueError(f"condition key {key!r} is given twice (key names are case-insensitive)")
        context[key.lower()] = value
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html : aws:PrincipalArn
    # (for a role, the role's ARN, not the session's) and aws:PrincipalAccount are in every IAM principal's
    # request; aws:PrincipalServiceName is present when a service principal makes the request.
    principal = request.principal
    derived: dict[str, str] = (
        {"aws:principalarn": principal.arn, "aws:principalaccount": principal.account}
        if principal.arn
        else {"aws:principalservicename": principal.service}
    )
    for key, value in derived.items():
        context.setdefault(key, value)
    return context


# ---------------------------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------------------------


def _statements(document: str | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    parsed: Any = json.loads(document) if isinstance(document, str) else document
    if not isinstance(parsed, Mapping) or "Statement" not in parsed:
        raise ValueError("a policy document must be a mapping with a Statement")
    statements = parsed["Statement"]
    listed = statements if isinstance(statements, list) else [statements]
    if not all(isinstance(s, Mapping) for s in listed):
        raise ValueError("every Statement must be a mapping")
    return listed


def _check_shape(statement: Mapping[str, Any]) -> None:
    """Refuse a statement AWS would refuse, whether or not it applies to the request at hand."""
    for one, other in (("Principal", "NotPrincipal"), ("Resource", "NotResource")):
        if one in statement and other in statement:
            raise ValueError(f"a statement cannot hold both {one} and {other}")
    if ("Action" in statement) == ("NotAction" in statement):
        raise ValueError("a statement must hold exactly one of Action or NotAction")
    condition = statement.get("Condition", {})
    if not isinstance(condition, Mapping):
        raise ValueError(f"a Condition must be a mapping, got {condition!r}")
    # Operators are checked in every statement, so a typo is reported even where the principal does not match.
    for name in condition:
        _parse_operator(name)


def _principal_part(statement: Mapping[str, Any], principal: Principal) -> _Via:
    if "Principal" in statement:
        return _principal_via(statement["Principal"], principal)
    if "NotPrincipal" in statement:
        # NotPrincipal "enables you to specify an exception to a list of principals" (see
        # _excluded_by_not_principal); every other principal matches.
        excluded = _excluded_by_not_principal(statement["NotPrincipal"], principal)
        return _Via.NONE if excluded else _Via.DIRECT
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html:
    # in an identity-based policy "the principal is implicitly the identity where the policy is attached".
    return _Via.DIRECT


def _action_part(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(_action_matches(_text(a), action) for a in _as_list(statement["Action"], "Action"))
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html :
    # NotAction "explicitly matches everything except the specified list of actions".
    return not any(_action_matches(_text(a), action) for a in _as_list(statement["NotAction"], "NotAction"))


def _resource_part(statement: Mapping[str, Any], resource: str) -> bool:
    if "Resource" in statement:
        return any(_resource_matches(_text(r), resource) for r in _as_list(statement["Resource"], "Resource"))
    if "NotResource" in statement:
        return not any(_resource_matches(_text(r), resource) for r in _as_list(statement["NotResource"], "NotResource"))
    # A statement without Resource (a role trust policy) covers the resource it is attached to.
    return True


def covers(statement: Mapping[str, Any], request: Request) -> bool:
    """Whether a statement's principal, action and resource cover a request, its conditions aside.

    For checks that cannot know a request's condition keys (a live key policy read by preflight): they
    weigh the statement's conditions themselves.
    """
    _check_shape(statement)
    return (
        _principal_part(statement, request.principal) is not _Via.NONE
        and _action_part(statement, request.action)
        and _resource_part(statement, request.resource)
    )


def _statement_via(statement: Mapping[str, Any], request: Request, context: Mapping[str, Value]) -> _Via:
    """How a statement applies to a request (_Via.NONE when it does not)."""
    _check_shape(statement)
    via = _principal_part(statement, request.principal)
    applies = (
        via is not _Via.NONE
        and _action_part(statement, request.action)
        and _resource_part(statement, request.resource)
        and _condition_holds(statement.get("Condition", {}), context)
    )
    return via if applies else _Via.NONE


def evaluate_document(document: str | Mapping[str, Any], request: Request) -> Match:
    """How one policy document treats a request: Deny beats Allow; None when no statement applies."""
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
    # : "An explicit deny overrides an explicit allow"; with neither, the request is implicitly denied.
    context = _request_context(request)
    deny: str | None = None
    direct_allow: str | None = None
    root_allow: str | None = None
    for index, statement in enumerate(_statements(document), start=1):
        effect = statement.get("Effect")
        if effect not in {"Allow", "Deny"}:
            raise ValueError(f"statement {index}: Effect must be Allow or Deny, got {effect!r}")
        via = _statement_via(statement, request, context)
        if via is _Via.NONE:
            continue
        sid = str(statement.get("Sid") or f"statement {index}")
        if effect == "Deny":
            deny = deny or sid
        elif via is _Via.DIRECT:
            direct_allow = direct_allow or sid
        else:
            root_allow = root_allow or sid
    if deny is not None:
        return Match("Deny", deny)
    # A direct grant is reported in preference to one through the account: only the latter needs IAM policies.
    if direct_allow is not None:
        return Match("Allow", direct_allow)
    if root_allow is not None:
        return Match("Allow", root_allow, via_account_root=True)
    return Match(None, "")


def _who(principal: Principal) -> str:
    return f"service {principal.service}" if principal.service else f"account {principal.account} ({principal.arn})"


@dataclass(frozen=True)
class _Case:
    """What `decide` knows once the resource policy has been read (and found not to deny)."""

    request: Request
    match: Match
    name: str
    identity_allows: bool

    @property
    def allowed(self) -> Decision:
        return Decision(True, f"allowed by statement {self.match.sid} of {self.name}", f"{self.name}:{self.match.sid}")

    @property
    def not_admitted(self) -> Decision:
        return Decision(False, f"no statement of {self.name} admits {_who(self.request.principal)}")

    def needs_iam(self, why: str) -> Decision:
        principal = self.request.principal
        return Decision(
            False,
            f"statement {self.match.sid} of {self.name} admits {_who(principal)} {why}, "
            f"and its IAM policies do not allow {self.request.action}",
        )


def _decide_service(case: _Case) -> Decision:
    # A service principal has no IAM policies of its own in the project's accounts: only the resource policy can
    # grant it access.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html ("AWS service
    # principals") and the cross-account page: "You can also specify an AWS service as a principal".
    return case.allowed if case.match.effect == "Allow" else case.not_admitted


def _decide_key(case: _Case, cross_account: bool) -> Decision:
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html : "Unlike other AWS resource
    # policies, an AWS KMS key policy does not automatically give permission to the account or any of its users";
    # when the principal is the account principal the statement "allows the account to use IAM policies to
    # delegate the permissions". So the key policy must allow, and a grant through the account root also needs the
    # caller's IAM policies.
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html :
    # "Cross-account access requires permission in the key policy of the KMS key and in an IAM policy in the
    # external user's account."
    if case.match.effect is None:
        return case.not_admitted
    if case.identity_allows:
        return case.allowed
    if case.match.via_account_root:
        return case.needs_iam("only through the account, which delegates to IAM policies")
    if cross_account:
        return case.needs_iam("from another account")
    return case.allowed


def _decide_cross_account(case: _Case) -> Decision:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html :
    # the resource-based policy in the trusting account must specify the principal, and "The principal's
    # identity-based policy must allow the requested access"; both are needed.
    if case.match.effect is None:
        return case.not_admitted
    return case.allowed if case.identity_allows else case.needs_iam("from another account")


def _decide_same_account(case: _Case) -> Decision:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html :
    # within one account, "If either the identity-based policy or the resource-based policy within the same account
    # allows the request and the other doesn't, the request is still allowed." A grant to the account only
    # delegates to the account's IAM policies
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html ("AWS account
    # principals": both forms "delegate permissions to the account"), so it does not by itself allow a role.
    action = case.request.action
    if case.match.effect == "Allow" and (not case.match.via_account_root or case.identity_allows):
        return case.allowed
    if case.identity_allows:
        return Decision(True, f"allowed by the caller's IAM policies ({case.name} neither allows nor denies {action})")
    if case.match.effect == "Allow":
        return case.needs_iam("only through the account, which delegates to IAM policies")
    return Decision(False, f"neither {case.name} nor the caller's IAM policies allow {action}")


def decide(
    request: Request,
    *,
    resource_account: str,
    resource_policy: str | Mapping[str, Any] | None,
    resource_policy_name: str = "resource policy",
    identity_allows: bool = True,
    key_policy: bool = False,
) -> Decision:
    """Whether AWS would allow the request, given the resource's policy and whether the caller's IAM allows it."""
    if not _ACCOUNT_ID.fullmatch(resource_account):
        raise ValueError(f"resource_account must be 12 digits, got {resource_account!r}")
    match = Match(None, "") if resource_policy is None else evaluate_document(resource_policy, request)
    name = resource_policy_name
    if match.effect == "Deny":
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
        # : "An explicit deny overrides an explicit allow."
        return Decision(False, f"denied by statement {match.sid} of {name}", f"{name}:{match.sid}")
    case = _Case(request, match, name, identity_allows)
    principal = request.principal
    if principal.service:
        return _decide_service(case)
    cross_account = principal.account != resource_account
    if key_policy:
        return _decide_key(case, cross_account)
    return _decide_cross_account(case) if cross_account else _decide_same_account(case)
