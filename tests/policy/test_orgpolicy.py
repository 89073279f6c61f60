"""org-backup-policy-valid: JSON, the backup policy syntax, AWS's 10,000 characters."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pgf_backup_policy.model import UNKNOWN
from pgf_backup_policy.orgpolicy import org_backup_policy_valid_violations
from pgf_backup_policy.views import ORG_POLICY

from tests.policy import fixtures as f

ROLE = "arn:aws:iam::$account:role/pgf-backup-service-role"
CONDITION: dict[str, Any] = {
    "condition_key": f.assign("aws:ResourceTag/backup"),
    "condition_value": f.assign("false"),
}
# Example 7 of the syntax page: every resource type but RDS DB instances, with a tag condition.
RESOURCES: dict[str, Any] = {
    "not-rds": {
        "iam_role_arn": f.assign(ROLE),
        "resource_types": f.assign(["*"]),
        "not_resource_types": f.assign(["arn:aws:rds:*:*:db:*"]),
        "conditions": {"string_equals": {"tier": CONDITION}},
    }
}


def _violations(document: Any) -> list[str]:
    content = document if isinstance(document, str) else json.dumps(document)
    return org_backup_policy_valid_violations(ORG_POLICY, f.org_policy(content=content), f.ctx(None, stack="backup"))


def _edited(edit: Any) -> dict[str, Any]:
    document = copy.deepcopy(f.ORG_DOCUMENT)
    edit(document["plans"]["pgf-prod"])
    return document


def test_compliant_policy_passes() -> None:
    assert _violations(f.ORG_DOCUMENT) == []


def test_other_policy_types_are_ignored() -> None:
    scp = f.org_policy(type="SERVICE_CONTROL_POLICY", content="not json")
    assert org_backup_policy_valid_violations(ORG_POLICY, scp, f.ctx()) == []


def test_too_long() -> None:
    (message,) = _violations(json.dumps(f.ORG_DOCUMENT, indent=2) + " " * 10_000)
    assert message.startswith("content is ") and "AWS accepts at most 10,000" in message


def test_not_json() -> None:
    (message,) = _violations('{"plans": ')
    assert message.startswith("content is not valid JSON: Expecting value at line 1")


def test_empty_content() -> None:
    assert _violations("  ") == ["the BACKUP_POLICY has no content"]


def test_unknown_content_is_not_judged() -> None:
    assert org_backup_policy_valid_violations(ORG_POLICY, f.org_policy(content=UNKNOWN), f.ctx()) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda plan: plan.pop("regions"), "plans.pgf-prod: missing 'regions'"),
        (lambda plan: plan.update(region=plan["regions"]), "plans.pgf-prod: unknown key 'region'"),
        (lambda plan: plan.update(regions={"@@assign": []}), "plans.pgf-prod.regions: must assign a list"),
        (lambda plan: plan.update(rules={}), "plans.pgf-prod.rules: a plan needs at least one rule"),
        (
            lambda plan: plan["rules"]["daily"].pop("target_backup_vault_name"),
            "plans.pgf-prod.rules.daily: missing 'target_backup_vault_name'",
        ),
        (
            lambda plan: plan["rules"]["daily"].update(schedule_expression="cron(0 5 ? * * *)"),
            "plans.pgf-prod.rules.daily.schedule_expression: must be an operator object",
        ),
        (
            lambda plan: plan["rules"]["daily"]["lifecycle"].update(delete_after_days={"@@assign": "a week"}),
            "plans.pgf-prod.rules.daily.lifecycle.delete_after_days: 'a week' is not a whole number of days",
        ),
        (
            lambda plan: plan["rules"]["daily"]["lifecycle"].update(delete_after={"@@assign": "7"}),
            "plans.pgf-prod.rules.daily.lifecycle: unknown key 'delete_after'",
        ),
        (
            lambda plan: plan["rules"]["daily"]["copy_actions"][f.CENTRAL_VAULT].update(
                target_backup_vault_arn={"@@assign": f.CENTRAL_VAULT + "-other"}
            ),
            "the key must be the ARN assigned to target_backup_vault_arn",
        ),
        (
            lambda plan: plan["selections"]["tags"]["pgf-prod-tagged"].pop("iam_role_arn"),
            "plans.pgf-prod.selections.tags.pgf-prod-tagged: missing 'iam_role_arn'",
        ),
        (
            lambda plan: plan["selections"].update(by_tag={}),
            "plans.pgf-prod.selections: unknown key 'by_tag'",
        ),
        # AWS's syntax page lists no time zone key: its cron is in UTC.
        (
            lambda plan: plan["rules"]["daily"].update(schedule_expression_timezone=f.assign("America/Toronto")),
            "plans.pgf-prod.rules.daily: unknown key 'schedule_expression_timezone'",
        ),
        (
            lambda plan: plan["rules"]["daily"].update(start_backup_window_minutes=f.assign("an hour")),
            "rules.daily.start_backup_window_minutes: 'an hour' is not a whole number of minutes",
        ),
        (
            lambda plan: plan["rules"]["daily"].update(complete_backup_window_minutes=f.assign(True)),
            "rules.daily.complete_backup_window_minutes: True is not a whole number of minutes",
        ),
        (
            lambda plan: plan["rules"]["continuous"].update(enable_continuous_backup=f.assign("yes")),
            "rules.continuous.enable_continuous_backup: 'yes' is not a boolean",
        ),
        (
            lambda plan: plan["rules"]["daily"]["lifecycle"].update(
                opt_in_to_archive_for_supported_resources=f.assign("no")
            ),
            "lifecycle.opt_in_to_archive_for_supported_resources: 'no' is not a boolean",
        ),
        (
            lambda plan: plan["rules"]["daily"].update(
                target_logically_air_gapped_backup_vault_arn=f.assign(f.CENTRAL_VAULT + "-air-gapped")
            ),
            "the ARN must use the placeholders $region and $account",
        ),
        (
            lambda plan: plan["selections"].update(resources=copy.deepcopy(RESOURCES)),
            "plans.pgf-prod.selections: tags and resources are mutually exclusive",
        ),
        (
            lambda plan: plan.update(selections={"resources": {"all": {"iam_role_arn": f.assign(ROLE)}}}),
            "plans.pgf-prod.selections.resources.all: missing 'resource_types'",
        ),
        (
            lambda plan: plan["selections"]["tags"]["pgf-prod-tagged"].update(
                conditions={"string_equal": {"backup": CONDITION}}
            ),
            "selections.tags.pgf-prod-tagged.conditions: unknown key 'string_equal'",
        ),
        (
            lambda plan: plan["selections"]["tags"]["pgf-prod-tagged"].update(
                conditions={"string_equals": {"backup": {"condition_key": f.assign("aws:ResourceTag/backup")}}}
            ),
            "conditions.string_equals.backup: missing 'condition_value'",
        ),
        (
            lambda plan: plan["selections"]["tags"]["pgf-prod-tagged"].update(
                conditions={"string_not_equals": {f"c{i}": CONDITION for i in range(31)}}
            ),
            "selections.tags.pgf-prod-tagged.conditions: 31 conditions; AWS allows 30 per selection",
        ),
    ],
)
def test_syntax_refused(edit: Any, expected: str) -> None:
    problems = _violations(_edited(edit))
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("content ") for p in problems)


@pytest.mark.parametrize(
    "edit",
    [
        # Each is a form shown on AWS's syntax page (orgs_manage_policies_backup_syntax.html).
        lambda plan: plan.update(scan_settings={}),
        lambda plan: plan["rules"]["continuous"].update(enable_continuous_backup=f.assign("true")),
        lambda plan: plan["rules"]["daily"]["lifecycle"].update(
            opt_in_to_archive_for_supported_resources=f.assign("false")
        ),
        lambda plan: plan["rules"]["daily"]["lifecycle"].update(
            opt_in_to_archive_for_supported_resources=f.assign(False)
        ),
        lambda plan: plan["rules"]["daily"].update(
            target_logically_air_gapped_backup_vault_arn=f.assign(
                "arn:aws:backup:$region:$account:backup-vault:AirGapped"
            )
        ),
        lambda plan: plan["rules"]["daily"].update(index_actions={"resource_types": f.assign(["EBS", "S3"])}),
        lambda plan: plan["selections"]["tags"]["pgf-prod-tagged"].update(
            conditions={"string_not_equals": {"opted-out": CONDITION}}
        ),
        lambda plan: plan.update(selections={"resources": copy.deepcopy(RESOURCES)}),
    ],
)
def test_documented_syntax_passes(edit: Any) -> None:
    assert _violations(_edited(edit)) == []


def test_top_level_must_be_plans() -> None:
    assert _violations({"policies": {}}) == [
        "content policy: unknown key 'policies' (allowed: plans)",
        "content policy: missing 'plans'",
    ]


def test_child_control_operator_is_allowed() -> None:
    document = _edited(lambda plan: plan.update({"@@operators_allowed_for_child_policies": ["@@none"]}))
    assert _violations(document) == []


def test_many_errors_are_summarised() -> None:
    def edit(plan: dict[str, Any]) -> None:
        for index in range(15):
            plan["rules"][f"r{index}"] = {"schedule_expression": "daily"}

    problems = _violations(_edited(edit))
    assert len(problems) == 10 and problems[-1].endswith("more)")
