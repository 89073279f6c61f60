"""Evidence rules: prod's protected types are restore-tested where prod's tests run; the backup account has audit
evidence (a framework and report plans delivered to a bucket) when it holds prod vaults."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pgf_backup_policy.evidence import (
    FRAMEWORK,
    REPORT_PLAN,
    REQUIRED_REPORTS,
    RESTORE_TESTING_PLAN,
    RESTORE_TESTING_SELECTION,
    TierTesting,
    audit_evidence_present_violations,
    restore_testing_covers_prod_violations,
    restore_testing_scope,
)
from pgf_backup_policy.model import UNKNOWN, Context, Resource
from pgf_backup_policy.vaults import AIR_GAPPED_VAULT, VAULT

from tests.policy import fixtures as f

PROD_TYPES = ["Aurora", "DynamoDB", "EFS", "RDS", "S3"]
BACKUP_ACCOUNT_TESTING = {"prod": {"location": "backup-account", "types": PROD_TYPES, "stacks": ["prod"]}}
WORKLOAD_TESTING = {"prod": {"location": "workload", "types": PROD_TYPES}}

BACKUP_STACK = f.ctx(None)  # stack `backup`: no tier, each resource's tier is its backup:tier tag
PROD_STACK = f.ctx("prod")

TESTING_PLAN: dict[str, Any] = {
    "name": "pgf_prod_restore_tests",
    "scheduleExpression": "cron(0 6 ? * SUN *)",
    "recoveryPointSelection": {
        "algorithm": "LATEST_WITHIN_WINDOW",
        "includeVaults": [f.CENTRAL_VAULT],
        "recoveryPointTypes": ["SNAPSHOT"],
        "selectionWindowDays": 7,
    },
    "tags": {"backup:tier": "prod"},
}


def _selection(kind: str, plan: str = "pgf_prod_restore_tests") -> dict[str, Any]:
    return {
        "name": f"pgf_prod_{kind.lower()}",
        "restoreTestingPlanName": plan,
        "protectedResourceType": kind,
        "iamRoleArn": f"arn:aws:iam::{f.BACKUP_ACCOUNT}:role/pgf-backup-restore-testing",
        "protectedResourceArns": ["*"],
        "validationWindowHours": 1,
    }


def _testing(context: Context, types: list[str] = PROD_TYPES, **plan_changes: Any) -> list[Resource]:
    """A restore testing plan and one selection per type, all in `context`'s account and region."""
    plan = f.resource(RESTORE_TESTING_PLAN, f.changed(TESTING_PLAN, **plan_changes), "prod-tests", context)
    selections = [f.resource(RESTORE_TESTING_SELECTION, _selection(t), f"prod-{t}", context) for t in types]
    return [plan, *selections]


def _covers(resources: list[Resource], testing: dict[str, Any], stack: Context = BACKUP_STACK) -> list[str]:
    findings = restore_testing_covers_prod_violations(resources, {"restoreTesting": testing}, stack)
    assert all(finding.urn == "" for finding in findings)  # about the stack, not one resource
    return [finding.message for finding in findings]


# ---------------------------------------------------------------------------------------------
# restore-testing-covers-prod: the setting


def test_scope_reads_the_setting() -> None:
    assert restore_testing_scope({"restoreTesting": BACKUP_ACCOUNT_TESTING}) == {
        "prod": TierTesting("backup-account", tuple(PROD_TYPES), ("prod",))
    }
    assert restore_testing_scope({}) == {} and restore_testing_scope(None) == {}
    assert restore_testing_scope({"restoreTesting": '{"prod": {"location": "workload", "types": ["S3", "S3"]}}'}) == {
        "prod": TierTesting("workload", ("S3",))
    }


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ([], "'restoreTesting' must map a tier"),
        ({"qa": {"location": "workload", "types": []}}, "restoreTesting.qa': expected a tier"),
        ({"prod": {"location": "elsewhere", "types": []}}, "location: 'elsewhere' is not one of backup-account"),
        ({"prod": {"location": "workload", "types": ["Redshift"]}}, "types: expected a list of restore testing"),
        ({"prod": {"location": "workload", "types": "S3"}}, "types: expected a list"),
        ({"prod": {"location": "workload", "types": [], "stacks": "prod"}}, "stacks: expected a list of stack names"),
    ],
)
def test_a_bad_setting_is_refused(setting: Any, expected: str) -> None:
    with pytest.raises(ValueError, match="policy config") as raised:
        restore_testing_scope({"restoreTesting": setting})
    assert expected in str(raised.value)


