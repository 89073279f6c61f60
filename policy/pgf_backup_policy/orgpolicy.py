"""org-backup-policy-valid: AWS Organizations BACKUP_POLICY documents in the documented policy syntax."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from pgf_backup.limits import MAX_BACKUP_POLICY_CHARACTERS
from pgf_backup_policy.model import Context, as_list, is_unknown
from pgf_backup_policy.views import ORG_POLICY, assigned

BACKUP_POLICY: Final = "BACKUP_POLICY"
MAX_CHARACTERS: Final = MAX_BACKUP_POLICY_CHARACTERS
MAX_REPORTED: Final = 10

VALUE_OPERATORS: Final = frozenset({"@@assign", "@@append", "@@remove"})
CHILD_CONTROL: Final = "@@operators_allowed_for_child_policies"
# The keys below are those of AWS's page, table by table ("Backup policy elements", "Backup rule elements",
# "Backup selection elements: Tags" / "...: Resources"), no more:
# https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_backup_syntax.html
# It has no `schedule_expression_timezone`: "schedule_expression: Cron expression in UTC".
PLAN_KEYS: Final = frozenset(
    {"rules", "regions", "selections", "advanced_backup_settings", "backup_plan_tags", "scan_settings"}
)
REQUIRED_PLAN_KEYS: Final = ("regions", "rules", "selections")
RULE_KEYS: Final = frozenset(
    {
        "schedule_expression",
        "target_backup_vault_name",
        "target_logically_air_gapped_backup_vault_arn",
        "start_backup_window_minutes",
        "complete_backup_window_minutes",
        "enable_continuous_backup",
        "lifecycle",
        "copy_actions",
        "recovery_point_tags",
        "index_actions",
        "scan_actions",
    }
)
REQUIRED_RULE_KEYS: Final = ("schedule_expression", "target_backup_vault_name")
# Rule settings whose value is an operator object (the others are nested objects).
RULE_LEAVES: Final = RULE_KEYS - {"recovery_point_tags", "lifecycle", "copy_actions", "index_actions", "scan_actions"}
# The page gives numbers as strings ("@@assign": "480") and booleans as "false" or false.
NUMERIC_RULE_KEYS: Final = ("start_backup_window_minutes", "complete_backup_window_minutes")
BOOLEAN_KEYS: Final = ("enable_continuous_backup", "opt_in_to_archive_for_supported_resources")
# "The ARN must use the special placeholders $region and $account."
AIR_GAPPED_PLACEHOLDERS: Final = ("$region", "$account")
LIFECYCLE_KEYS: Final = frozenset(
    {"delete_after_days", "move_to_cold_storage_after_days", "opt_in_to_archive_for_supported_resources"}
)
NUMERIC_LIFECYCLE_KEYS: Final = ("delete_after_days", "move_to_cold_storage_after_days")
COPY_KEYS: Final = frozenset({"target_backup_vault_arn", "lifecycle"})
# "There are two mutually exclusive elements: tags and resources."
SELECTION_KINDS: Final = frozenset({"tags", "resources"})
TAG_SELECTION_KEYS: Final = frozenset({"iam_role_arn", "tag_key", "tag_value", "conditions"})
REQUIRED_TAG_SELECTION_KEYS: Final = ("iam_role_arn", "tag_key", "tag_value")
RESOURCE_SELECTION_KEYS: Final = frozenset({"iam_role_arn", "resource_types", "not_resource_types", "conditions"})
REQUIRED_RESOURCE_SELECTION_KEYS: Final = ("iam_role_arn", "resource_types")
CONDITION_OPERATORS: Final = frozenset({"string_equals", "string_not_equals", "string_like", "string_not_like"})
CONDITION_KEYS: Final = ("condition_key", "condition_value")
MAX_CONDITIONS: Final = 30  # "Limited to 30 conditions for each selection."
TAG_KEYS: Final = ("tag_key", "tag_value")


def is_backup_policy(resource_type: str, props: Mapping[str, Any]) -> bool:
    """True for an Organizations policy of type BACKUP_POLICY."""
    return resource_type == ORG_POLICY and props.get("type") == BACKUP_POLICY


def parsed_content(props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A BACKUP_POLICY's content as data; None when unknown or not a JSON object."""
    content = props.get("content")
    if not isinstance(content, str):
        return None
    try:
        document = json.loads(content)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, Mapping) else None


