"""Plan rules on aws.backup.Plan and on BACKUP_POLICY plans: copy lifecycles, retention, copies, quotas."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pgf_backup_policy.model import UNKNOWN, Context
from pgf_backup_policy.plans import (
    copy_action_explicit_lifecycle_violations,
    plan_within_quotas_violations,
    prod_copies_leave_account_and_region_violations,
    retention_within_tier_bounds_violations,
)
from pgf_backup_policy.views import BACKUP_PLAN, ORG_POLICY

from tests.policy import fixtures as f

RULES = (
    copy_action_explicit_lifecycle_violations,
    plan_within_quotas_violations,
    prod_copies_leave_account_and_region_violations,
    retention_within_tier_bounds_violations,
)


def _plan(edit: Any = None) -> dict[str, Any]:
    """The prod plan fixture, with `edit(rules)` applied to a copy of its rules."""
    plan = copy.deepcopy(f.PLAN)
    if edit is not None:
        edit(plan["rules"])
    return plan


def _org(edit: Any = None, **changes: Any) -> dict[str, Any]:
    """The prod BACKUP_POLICY fixture, with `edit(rules)` applied to a copy of its rules."""
    document = copy.deepcopy(f.ORG_DOCUMENT)
    if edit is not None:
        edit(document["plans"]["pgf-prod"]["rules"])
    return f.org_policy(document, **changes)


@pytest.mark.parametrize("rule", RULES)
def test_compliant_plans_pass(rule: Any) -> None:
    assert rule(BACKUP_PLAN, f.PLAN, f.ctx()) == []
    assert rule(ORG_POLICY, f.org_policy(), f.ctx(None, stack="backup")) == []


@pytest.mark.parametrize("rule", RULES)
def test_other_resources_are_ignored(rule: Any) -> None:
    assert rule(ORG_POLICY, f.org_policy(type="SERVICE_CONTROL_POLICY", content="{}"), f.ctx()) == []
    assert rule("aws:backup/vault:Vault", f.VAULT, f.ctx()) == []


# ---------------------------------------------------------------------------------------------
# copy-action-explicit-lifecycle


def test_copy_without_lifecycle() -> None:
    plan = _plan(lambda rules: rules[0]["copyActions"][1].pop("lifecycle"))
    (message,) = copy_action_explicit_lifecycle_violations(BACKUP_PLAN, plan, f.ctx("lab"))
    assert message.startswith(f"plan pgf-prod, rule daily: the copy to {f.COPY_REGION_VAULT} sets no delete-after")


def test_copy_lifecycle_without_delete_after() -> None:
    plan = _plan(lambda rules: rules[2]["copyActions"][0]["lifecycle"].pop("deleteAfter"))
    (message,) = copy_action_explicit_lifecycle_violations(BACKUP_PLAN, plan, f.ctx())
    assert "rule yearly" in message and f.CENTRAL_VAULT in message


def test_org_copy_without_lifecycle() -> None:
    def edit(rules: dict[str, Any]) -> None:
        rules["daily"]["copy_actions"][f.CENTRAL_VAULT].pop("lifecycle")

    (message,) = copy_action_explicit_lifecycle_violations(ORG_POLICY, _org(edit), f.ctx(None, stack="backup"))
    assert "plan pgf-prod, rule daily" in message


# ---------------------------------------------------------------------------------------------
# retention-within-tier-bounds


def _set(index: int, **lifecycle: Any) -> Any:
    def edit(rules: list[dict[str, Any]]) -> None:
        rules[index]["lifecycle"] = lifecycle
        for action in rules[index]["copyActions"]:
            action["lifecycle"] = dict(lifecycle)

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_set(0, deleteAfter=20), "rule daily is kept 20 days; the prod tier allows 35-3650 days"),
        (_set(1, deleteAfter=4000), "rule monthly is kept 4000 days; the prod tier allows 35-3650 days"),
        (_set(2, deleteAfter=100, coldStorageAfter=30), "delete-after must be >= 120"),
        (_set(3, deleteAfter=60), "AWS keeps continuous backups at most 35 days"),
        (lambda rules: rules[0].pop("lifecycle"), "rule daily has no delete-after, so it is kept forever"),
    ],
)
def test_retention_refused(edit: Any, expected: str) -> None:
    problems = retention_within_tier_bounds_violations(BACKUP_PLAN, _plan(edit), f.ctx())
    assert any(expected in p for p in problems), problems


def test_copy_retention_refused() -> None:
    plan = _plan(lambda rules: rules[0]["copyActions"][0].update(lifecycle={"deleteAfter": 5000}))
    (message,) = retention_within_tier_bounds_violations(BACKUP_PLAN, plan, f.ctx())
    assert message == (
        f"plan pgf-prod, rule daily: the copy to {f.CENTRAL_VAULT} is kept 5000 days; the prod tier allows 35-3650 days"
    )


def test_lab_bounds_and_config_bounds() -> None:
    lab_plan = _plan(lambda rules: [r.update(copyActions=[], lifecycle={"deleteAfter": 14}) for r in rules])
    assert retention_within_tier_bounds_violations(BACKUP_PLAN, lab_plan, f.ctx("lab")) == []
    narrow = f.ctx("lab", bounds={"lab": (7, 10)})
    assert len(retention_within_tier_bounds_violations(BACKUP_PLAN, lab_plan, narrow)) == 4


def test_unknown_tier_checks_only_what_needs_no_tier() -> None:
    plan = f.changed(_plan(_set(0, deleteAfter=4000)), tags=None)
    assert retention_within_tier_bounds_violations(BACKUP_PLAN, plan, f.ctx(None, stack="app")) == []
    bad_cold = f.changed(_plan(_set(0, deleteAfter=50, coldStorageAfter=10)), tags=None)
    problems = retention_within_tier_bounds_violations(BACKUP_PLAN, bad_cold, f.ctx(None, stack="app"))
    assert len(problems) == 3 and all("delete-after must be >= 100" in p for p in problems)  # rule and 2 copies


def test_org_retention_refused() -> None:
    def edit(rules: dict[str, Any]) -> None:
        rules["daily"]["lifecycle"]["delete_after_days"] = {"@@assign": "20"}

    (message,) = retention_within_tier_bounds_violations(ORG_POLICY, _org(edit), f.ctx(None, stack="backup"))
    assert message == "plan pgf-prod, rule daily is kept 20 days; the prod tier allows 35-3650 days"


def test_org_policy_without_tier_tag_is_not_bounded() -> None:
    def edit(rules: dict[str, Any]) -> None:
        rules["daily"]["lifecycle"]["delete_after_days"] = {"@@assign": "20"}

    untagged = _org(edit, tags={})
    assert retention_within_tier_bounds_violations(ORG_POLICY, untagged, f.ctx(None, stack="backup")) == []


def test_unknown_lifecycle_is_not_judged() -> None:
    plan = _plan(_set(0, deleteAfter=UNKNOWN))
    assert retention_within_tier_bounds_violations(BACKUP_PLAN, plan, f.ctx()) == []


# ---------------------------------------------------------------------------------------------
# prod-copies-leave-account-and-region


def test_prod_rule_without_cross_account_copy() -> None:
    plan = _plan(lambda rules: rules[0]["copyActions"].pop(0))
    (message,) = prod_copies_leave_account_and_region_violations(BACKUP_PLAN, plan, f.ctx())
    assert message == "plan pgf-prod, rule daily copies to no vault in another account (the dedicated backup account)"


def test_prod_rule_without_cross_region_copy() -> None:
    plan = _plan(lambda rules: rules[1]["copyActions"].pop(1))
    (message,) = prod_copies_leave_account_and_region_violations(BACKUP_PLAN, plan, f.ctx())
    assert "rule monthly copies to no vault outside ca-central-1" in message


def test_one_copy_to_another_account_and_region_is_enough() -> None:
    elsewhere = f"arn:aws:backup:{f.COPY_REGION}:{f.BACKUP_ACCOUNT}:backup-vault:pgf-prod"
    plan = _plan(lambda rules: [r.update(copyActions=[{"destinationVaultArn": elsewhere}]) for r in rules])
    assert prod_copies_leave_account_and_region_violations(BACKUP_PLAN, plan, f.ctx()) == []


def test_prod_rule_without_any_copy() -> None:
    plan = _plan(lambda rules: rules[3].update(copyActions=[]))
    assert len(prod_copies_leave_account_and_region_violations(BACKUP_PLAN, plan, f.ctx())) == 2


def test_copies_are_only_required_in_prod() -> None:
    plan = _plan(lambda rules: [r.update(copyActions=[]) for r in rules])
    assert prod_copies_leave_account_and_region_violations(BACKUP_PLAN, plan, f.ctx("dev")) == []


def test_plan_account_must_be_known_in_prod() -> None:
    def first_rule_only(rules: list[dict[str, Any]]) -> None:
        del rules[1:]

    anywhere = Context(stack="prod", region=f.REGION)
    (message,) = prod_copies_leave_account_and_region_violations(BACKUP_PLAN, _plan(first_rule_only), anywhere)
    assert "cannot tell which account this plan runs in" in message


def test_unknown_destination_is_not_judged() -> None:
    plan = _plan(lambda rules: rules[0]["copyActions"][0].update(destinationVaultArn=UNKNOWN))
    assert prod_copies_leave_account_and_region_violations(BACKUP_PLAN, plan, f.ctx()) == []


def test_org_copy_to_this_account_does_not_leave_it() -> None:
    def edit(rules: dict[str, Any]) -> None:
        rules["daily"]["copy_actions"].pop(f.CENTRAL_VAULT)

    (message,) = prod_copies_leave_account_and_region_violations(ORG_POLICY, _org(edit), f.ctx(None, stack="backup"))
    assert "rule daily copies to no vault in another account" in message


def test_org_copy_region_must_differ_from_each_plan_region() -> None:
    document = copy.deepcopy(f.ORG_DOCUMENT)
    document["plans"]["pgf-prod"]["regions"] = {"@@assign": [f.REGION, f.COPY_REGION]}
    problems = prod_copies_leave_account_and_region_violations(ORG_POLICY, f.org_policy(document), f.ctx())
    assert problems == []  # ca-central-1 copies to ca-west-1 and ca-west-1 to the central vault's region
    document["plans"]["pgf-prod"]["regions"] = {"@@assign": [f.COPY_REGION, "us-east-1"]}
    for rule in document["plans"]["pgf-prod"]["rules"].values():
        rule["copy_actions"].pop(f.CENTRAL_VAULT)
    problems = prod_copies_leave_account_and_region_violations(ORG_POLICY, f.org_policy(document), f.ctx())
    assert any("outside ca-west-1" in p for p in problems)


# ---------------------------------------------------------------------------------------------
# plan-within-quotas


def test_too_many_rules() -> None:
    plan = _plan(lambda rules: rules.extend(copy.deepcopy(rules[0]) for _ in range(7)))
    assert plan_within_quotas_violations(BACKUP_PLAN, plan, f.ctx()) == [
        "plan pgf-prod has 11 rules; AWS allows 10 per plan"
    ]


def test_too_many_copy_actions() -> None:
    plan = _plan(lambda rules: rules[0]["copyActions"].extend(copy.deepcopy(rules[0]["copyActions"] * 2)))
    assert plan_within_quotas_violations(BACKUP_PLAN, plan, f.ctx()) == [
        "plan pgf-prod, rule daily has 6 copy actions; AWS allows 5 per rule"
    ]


def test_org_plan_quotas() -> None:
    document = copy.deepcopy(f.ORG_DOCUMENT)
    rules = document["plans"]["pgf-prod"]["rules"]
    for index in range(9):
        rules[f"extra{index}"] = copy.deepcopy(rules["daily"])
    (message,) = plan_within_quotas_violations(ORG_POLICY, f.org_policy(document), f.ctx())
    assert message == "plan pgf-prod has 11 rules; AWS allows 10 per plan"
    assert json.loads(f.org_policy(document)["content"])  # still a valid document: only the count is wrong
