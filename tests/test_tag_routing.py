"""Tag routing (issue 14): each resource is selected by exactly one plan of its tier, the one its tags route it to.

The shipped prod stack has two retention classes (35 and 90 days) and two vaults per criticality (files-raw,
files-processed). Its planned selections are evaluated against tag sets with the same reading of AWS Backup's
selection rules as `pgf-backup verify` (pgf_backup.ops.verify.selects).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pgf_backup.automation.offline import StackPlan, plan_stack
from pgf_backup.config import ConfigError
from pgf_backup.ops.verify import Resource, Selection, selects
from pgf_backup.project import Project
from tests.conftest import config_of, stack_values

SELECTION = "aws:backup/selection:Selection"
PLAN = "aws:backup/plan:Plan"
BASE = {"backup:enabled": "true", "backup:tier": "prod", "application": "pgf"}
S3 = "arn:aws:s3:::pgf-unlisted-bucket"
RDS = "arn:aws:rds:ca-central-1:400000000040:db:pgf-unlisted-db"
AURORA = "arn:aws:rds:ca-central-1:400000000040:cluster:pgf-unlisted-cluster"


@pytest.fixture(scope="module")
def prod(project: Project, backup_outputs: dict[str, Any]) -> StackPlan:
    cfg = project.load_config("prod")
    return plan_stack(project, "prod", {cfg.backup_stack: backup_outputs})  # type: ignore[union-attr]


def _selections(plan: StackPlan) -> list[Selection]:
    """The planned selections, as verify reads them from AWS, each with its plan's name."""
    # A selection and its plan are children of one BackupPlan component.
    plans = {r["parent"]: r["inputs"]["name"] for r in plan.resources if r["type"] == PLAN}
    found: list[Selection] = []
    for resource in plan.resources:
        if resource["type"] != SELECTION:
            continue
        inputs = resource["inputs"]
        conditions: dict[str, tuple[tuple[str, str], ...]] = {}
        for block in inputs.get("conditions") or []:
            for kind, field in (("StringEquals", "stringEquals"), ("StringNotEquals", "stringNotEquals")):
                pairs = tuple((c["key"], c["value"]) for c in block.get(field) or [])
                if pairs:
                    conditions[kind] = conditions.get(kind, ()) + pairs
        found.append(
            Selection(
                plan_name=plans[resource["parent"]],
                name=inputs["name"],
                resources=tuple(inputs.get("resources") or ()),
                not_resources=tuple(inputs.get("notResources") or ()),
                conditions=conditions,
                list_of_tags=(),
            )
        )
    return found


def _plans_selecting(selections: list[Selection], arn: str, tags: dict[str, str]) -> set[str]:
    resource = Resource(arn, arn.rsplit(":", 1)[-1], "S3", "s3-bucket", "ca-central-1", tags)
    return {s.plan_name for s in selections if selects(s, resource)[0]}


# (resource, its tags besides the tier's, the one plan that must select it)
ROUTES = [
    (S3, {}, "pgf-prod"),
    (S3, {"backup:retention_days": "35"}, "pgf-prod"),
    (S3, {"backup:retention_days": "90"}, "pgf-prod-90d"),
    # A value outside the classes is not silently dropped: the default class keeps it (verify reports the value).
    (S3, {"backup:retention_days": "60"}, "pgf-prod"),
    (S3, {"backup:vault": "files-raw"}, "pgf-prod-files-raw"),
    (S3, {"backup:vault": "files-raw", "backup:retention_days": "90"}, "pgf-prod-files-raw-90d"),
    (S3, {"backup:vault": "files-processed"}, "pgf-prod-files-processed"),
    (S3, {"backup:vault": "files-processed", "backup:retention_days": "90"}, "pgf-prod-files-processed-90d"),
    (S3, {"backup:vault": "no-such-vault"}, "pgf-prod"),
    # RDS DB instances never go to the air-gapped vault: the default vault's second plan.
    (RDS, {}, "pgf-prod-standard-vaults"),
    (RDS, {"backup:retention_days": "90"}, "pgf-prod-90d-standard-vaults"),
    (RDS, {"backup:vault": "files-raw"}, "pgf-prod-files-raw"),
    (AURORA, {}, "pgf-prod"),
    (AURORA, {"backup:retention_days": "90"}, "pgf-prod-90d"),
    # Listed by ARN in the config: the plan of its configured routing, whatever its tags say.
    ("arn:aws:s3:::pgf-documents-prod", {}, "pgf-prod-files-raw"),
    ("arn:aws:s3:::pgf-reports-prod", {"backup:retention_days": "35"}, "pgf-prod-files-processed-90d"),
    ("arn:aws:s3:::pgf-exports-prod", {"backup:vault": "files-raw"}, "pgf-prod"),
    ("arn:aws:rds:ca-central-1:400000000040:db:pgf-audit", {}, "pgf-prod-90d-standard-vaults"),
]


