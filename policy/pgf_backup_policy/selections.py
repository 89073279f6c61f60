"""selection-is-scoped: backup selections choose resources deliberately, within what AWS honours."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pgf_backup.limits import MAX_ARNS_PER_SELECTION
from pgf_backup_policy.model import Context, as_list, is_unknown

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
