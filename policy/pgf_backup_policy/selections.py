"""selection-is-scoped: backup selections choose resources deliberately, within what AWS honours.
selections-disjoint: no resource can be selected by two plans of a stack."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any, Final, NamedTuple

from pgf_backup.limits import MAX_ARNS_PER_SELECTION
from pgf_backup_policy.model import Context, Finding, Resource, as_list, is_unknown

SELECTION: Final = "aws:backup/selection:Selection"
MAX_EXPLICIT_ARNS: Final = MAX_ARNS_PER_SELECTION
CONDITION_KINDS: Final = ("stringEquals", "stringLikes", "stringNotEquals", "stringNotLikes")

# `*`, or an ARN pattern whose service is a wildcard: both select every resource AWS Backup supports.
_SELECTS_ALL = re.compile(r"^(\*|arn:[^:]*:\*(:.*)?)$")


def _has_conditions(props: Mapping[str, Any]) -> bool:
    blocks = [b for b in as_list(props.get("conditions")) if isinstance(b, Mapping)]
    has_condition = any(as_list(block.get(kind)) for block in blocks for kind in CONDITION_KINDS)
    return has_condition or bool(as_list(props.get("selectionTags")))


def selection_is_scoped_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """No `*` without conditions; at most one condition block; at most 100 explicit ARNs."""
    if resource_type != SELECTION:
        return []
    name = props.get("name") or "this selection"
    resources = [r for r in as_list(props.get("resources")) if isinstance(r, str)]
    problems = []
    scoping_known = not is_unknown(props.get("conditions")) and not is_unknown(props.get("selectionTags"))
    if scoping_known and any(_SELECTS_ALL.match(r) for r in resources) and not _has_conditions(props):
        problems.append(
            f"selection {name} selects every resource ('*') with no condition: scope it by tags "
            "(backup:enabled, backup:tier) or list the resources' ARNs"
        )
    blocks = [b for b in as_list(props.get("conditions")) if isinstance(b, Mapping)]
    if len(blocks) > 1:
        problems.append(
            f"selection {name} has {len(blocks)} condition blocks; they override each other and only one "
            "applies: put every condition in a single block"
        )
    explicit = [r for r in resources if "*" not in r]
    if len(explicit) > MAX_EXPLICIT_ARNS:
        problems.append(
            f"selection {name} lists {len(explicit)} resource ARNs; keep at most {MAX_EXPLICIT_ARNS} per selection "
            "(split it, or select by tags)"
        )
    return problems


# ---------------------------------------------------------------------------------------------
# selections-disjoint


def _wildcard(pattern: str) -> re.Pattern[str]:
    # "The wildcard * represents zero or more non-whitespace characters"
    # (https://docs.aws.amazon.com/aws-backup/latest/devguide/assigning-resources-json.html).
    return re.compile("^" + r"\S*".join(re.escape(part) for part in pattern.split("*")) + "$")


def _matches(patterns: Sequence[str], arn: str) -> bool:
    return any(_wildcard(p).match(arn) for p in patterns)


class _Scope(NamedTuple):
    """What one selection can match: ARN patterns minus exclusions, and its tag conditions."""

    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    equals: tuple[tuple[str, str], ...]
    not_equals: tuple[tuple[str, str], ...]
    likes: bool  # a StringLike / StringNotLike condition: taken as able to match (never proves disjointness)


def _scope(props: Mapping[str, Any]) -> _Scope | None:
    """The selection's scope, or None when part of it is not known yet (the rule then stays silent on it)."""
    keys = ("resources", "notResources", "conditions")
    if any(is_unknown(props.get(k)) for k in keys):
        return None
    blocks = [b for b in as_list(props.get("conditions")) if isinstance(b, Mapping)]

    def pairs(kind: str) -> tuple[tuple[str, str], ...]:
        found = []
        for block in blocks:
            for item in as_list(block.get(kind)):
                if not isinstance(item, Mapping) or is_unknown(item.get("key")) or is_unknown(item.get("value")):
                    continue
                found.append((str(item.get("key")), str(item.get("value"))))
        return tuple(found)

    resources = tuple(r for r in as_list(props.get("resources")) if isinstance(r, str)) or ("*",)
    not_resources = tuple(r for r in as_list(props.get("notResources")) if isinstance(r, str))
    likes = bool(pairs("stringLikes") or pairs("stringNotLikes"))
    tags = [t for t in as_list(props.get("selectionTags")) if isinstance(t, Mapping)]
    equals = pairs("stringEquals")
    if len(tags) == 1 and tags[0].get("type") == "STRINGEQUALS":
        # One ListOfTags entry is one StringEquals condition (several are OR-ed: taken as able to match).
        equals += ((f"aws:ResourceTag/{tags[0].get('key')}", str(tags[0].get("value"))),)
    return _Scope(resources, not_resources, equals, pairs("stringNotEquals"), likes or len(tags) > 1)


def _tags_compatible(a: _Scope, b: _Scope) -> tuple[bool, str]:
    """Whether one tag set can satisfy both selections' conditions (AND within each); the key that rules it out."""
    required: dict[str, set[str]] = {}
    for key, value in (*a.equals, *b.equals):
        required.setdefault(key, set()).add(value)
    for key, values in required.items():
        if len(values) > 1:
            return False, f"{key} cannot be both {' and '.join(sorted(values))}"
    # A StringNotEquals on a tag the resource lacks holds (IAM's reading of negated operators, which AWS Backup's
    # conditions follow: "Boolean arithmetic is similar to that in IAM policies", assigning-resources-json.html):
    # only a required value of the same key contradicts it.
    for key, value in (*a.not_equals, *b.not_equals):
        if value in required.get(key, set()):
            return False, f"{key} cannot be both {value} and not {value}"
    return True, ""


def _resources_overlap(a: _Scope, b: _Scope) -> str | None:
    """An ARN (or ARN pattern) both selections can match after their exclusions, or None."""
    excluded = (*a.not_resources, *b.not_resources)
    for witness in (*a.resources, *b.resources):
        if _matches(a.resources, witness) and _matches(b.resources, witness) and not _matches(excluded, witness):
            return witness
    return None


def _plan_of(resource: Resource) -> str:
    # A plan's selections share its id once known, and their parent component before (a preview of a new plan).
    plan_id = resource.props.get("planId")
    if isinstance(plan_id, str) and plan_id and not is_unknown(plan_id):
        return f"id:{plan_id}"
    return f"parent:{resource.parent or resource.urn}"


def selections_disjoint_violations(resources: Sequence[Resource]) -> list[Finding]:
    """Two selections of different plans that one resource could match: AWS Backup would run both plans on it."""
    scoped = [(r, _scope(r.props)) for r in resources if r.type == SELECTION]
    findings: list[Finding] = []
    for (first, a), (second, b) in combinations(scoped, 2):
        if a is None or b is None or first.where != second.where or _plan_of(first) == _plan_of(second):
            continue
        compatible, _ = _tags_compatible(a, b)
        if a.likes or b.likes:
            compatible = True
        witness = _resources_overlap(a, b) if compatible else None
        if witness is None:
            continue
        names = sorted(str(r.props.get("name") or r.name) for r in (first, second))
        findings.append(
            Finding(
                second.urn,
                f"selections {names[0]} and {names[1]} belong to different plans and can both match {witness} with "
                "the same tags: AWS Backup would back it up under both plans. Route it to one: a tag the one "
                "requires (StringEquals) and the other excludes (StringNotEquals), or its ARN in the other's "
                "NotResources",
            )
        )
    return findings