# ---------------------------------------------------------------------------------------------
# restore-testing-covers-prod: in the backup account


def test_every_prod_type_tested_in_the_backup_account_passes() -> None:
    assert _covers(_testing(BACKUP_STACK), BACKUP_ACCOUNT_TESTING) == []


def test_a_missing_type_is_named_with_the_tier_and_the_config_keys() -> None:
    resources = _testing(BACKUP_STACK, ["Aurora", "DynamoDB", "RDS"])
    assert _covers(resources, BACKUP_ACCOUNT_TESTING) == [
        "prod protects Aurora, DynamoDB, EFS, RDS, S3 (stack prod) and is restore-tested in the backup account, but "
        "this stack has no restore testing selection of EFS, S3 under a restore testing plan tagged "
        "backup:tier=prod: add them to the backup account's restore testing of prod (`restore_testing.prod` in "
        "Pulumi.backup.yaml), or test prod in its workload account (`restore_testing` in Pulumi.prod.yaml); if prod "
        "does not use a type, remove it from `services` in Pulumi.prod.yaml"
    ]


def test_nothing_tested_lists_every_type_and_each_stack() -> None:
    testing = {"prod": {**BACKUP_ACCOUNT_TESTING["prod"], "stacks": ["prod", "pgf-api-prod"]}}
    (message,) = _covers([], testing)
    assert "(stacks prod, pgf-api-prod)" in message
    assert "no restore testing selection of Aurora, DynamoDB, EFS, RDS, S3 under" in message
    assert "`restore_testing` in Pulumi.prod.yaml, Pulumi.pgf-api-prod.yaml" in message


def test_selections_under_a_plan_of_another_tier_do_not_count() -> None:
    (message,) = _covers(_testing(BACKUP_STACK, tags={"backup:tier": "dev"}), BACKUP_ACCOUNT_TESTING)
    assert "no restore testing selection of Aurora, DynamoDB, EFS, RDS, S3 under" in message
    (untagged,) = _covers(_testing(BACKUP_STACK, tags={}), BACKUP_ACCOUNT_TESTING)
    assert untagged == message


def test_the_plan_tier_may_come_from_the_provider_default_tags() -> None:
    tagged = replace(BACKUP_STACK, default_tags={**BACKUP_STACK.default_tags, "backup:tier": "prod"})
    assert _covers(_testing(tagged, tags=None), BACKUP_ACCOUNT_TESTING) == []


def test_a_selection_naming_another_plan_does_not_count() -> None:
    resources = _testing(BACKUP_STACK, ["Aurora", "DynamoDB", "EFS", "RDS"])
    resources.append(f.resource(RESTORE_TESTING_SELECTION, _selection("S3", plan="elsewhere"), "s3", BACKUP_STACK))
    (message,) = _covers(resources, BACKUP_ACCOUNT_TESTING)
    assert "no restore testing selection of S3 under" in message


def test_a_selection_pairs_with_the_plan_of_its_own_region() -> None:
    # Restore testing plans are regional: a selection in ca-west-1 names a ca-west-1 plan, not this one.
    resources = _testing(BACKUP_STACK, ["Aurora", "DynamoDB", "EFS", "RDS"])
    west = replace(BACKUP_STACK, region=f.COPY_REGION)
    resources.append(f.resource(RESTORE_TESTING_SELECTION, _selection("S3"), "s3-west", west))
    (message,) = _covers(resources, BACKUP_ACCOUNT_TESTING)
    assert "no restore testing selection of S3 under" in message


@pytest.mark.parametrize(
    "change",
    [
        lambda rs: rs[1].props.update(restoreTestingPlanName=UNKNOWN),
        lambda rs: rs[1].props.update(protectedResourceType=UNKNOWN),
        lambda rs: rs[0].props.update(name=UNKNOWN),
        lambda rs: rs[0].props.update(tags=UNKNOWN),
    ],
)
def test_unknown_values_are_not_judged(change: Any) -> None:
    resources = _testing(BACKUP_STACK, ["Aurora"])
    change(resources)
    assert _covers(resources, BACKUP_ACCOUNT_TESTING) == []
    assert _covers(_testing(BACKUP_STACK, ["Aurora"]), BACKUP_ACCOUNT_TESTING) != []  # known, the gap is reported