@pytest.mark.parametrize(("arn", "tags", "expected"), ROUTES)
def test_each_resource_is_selected_by_exactly_its_plan(
    prod: StackPlan, arn: str, tags: dict[str, str], expected: str
) -> None:
    assert _plans_selecting(_selections(prod), arn, {**BASE, **tags}) == {expected}


@pytest.mark.parametrize("tags", [{"backup:enabled": "false"}, {"backup:tier": "dev"}, {"application": "other"}])
def test_resources_outside_the_tier_are_selected_by_no_plan(prod: StackPlan, tags: dict[str, str]) -> None:
    assert _plans_selecting(_selections(prod), S3, {**BASE, **tags}) == set()


def test_class_plans_keep_the_class_and_copies_keep_their_own(prod: StackPlan) -> None:
    plans = {r["inputs"]["name"]: r["inputs"] for r in prod.resources if r["type"] == PLAN}
    daily = {name: next(rule for rule in p["rules"] if rule["ruleName"] == "daily") for name, p in plans.items()}
    assert daily["pgf-prod"]["lifecycle"]["deleteAfter"] == 35
    assert daily["pgf-prod-90d"]["lifecycle"]["deleteAfter"] == 90
    assert daily["pgf-prod-files-raw-90d"]["lifecycle"]["deleteAfter"] == 90
    # The copies follow the rule's lifecycle where the config gives them none.
    assert {c["lifecycle"]["deleteAfter"] for c in daily["pgf-prod-90d"]["copyActions"]} == {90}
    # The monthly and yearly rules are the same in every class.
    for name, plan in plans.items():
        monthly = next(rule for rule in plan["rules"] if rule["ruleName"] == "monthly")
        assert monthly["lifecycle"]["deleteAfter"] == 365, name


def test_routed_vaults_write_to_their_vault_and_copy_to_their_twins(prod: StackPlan, backup_outputs: dict) -> None:
    plans = {r["inputs"]["name"]: r["inputs"] for r in prod.resources if r["type"] == PLAN}
    rule = plans["pgf-prod-files-raw"]["rules"][0]
    assert rule["targetVaultName"] == "pgf-files-raw"
    destinations = {c["destinationVaultArn"] for c in rule["copyActions"]}
    central = backup_outputs["vaults"]["files-raw"]["ca-central-1"]["arn"]
    assert central in destinations
    assert any(":ca-west-1:400000000040:backup-vault:pgf-files-raw" in d for d in destinations)
    # Logically air-gapped copies are the default vault's only.
    assert not any("air-gapped" in d for d in destinations)


def test_plan_outputs_show_the_routing(prod: StackPlan) -> None:
    buckets = prod.outputs["buckets"]
    assert buckets["pgf-documents-prod"]["backup"] == "plan pgf-prod-files-raw, selection by ARN"
    assert buckets["pgf-reports-prod"]["routing"] == {"vault": "files-processed", "retention_days": 90}
    assert set(prod.outputs["backup_plans"]) >= {"pgf-prod", "pgf-prod-90d", "pgf-prod-files-raw-90d"}


def _prod_values(project: Project) -> dict[str, Any]:
    return copy.deepcopy(stack_values(project, "prod"))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda v: v["pgf-backup:plan"].update(retention_classes=[35, 20]), "20 is below the prod minimum of 35"),
        (lambda v: v["pgf-backup:plan"].update(retention_classes=[35, 90, 90]), "lists a value more than once"),
        (lambda v: v["pgf-backup:plan"].update(retention_rule="weekly"), "'weekly' is not a scheduled rule"),
        (
            lambda v: v["pgf-backup:buckets"]["pgf-exports-prod"].update(retention_days=60),
            "buckets.pgf-exports-prod.retention_days: 60 is not a retention class",
        ),
        (
            lambda v: v["pgf-backup:buckets"]["pgf-exports-prod"].update(vault="files"),
            "buckets.pgf-exports-prod.vault: 'files' is not a vault of this stack",
        ),
    ],
)
def test_routing_config_errors_name_the_key(project: Project, mutate: Any, expected: str) -> None:
    values = _prod_values(project)
    mutate(values)
    with pytest.raises(ConfigError) as caught:
        config_of(values)
    assert expected in str(caught.value)


def test_the_default_class_need_not_be_listed(project: Project) -> None:
    values = _prod_values(project)
    values["pgf-backup:plan"]["retention_classes"] = [90]
    plan = config_of(values).plan
    assert plan is not None and plan.default_retention == 35 and plan.other_classes == (90,)
