"""The audit builder in whole stacks: the backup account's reports bucket, frameworks per tier and report plans,
each workload account's own, organization-wide job reports, the region gap, and the config's errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pgf_backup.builders import audit
from pgf_backup.config import BackupAccountStack
from pgf_backup.config.audit import Audit
from pgf_backup.paths.evaluator import Principal, Request, decide
from pgf_backup.project import Project
from pgf_backup.providers import Providers
from tests.conftest import Harness, config_of, organization_copy, stack_values, utc_copy

RunStack = Callable[..., dict[str, Any]]
BACKUP, LAB, DEV, PROD = "100000000010", "200000000020", "300000000030", "400000000040"
FRAMEWORK = "aws:backup/framework:Framework"
REPORT_PLAN = "aws:backup/reportPlan:ReportPlan"


def _of_type(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def _controls(plan: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    [framework] = [r for r in _of_type(plan, FRAMEWORK) if r["inputs"]["name"] == name]
    return {c["name"]: c for c in framework["inputs"]["controls"]}


def _params(control: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in control.get("inputParameters", [])}


def test_backup_account_frameworks_per_tier_with_config_parameters(run_stack: RunStack) -> None:
    plan = run_stack("backup")
    out = plan["outputs"]["audit"]
    assert sorted(out["frameworks"]) == ["dev", "lab", "prod"]
    prod = _controls(plan, "pgf_prod_backup_controls")
    assert sorted(prod) == sorted(
        [
            "BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN",
            "BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK",
            "BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK",
            "BACKUP_RECOVERY_POINT_ENCRYPTED",
            "BACKUP_RECOVERY_POINT_MANUAL_DELETION_DISABLED",
            "BACKUP_RESOURCES_PROTECTED_BY_BACKUP_VAULT_LOCK",
            "BACKUP_RESOURCES_PROTECTED_BY_CROSS_REGION",
            "BACKUP_RESOURCES_PROTECTED_BY_CROSS_ACCOUNT",
            "BACKUP_LAST_RECOVERY_POINT_CREATED",
        ]
    )
    # tier_bounds.prod.min_days, alarms.rpo_hours.prod (24) and its freshness window (24 + 2), the copy region,
    # the backup account, the break-glass role.
    assert _params(prod["BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK"]) == {
        "requiredFrequencyUnit": "hours",
        "requiredFrequencyValue": "24",
        "requiredRetentionDays": "35",
    }
    assert _params(prod["BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK"]) == {"requiredRetentionDays": "35"}
    assert _params(prod["BACKUP_LAST_RECOVERY_POINT_CREATED"]) == {
        "recoveryPointAgeUnit": "hours",
        "recoveryPointAgeValue": "26",
    }
    assert _params(prod["BACKUP_RESOURCES_PROTECTED_BY_CROSS_REGION"]) == {"crossRegionList": "ca-west-1"}
    assert _params(prod["BACKUP_RESOURCES_PROTECTED_BY_CROSS_ACCOUNT"]) == {"crossAccountList": BACKUP}
    assert _params(prod["BACKUP_RECOVERY_POINT_MANUAL_DELETION_DISABLED"]) == {
        "principalArnList": f"arn:aws:iam::{BACKUP}:role/pgf-backup-break-glass"
    }
    # The backup account holds every tier: every control is scoped by the tier's tag.
    assert all(c["scope"]["tags"] == {"backup:tier": "prod"} for c in prod.values())
    lab = _controls(plan, "pgf_lab_backup_controls")
    assert _params(lab["BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK"]) == {"requiredRetentionDays": "7"}
    assert len(_of_type(plan, FRAMEWORK)) * 9 <= 50


def test_backup_account_bucket_is_compliance_locked_and_admits_each_validator(run_stack: RunStack) -> None:
    plan = run_stack("backup")
    out = plan["outputs"]["audit"]
    assert out["reports_bucket"] == "pgf-backup-reports-100000000010"
    assert out["object_lock"] == {"mode": "COMPLIANCE", "days": 365}
    assert out["evidence_writers"] == {
        account: f"s3://pgf-backup-reports-100000000010/restore-tests/{account}/"
        for account in (BACKUP, LAB, DEV, PROD)
    }
    [policy] = [
        r["inputs"]["policy"] for r in _of_type(plan, "aws:s3/bucketPolicy:BucketPolicy") if "audit" in r["name"]
    ]
    for account in (LAB, DEV, PROD):
        role = Principal(arn=f"arn:aws:iam::{account}:role/pgf-backup-restore-validator")
        own = Request(role, "s3:PutObject", f"arn:aws:s3:::{out['reports_bucket']}/restore-tests/{account}/j.json")
        assert decide(own, resource_account=BACKUP, resource_policy=policy).allowed
        theirs = Request(role, "s3:PutObject", f"arn:aws:s3:::{out['reports_bucket']}/restore-tests/{BACKUP}/j.json")
        assert not decide(theirs, resource_account=BACKUP, resource_policy=policy).allowed
    [bucket] = [r for r in _of_type(plan, "aws:s3/bucket:Bucket") if r["inputs"]["bucket"] == out["reports_bucket"]]
    assert bucket["protect"] is True and bucket["inputs"]["objectLockEnabled"] is True
    assert bucket["inputs"]["tags"]["backup:enabled"] == "false"


def test_backup_account_report_plans_deliver_to_its_bucket(run_stack: RunStack) -> None:
    plan = run_stack("backup")
    out = plan["outputs"]["audit"]
    plans = {r["inputs"]["name"]: r["inputs"] for r in _of_type(plan, REPORT_PLAN)}
    assert (
        sorted(plans)
        == sorted(out["report_plans"])
        == [
            "pgf_backup_jobs",
            "pgf_control_compliance",
            "pgf_copy_jobs",
            "pgf_resource_compliance",
            "pgf_restore_jobs",
        ]
    )
    for inputs in plans.values():
        assert inputs["reportDeliveryChannel"]["s3BucketName"] == out["reports_bucket"]
        assert inputs["reportDeliveryChannel"]["s3KeyPrefix"] == "audit-reports"
    # Account mode: the backup account's own jobs, in both regions (CSV: cross-region).
    jobs = plans["pgf_backup_jobs"]["reportSetting"]
    assert jobs["reportTemplate"] == "BACKUP_JOB_REPORT" and jobs["regions"] == ["ca-central-1", "ca-west-1"]
    assert "accounts" not in jobs
    assert plans["pgf_backup_jobs"]["reportDeliveryChannel"]["formats"] == ["CSV"]
    compliance = plans["pgf_control_compliance"]
    assert compliance["reportSetting"]["frameworkArns"] == [f["arn"] for f in out["frameworks"].values()]
    assert compliance["reportDeliveryChannel"]["formats"] == ["CSV", "JSON"]
    assert out["organization_wide_job_reports"] is False


def test_workload_accounts_have_their_tier_framework_and_own_bucket(run_stack: RunStack) -> None:
    lab = run_stack("lab")
    out = lab["outputs"]["audit"]
    assert list(out["frameworks"]) == ["lab"]
    assert out["reports_bucket"] == "pgf-backup-reports-200000000020"
    assert out["object_lock"] == {"mode": "GOVERNANCE", "days": 365}
    assert out["evidence_writers"] == {}
    controls = _controls(lab, "pgf_lab_backup_controls")
    # One tier per workload account: plans and recovery points (untagged) are evaluated account-wide.
    assert "scope" not in controls["BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK"]
    assert "scope" not in controls["BACKUP_RECOVERY_POINT_ENCRYPTED"]
    assert controls["BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN"]["scope"]["tags"] == {"backup:tier": "lab"}
    assert _params(controls["BACKUP_RESOURCES_PROTECTED_BY_CROSS_ACCOUNT"]) == {"crossAccountList": BACKUP}
    [bucket] = [r for r in _of_type(lab, "aws:s3/bucket:Bucket") if r["inputs"]["bucket"] == out["reports_bucket"]]
    assert bucket["inputs"]["tags"]["backup:enabled"] == "true" and bucket["protect"] is False
    prod = run_stack("prod")
    assert prod["outputs"]["audit"]["object_lock"] == {"mode": "COMPLIANCE", "days": 365}
    [bucket] = [
        r for r in _of_type(prod, "aws:s3/bucket:Bucket") if r["inputs"]["bucket"] == "pgf-backup-reports-400000000040"
    ]
    assert bucket["protect"] is True


def test_organization_mode_job_reports_span_the_accounts(project: Project, run_stack: RunStack, tmp_path: Path) -> None:
    (tmp_path / "utc").mkdir()
    (tmp_path / "org").mkdir()
    copy = organization_copy(utc_copy(project, tmp_path / "utc"), tmp_path / "org")
    plan = run_stack("backup", target=copy)
    assert plan["outputs"]["audit"]["organization_wide_job_reports"] is True
    plans = {r["inputs"]["name"]: r["inputs"] for r in _of_type(plan, REPORT_PLAN)}
    for name in ("pgf_backup_jobs", "pgf_copy_jobs", "pgf_restore_jobs"):
        assert plans[name]["reportSetting"]["accounts"] == [BACKUP, LAB, DEV, PROD]
        assert plans[name]["reportDeliveryChannel"]["formats"] == ["CSV"]
    assert "accounts" not in plans["pgf_control_compliance"]["reportSetting"]


def _backup_config(project: Project, **changes: Any) -> BackupAccountStack:
    values = stack_values(project, "backup")
    for key, value in changes.items():
        values[f"pgf-backup:{key}"] = value
    cfg = config_of(values)
    assert isinstance(cfg, BackupAccountStack)
    return cfg


def test_region_without_the_managed_rules_gets_a_note_not_a_framework(project: Project, pulumi_mocks: Harness) -> None:
    cfg = _backup_config(project, regions={"primary": "ca-west-1", "copy": "ca-central-1"})
    bucket, outputs = pulumi_mocks.run(lambda: audit.build_backup_account(cfg, Providers(cfg, "backup")))
    assert bucket is not None and bucket.name == "pgf-backup-reports-100000000010"
    assert pulumi_mocks.of_type(FRAMEWORK) == []
    [note] = outputs["notes"]
    assert note.startswith("audit: no framework in ca-west-1")
    templates = sorted(r["inputs"]["reportSetting"]["reportTemplate"] for r in pulumi_mocks.of_type(REPORT_PLAN))
    assert templates == ["BACKUP_JOB_REPORT", "COPY_JOB_REPORT", "RESTORE_JOB_REPORT"]


def test_an_rpo_beyond_a_day_is_checked_in_days_with_a_note(project: Project, pulumi_mocks: Harness) -> None:
    cfg = _backup_config(project, alarms={"rpo_hours": {"prod": 36}})
    _, outputs = pulumi_mocks.run(lambda: audit.build_backup_account(cfg, Providers(cfg, "backup")))
    prod = outputs["audit"]["frameworks"]["prod"]["controls"]
    assert prod["BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK"]["requiredFrequencyUnit"] == "days"
    assert prod["BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK"]["requiredFrequencyValue"] == "2"
    assert prod["BACKUP_LAST_RECOVERY_POINT_CREATED"]["recoveryPointAgeValue"] == "38"
    assert any("36 hours is checked as a frequency of 2 days" in n for n in outputs["notes"])


def test_disabled_builds_nothing(project: Project, pulumi_mocks: Harness) -> None:
    cfg = _backup_config(project, audit={"enabled": False})
    assert pulumi_mocks.run(lambda: audit.build_backup_account(cfg, Providers(cfg, "backup"))) == (None, {})
    assert pulumi_mocks.resources == []


def test_non_prod_lock_can_be_left_out(project: Project, pulumi_mocks: Harness) -> None:
    values = stack_values(project, "backup")
    vaults = {k: v for k, v in values["pgf-backup:vaults"].items() if v["tier"] != "prod"}
    cfg = _backup_config(
        project, vaults=vaults, audit={"non_prod_object_lock": "none", "reports_bucket": "pgf-evidence"}
    )
    bucket, outputs = pulumi_mocks.run(lambda: audit.build_backup_account(cfg, Providers(cfg, "backup")))
    assert bucket.name == "pgf-evidence" and outputs["audit"]["object_lock"] is None
    assert sorted(outputs["audit"]["frameworks"]) == ["dev", "lab"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"reports_bucket": "PGF_Reports"}, "reports_bucket"),
        ({"formats": ["CSV", "CSV"]}, "lists a format twice"),
        ({"formats": ["XML"]}, "'CSV' or 'JSON'"),
        ({"object_lock_days": 400, "report_retention_days": 365}, "object_lock_days \\(400\\) is longer"),
        ({"non_prod_object_lock": "compliance"}, "'governance' or 'none'"),
        ({"retention": 3}, "Extra inputs"),
    ],
)
def test_config_refuses_bad_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Audit.model_validate(values)


def test_config_defaults() -> None:
    cfg = Audit()
    assert cfg.enabled and cfg.formats == ("CSV", "JSON") and cfg.create_reports_role
    assert (cfg.report_retention_days, cfg.object_lock_days, cfg.noncurrent_version_expiration_days) == (1096, 365, 30)
    assert cfg.bucket_name("PGF", BACKUP) == "pgf-backup-reports-100000000010"
    assert json.dumps(cfg.model_dump())  # plain values only