def test_without_the_setting_nothing_is_checked() -> None:
    assert restore_testing_covers_prod_violations([], {}, BACKUP_STACK) == []
    assert _covers([], {"prod": {"location": "backup-account", "types": []}}) == []


def test_only_prod_is_checked() -> None:
    assert _covers([], {"dev": {"location": "backup-account", "types": PROD_TYPES}}) == []


# ---------------------------------------------------------------------------------------------
# restore-testing-covers-prod: where the tests run


def test_prod_tested_in_its_own_account_is_checked_there_not_in_the_backup_account() -> None:
    assert _covers([], WORKLOAD_TESTING, BACKUP_STACK) == []
    assert _covers(_testing(PROD_STACK), WORKLOAD_TESTING, PROD_STACK) == []
    (message,) = _covers(_testing(PROD_STACK, ["Aurora", "DynamoDB", "EFS", "RDS"]), WORKLOAD_TESTING, PROD_STACK)
    assert message == (
        "prod protects Aurora, DynamoDB, EFS, RDS, S3 and is restore-tested in its own account, but this stack has "
        "no restore testing selection of S3 under a restore testing plan tagged backup:tier=prod: add them to this "
        "stack's restore testing (`restore_testing` in its stack file), or remove `restore_testing` there to test "
        "the prod copies in the backup account; if the stack does not use a type, remove it from its `services`"
    )


def test_prod_tested_in_the_backup_account_is_not_checked_in_the_prod_stack() -> None:
    assert _covers([], BACKUP_ACCOUNT_TESTING, PROD_STACK) == []


def test_other_tiers_stacks_are_not_checked() -> None:
    assert _covers([], WORKLOAD_TESTING, f.ctx("lab")) == []
    assert _covers([], BACKUP_ACCOUNT_TESTING, f.ctx("dev")) == []


def test_the_stack_comes_from_the_resources_when_not_given() -> None:
    resources = _testing(PROD_STACK, ["Aurora"])
    found = restore_testing_covers_prod_violations(resources, {"restoreTesting": WORKLOAD_TESTING})
    assert len(found) == 1 and "no restore testing selection of DynamoDB, EFS, RDS, S3 under" in found[0].message


# ---------------------------------------------------------------------------------------------
# audit-evidence-present

FRAMEWORK_PROPS: dict[str, Any] = {
    "name": "pgf_backup_prod",
    "controls": [
        {"name": "BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN"},
        {
            "name": "BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK",
            "inputParameters": [{"name": "requiredRetentionDays", "value": "35"}],
        },
    ],
    "tags": {"backup:tier": "prod"},
}


def _report_plan(template: str, bucket: Any = "pgf-backup-reports-100000000010") -> dict[str, Any]:
    channel: dict[str, Any] = {"formats": ["CSV", "JSON"], "s3KeyPrefix": "audit-reports"}
    if bucket is not None:
        channel["s3BucketName"] = bucket
    return {
        "name": f"pgf_{template.lower()}",
        "reportDeliveryChannel": channel,
        "reportSetting": {"reportTemplate": template},
    }


def _audit(*, vault: dict[str, Any] = f.VAULT, framework: dict[str, Any] | None = FRAMEWORK_PROPS) -> list[Resource]:
    resources = [f.resource(VAULT, vault, "prod-vault", BACKUP_STACK)]
    if framework is not None:
        resources.append(f.resource(FRAMEWORK, framework, "framework", BACKUP_STACK))
    resources += [
        f.resource(REPORT_PLAN, _report_plan(template), f"report-{template}", BACKUP_STACK)
        for template in REQUIRED_REPORTS
    ]
    return resources


def _audit_findings(resources: list[Resource], stack: Context = BACKUP_STACK) -> list[tuple[str, str]]:
    return [(x.urn, x.message) for x in audit_evidence_present_violations(resources, {}, stack)]


def test_a_backup_account_with_framework_and_report_plans_passes() -> None:
    assert _audit_findings(_audit()) == []


def test_without_a_framework_it_is_refused() -> None:
    assert _audit_findings(_audit(framework=None)) == [
        (
            "",
            "this backup account holds prod vaults but no AWS Backup Audit Manager framework with controls "
            "(aws.backup.Framework): the prod backups have no compliance evidence (`audit` in Pulumi.backup.yaml)",
        )
    ]