class _Checker:
    """Walks a backup policy document and collects what does not follow the syntax."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(self, node: Any, path: str) -> Mapping[str, Any] | None:
        if not isinstance(node, Mapping):
            self.error(path, "must be a JSON object")
            return None
        return node

    def keys(self, node: Mapping[str, Any], path: str, allowed: frozenset[str], required: tuple[str, ...]) -> None:
        for key in node:
            if key not in allowed and key != CHILD_CONTROL:
                self.error(path, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in node:
                self.error(path, f"missing {key!r}")

    def operator(self, node: Any, path: str, numeric: str = "", boolean: bool = False) -> Any:
        """Check an operator object (`numeric` names the unit of a whole number); its value, or None."""
        operators = [k for k in node if k in VALUE_OPERATORS] if isinstance(node, Mapping) else []
        if len(operators) != 1 or any(k not in VALUE_OPERATORS and k != CHILD_CONTROL for k in node):
            self.error(path, 'must be an operator object such as {"@@assign": value}')
            return None
        value = node[operators[0]]
        whole = isinstance(value, int) and not isinstance(value, bool)
        if numeric and not (whole or (isinstance(value, str) and value.isdigit())):
            self.error(path, f"{value!r} is not a whole number of {numeric}")
        if boolean and not (isinstance(value, bool) or value in ("true", "false")):
            self.error(path, f'{value!r} is not a boolean ("true" or "false")')
        return value

    def tag_map(self, node: Any, path: str, keys: tuple[str, ...]) -> None:
        entries = self.mapping(node, path)
        for name, entry in (entries or {}).items():
            fields = self.mapping(entry, f"{path}.{name}")
            if fields is None:
                continue
            self.keys(fields, f"{path}.{name}", frozenset(keys), keys)
            for key in keys:
                if key in fields:
                    self.operator(fields[key], f"{path}.{name}.{key}")

    def lifecycle(self, node: Any, path: str) -> None:
        fields = self.mapping(node, path)
        if fields is None:
            return
        self.keys(fields, path, LIFECYCLE_KEYS, ())
        for key in fields:
            if key in LIFECYCLE_KEYS:
                self.operator(
                    fields[key],
                    f"{path}.{key}",
                    numeric="days" if key in NUMERIC_LIFECYCLE_KEYS else "",
                    boolean=key in BOOLEAN_KEYS,
                )

    def copy_actions(self, node: Any, path: str) -> None:
        for arn, copy in (self.mapping(node, path) or {}).items():
            where = f"{path}[{arn}]"
            fields = self.mapping(copy, where)
            if fields is None:
                continue
            self.keys(fields, where, COPY_KEYS, ("target_backup_vault_arn",))
            if "target_backup_vault_arn" in fields:
                self.operator(fields["target_backup_vault_arn"], f"{where}.target_backup_vault_arn")
                if assigned(fields["target_backup_vault_arn"]) != arn:
                    self.error(where, "the key must be the ARN assigned to target_backup_vault_arn")
            if "lifecycle" in fields:
                self.lifecycle(fields["lifecycle"], f"{where}.lifecycle")

    def rule(self, node: Any, path: str) -> None:
        fields = self.mapping(node, path)
        if fields is None:
            return
        self.keys(fields, path, RULE_KEYS, REQUIRED_RULE_KEYS)
        for key, value in fields.items():
            if key in RULE_LEAVES:
                assigned_value = self.operator(
                    value,
                    f"{path}.{key}",
                    numeric="minutes" if key in NUMERIC_RULE_KEYS else "",
                    boolean=key in BOOLEAN_KEYS,
                )
                air_gapped = key == "target_logically_air_gapped_backup_vault_arn"
                if air_gapped and not all(p in str(assigned_value) for p in AIR_GAPPED_PLACEHOLDERS):
                    self.error(f"{path}.{key}", "the ARN must use the placeholders $region and $account")
        if "lifecycle" in fields:
            self.lifecycle(fields["lifecycle"], f"{path}.lifecycle")
        if "copy_actions" in fields:
            self.copy_actions(fields["copy_actions"], f"{path}.copy_actions")
        if "recovery_point_tags" in fields:
            self.tag_map(fields["recovery_point_tags"], f"{path}.recovery_point_tags", TAG_KEYS)

    def conditions(self, node: Any, path: str) -> None:
        operators = self.mapping(node, path)
        if operators is None:
            return
        self.keys(operators, path, CONDITION_OPERATORS, ())
        count = 0
        for operator, entries in operators.items():
            if operator in CONDITION_OPERATORS:
                self.tag_map(entries, f"{path}.{operator}", CONDITION_KEYS)
                count += len(entries) if isinstance(entries, Mapping) else 0
        if count > MAX_CONDITIONS:
            self.error(path, f"{count} conditions; AWS allows {MAX_CONDITIONS} per selection")

    def selection(self, node: Any, path: str, allowed: frozenset[str], required: tuple[str, ...]) -> None:
        fields = self.mapping(node, path)
        if fields is None:
            return
        self.keys(fields, path, allowed, required)
        for key, value in fields.items():
            if key == "conditions":
                self.conditions(value, f"{path}.conditions")
            elif key in allowed:
                self.operator(value, f"{path}.{key}")

    def selections(self, node: Mapping[str, Any], path: str) -> None:
        self.keys(node, path, SELECTION_KINDS, ())
        if set(node) >= SELECTION_KINDS:
            self.error(path, "tags and resources are mutually exclusive: use resources for both kinds of condition")
        kinds: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
            "tags": (TAG_SELECTION_KEYS, REQUIRED_TAG_SELECTION_KEYS),
            "resources": (RESOURCE_SELECTION_KEYS, REQUIRED_RESOURCE_SELECTION_KEYS),
        }
        for kind, (allowed, required) in kinds.items():
            if kind in node:
                for name, selection in (self.mapping(node[kind], f"{path}.{kind}") or {}).items():
                    self.selection(selection, f"{path}.{kind}.{name}", allowed, required)

    def plan(self, node: Any, path: str) -> None:
        fields = self.mapping(node, path)
        if fields is None:
            return
        self.keys(fields, path, PLAN_KEYS, REQUIRED_PLAN_KEYS)
        if "regions" in fields:
            self.operator(fields["regions"], f"{path}.regions")
            regions = assigned(fields["regions"])
            if not as_list(regions) or not all(isinstance(r, str) for r in as_list(regions)):
                self.error(f"{path}.regions", "must assign a list of region names")
        rules = self.mapping(fields.get("rules", {}), f"{path}.rules")
        if rules is not None and "rules" in fields and not rules:
            self.error(f"{path}.rules", "a plan needs at least one rule")
        for name, rule in (rules or {}).items():
            self.rule(rule, f"{path}.rules.{name}")
        selections = self.mapping(fields.get("selections", {}), f"{path}.selections")
        if selections is not None:
            self.selections(selections, f"{path}.selections")
        if "backup_plan_tags" in fields:
            self.tag_map(fields["backup_plan_tags"], f"{path}.backup_plan_tags", TAG_KEYS)

    def document(self, document: Any) -> None:
        top = self.mapping(document, "policy")
        if top is None:
            return
        self.keys(top, "policy", frozenset({"plans"}), ("plans",))
        plans = self.mapping(top.get("plans", {}), "plans")
        if plans is not None and "plans" in top and not plans:
            self.error("plans", "the policy defines no plan")
        for name, plan in (plans or {}).items():
            self.plan(plan, f"plans.{name}")


def syntax_errors(document: Any) -> list[str]:
    """What in a parsed backup policy does not follow AWS Organizations' backup policy syntax."""
    checker = _Checker()
    checker.document(document)
    return checker.errors


def org_backup_policy_valid_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """A BACKUP_POLICY's content is JSON in the backup policy syntax, within AWS's 10,000 characters."""
    if not is_backup_policy(resource_type, props):
        return []
    content = props.get("content")
    if is_unknown(content):
        return []
    if not isinstance(content, str) or not content.strip():
        return ["the BACKUP_POLICY has no content"]
    problems = []
    if len(content) > MAX_CHARACTERS:
        problems.append(
            f"content is {len(content):,} characters; AWS accepts at most {MAX_CHARACTERS:,} "
            "(write it without indentation, or split plans across policies)"
        )
    try:
        document = json.loads(content)
    except json.JSONDecodeError as error:
        return [*problems, f"content is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"]
    errors = syntax_errors(document)
    more = f" (and {len(errors) - MAX_REPORTED} more)" if len(errors) > MAX_REPORTED else ""
    problems.extend(f"content {e}" for e in errors[:MAX_REPORTED])
    if more:
        problems[-1] += more
    return problems