def test_a_framework_without_controls_does_not_count() -> None:
    (found,) = _audit_findings(_audit(framework=f.changed(FRAMEWORK_PROPS, controls=[])))
    assert "no AWS Backup Audit Manager framework with controls" in found[1]
    assert _audit_findings(_audit(framework=f.changed(FRAMEWORK_PROPS, controls=UNKNOWN))) == []


@pytest.mark.parametrize("template", list(REQUIRED_REPORTS))
def test_each_report_plan_is_required(template: str) -> None:
    resources = [r for r in _audit() if r.props.get("reportSetting", {}).get("reportTemplate") != template]
    assert _audit_findings(resources) == [
        (
            "",
            "this backup account holds prod vaults but no report plan (aws.backup.ReportPlan) of "
            f"{REQUIRED_REPORTS[template]} ({template}) delivered to a bucket: auditors have no record of them "
            "(`audit` in Pulumi.backup.yaml)",
        )
    ]


def test_nothing_at_all_names_the_framework_and_every_report() -> None:
    found = _audit_findings([f.resource(VAULT, f.VAULT, "prod-vault", BACKUP_STACK)])
    assert len(found) == 2
    assert (
        "backup jobs (BACKUP_JOB_REPORT), copy jobs (COPY_JOB_REPORT), restore jobs (RESTORE_JOB_REPORT), control "
        "compliance (CONTROL_COMPLIANCE_REPORT), resource compliance (RESOURCE_COMPLIANCE_REPORT)" in found[1][1]
    )


@pytest.mark.parametrize("bucket", [None, ""])
def test_a_report_plan_without_a_bucket_is_refused_on_its_urn(bucket: Any) -> None:
    resources = [r for r in _audit() if r.name != "report-COPY_JOB_REPORT"]
    resources.append(f.resource(REPORT_PLAN, _report_plan("COPY_JOB_REPORT", bucket), "copies", BACKUP_STACK))
    found = _audit_findings(resources)
    assert found[0] == (
        "urn:pulumi:prod::pgf-backup::aws:backup/reportPlan:ReportPlan::copies",
        "report plan pgf_copy_job_report (COPY_JOB_REPORT) delivers its reports to no bucket: set "
        "reportDeliveryChannel.s3BucketName to the reports bucket",
    )
    assert len(found) == 2 and "of copy jobs (COPY_JOB_REPORT) delivered to a bucket" in found[1][1]


def test_unknown_report_values_are_not_judged() -> None:
    resources = [r for r in _audit() if r.name != "report-COPY_JOB_REPORT"]
    unknown_bucket = _report_plan("COPY_JOB_REPORT", UNKNOWN)
    assert _audit_findings([*resources, f.resource(REPORT_PLAN, unknown_bucket, "copies", BACKUP_STACK)]) == []
    unknown_template = f.changed(_report_plan("COPY_JOB_REPORT"), reportSetting=UNKNOWN)
    assert _audit_findings([*resources, f.resource(REPORT_PLAN, unknown_template, "copies", BACKUP_STACK)]) == []
    assert _audit_findings(resources) != []


def test_an_air_gapped_prod_vault_is_a_prod_tier_too() -> None:
    found = _audit_findings([f.resource(AIR_GAPPED_VAULT, f.AIR_GAPPED_VAULT, "air-gapped", BACKUP_STACK)])
    assert len(found) == 2


def test_without_a_prod_vault_nothing_is_required() -> None:
    lab_vault = f.changed(f.VAULT, name="pgf-lab", tags={"backup:tier": "lab"})
    assert _audit_findings([f.resource(VAULT, lab_vault, "lab-vault", BACKUP_STACK)]) == []
    assert _audit_findings([]) == []


def test_workload_stacks_are_not_asked_for_audit_evidence() -> None:
    vault = f.resource(VAULT, f.VAULT, "prod-vault", PROD_STACK)
    assert _audit_findings([vault], PROD_STACK) == []
    assert audit_evidence_present_violations([vault]) == []  # the stack from the resources: prod


def test_the_stack_tier_setting_marks_a_workload_stack() -> None:
    # An application team's stack named without a tier, given prod.json (which sets the tier).
    team = Context(stack="pgf-api", settings=replace(BACKUP_STACK.settings, tier="prod"))
    vault = f.resource(VAULT, f.VAULT, "prod-vault", replace(BACKUP_STACK, stack="pgf-api"))
    assert _audit_findings([vault], team) == []
    assert len(_audit_findings([vault], replace(team, settings=BACKUP_STACK.settings))) == 2
