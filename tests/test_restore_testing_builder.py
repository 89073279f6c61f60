"""Restore testing in whole stacks: the backup account tests prod's copies by default, a workload stack may test its
own vault, the types a config cannot isolate are skipped with a note or refused, and a region gap is a note."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pgf_backup.builders import restore_testing
from pgf_backup.config import ConfigError
from pgf_backup.config.restore_testing import RestoreTesting
from pgf_backup.project import Project
from tests.conftest import config_of, stack_values

RunStack = Callable[..., dict[str, Any]]
BACKUP, PROD = "100000000010", "400000000040"
PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
NETWORK = {"db_subnet_group_name": "restore-tests-isolated", "security_group_ids": ["sg-0123456789abcdef0"]}


def _of_type(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def _selections(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["inputs"]["protectedResourceType"]: s["inputs"] for s in _of_type(plan, SELECTION)}


def test_backup_account_tests_prod_copies_by_default(run_stack: RunStack, project: Project, tmp_path: Path) -> None:
    def edit(backup: dict[str, Any], prod: dict[str, Any]) -> None:
        backup.pop("pgf-backup:restore_testing")  # the default: no isolated network for RDS and Aurora

    plan = run_stack("backup", _project_copy(project, tmp_path, edit))
    (rt_plan,) = _of_type(plan, PLAN)
    inputs = rt_plan["inputs"]
    assert inputs["name"] == "pgf_prod_restore_tests"
    assert inputs["tags"]["backup:tier"] == "prod"
    assert inputs["recoveryPointSelection"]["includeVaults"] == [
        f"arn:aws:backup:ca-central-1:{BACKUP}:backup-vault:pgf-prod"
    ]
    selections = _selections(plan)
    # No isolated network: RDS and Aurora are left out, with a note each.
    assert sorted(selections) == ["DynamoDB", "EBS", "EFS", "S3"]
    for selection in selections.values():
        assert selection["iamRoleArn"] == f"arn:aws:iam::{BACKUP}:role/pgf-backup-service-role"
        assert len(selection["name"]) <= 50 and selection["name"].replace("_", "").isalnum()
    alias = f"arn:aws:kms:ca-central-1:{BACKUP}:alias/pgf-backup/pgf-prod"
    assert selections["EFS"]["restoreMetadataOverrides"] == {"kmsKeyId": alias}
    assert selections["EBS"]["restoreMetadataOverrides"] == {"kmsKeyId": alias}
    out = plan["outputs"]["restore_testing"]
    assert out["plans"]["prod"]["resource_types"] == ["DynamoDB", "EBS", "EFS", "S3"]
    assert any(n.startswith("restore testing prod: RDS: not restore-tested") for n in out["notes"])
    assert any(n.startswith("restore testing prod: Aurora: not restore-tested") for n in out["notes"])
    # The validator writes to the reports bucket the audit builder made, under this account's prefix.
    assert out["validator"]["evidence"] == f"s3://pgf-backup-reports-{BACKUP}/restore-tests/{BACKUP}/"
    (rule,) = [
        r for r in _of_type(plan, "aws:cloudwatch/eventRule:EventRule") if r["name"].startswith("restore-validator")
    ]
    pattern = json.loads(rule["inputs"]["eventPattern"])
    assert pattern["detail"]["restoreTestingPlanArn"] == [out["plans"]["prod"]["plan_arn"]]
    (function,) = [
        f for f in _of_type(plan, "aws:lambda/function:Function") if f["name"].startswith("restore-validator")
    ]
    assert function["inputs"]["environment"]["variables"]["EVIDENCE_BUCKET"] == f"pgf-backup-reports-{BACKUP}"


def _project_copy(project: Project, root: Path, edit: Callable[[dict[str, Any], dict[str, Any]], None]) -> Project:
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.lab.yaml", "Pulumi.dev.yaml"):
        shutil.copy(project.root / name, root / name)
    backup = yaml.safe_load((project.root / "Pulumi.backup.yaml").read_text())
    prod = yaml.safe_load((project.root / "Pulumi.prod.yaml").read_text())
    edit(backup["config"], prod["config"])
    (root / "Pulumi.backup.yaml").write_text(yaml.safe_dump(backup))
    (root / "Pulumi.prod.yaml").write_text(yaml.safe_dump(prod))
    return Project.find(root)


def test_network_adds_rds_and_aurora_isolated(run_stack: RunStack, project: Project) -> None:
    plan = run_stack("backup")  # the shipped backup stack gives prod's restore tests an isolated network
    assert stack_values(project, "backup")["pgf-backup:restore_testing"] == {"prod": {"network": NETWORK}}
    selections = _selections(plan)
    assert sorted(selections) == ["Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3"]
    assert selections["RDS"]["restoreMetadataOverrides"] == {
        "dbSubnetGroupName": "restore-tests-isolated",
        "vpcSecurityGroupIds": '["sg-0123456789abcdef0"]',
        "publiclyAccessible": "false",
    }
    assert selections["Aurora"]["restoreMetadataOverrides"] == {
        "dbSubnetGroupName": "restore-tests-isolated",
        "vpcSecurityGroupIds": '["sg-0123456789abcdef0"]',
        "kmsKeyId": f"arn:aws:kms:ca-central-1:{BACKUP}:alias/pgf-backup/pgf-prod",
    }
    assert "notes" not in plan["outputs"]["restore_testing"] or not plan["outputs"]["restore_testing"]["notes"]


def test_workload_testing_in_its_own_account(run_stack: RunStack, project: Project, tmp_path: Path) -> None:
    def edit(backup: dict[str, Any], prod: dict[str, Any]) -> None:
        prod["pgf-backup:restore_testing"] = {"resource_types": ["S3", "DynamoDB"], "schedule": "cron(0 6 ? * SAT *)"}

    copy = _project_copy(project, tmp_path, edit)
    plan = run_stack("prod", copy)
    (rt_plan,) = _of_type(plan, PLAN)
    assert rt_plan["inputs"]["scheduleExpression"] == "cron(0 6 ? * SAT *)"
    (vault,) = rt_plan["inputs"]["recoveryPointSelection"]["includeVaults"]
    assert vault.startswith(f"arn:aws:backup:ca-central-1:{PROD}:backup-vault:")
    assert sorted(_selections(plan)) == ["DynamoDB", "S3"]
    out = plan["outputs"]["restore_testing"]
    # Evidence goes to the backup account's reports bucket, under this account's prefix.
    assert out["validator"]["evidence"] == f"s3://pgf-backup-reports-{BACKUP}/restore-tests/{PROD}/"
    (function,) = [
        f for f in _of_type(plan, "aws:lambda/function:Function") if f["name"].startswith("restore-validator")
    ]
    variables = function["inputs"]["environment"]["variables"]
    assert variables["COMPARE_SOURCE"] == "true"  # its own buckets are readable
    (policy,) = [
        p for p in _of_type(plan, "aws:iam/rolePolicy:RolePolicy") if p["name"].startswith("restore-validator")
    ]
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    assert statements["WriteEvidence"]["Resource"] == f"arn:aws:s3:::pgf-backup-reports-{BACKUP}/restore-tests/{PROD}/*"


def test_rds_listed_without_network_is_refused(project: Project) -> None:
    values = stack_values(project, "backup")
    values["pgf-backup:restore_testing"] = {"prod": {"resource_types": ["RDS", "S3"]}}
    with pytest.raises(ConfigError, match=r"restore_testing.*RDS needs network.db_subnet_group_name"):
        config_of(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"schedule": "rate(7 days)"}, "takes a cron expression"),
        ({"selection_window_days": 366}, "less than or equal to 365"),
        ({"start_window_hours": 0}, "greater than or equal to 1"),
        ({"validation_window_hours": 169}, "less than or equal to 168"),
        ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"resource_types": ["Redshift"]}, "Input should be"),
        (
            {"network": {"db_subnet_group_name": "default", "security_group_ids": ["sg-0123456789abcdef0"]}},
            "not an isolated",
        ),
        ({"network": {"db_subnet_group_name": "iso", "security_group_ids": ["sg-xyz"]}}, "should match pattern"),
        ({"metadata_overrides": {"S3": {"bucketName": "x"}}}, "not an overridable key of S3"),
        ({"metadata_overrides": {"RDS": {"PubliclyAccessible": "true"}}}, "set by pgf-backup"),
    ],
)
def test_config_refuses(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RestoreTesting.model_validate(values)


def test_config_takes_aws_overridable_keys_case_insensitively() -> None:
    rt = RestoreTesting.model_validate({"metadata_overrides": {"S3": {"EncryptionType": "SSE-S3"}}})
    assert rt.metadata_overrides == {"S3": {"EncryptionType": "SSE-S3"}}


def test_region_gap_is_a_note() -> None:
    note = restore_testing.availability_gap("xx-nowhere-1", frozenset({"ca-central-1"}))
    assert note is not None and note.startswith("restore testing: not offered in xx-nowhere-1")
    assert restore_testing.availability_gap("ca-central-1", frozenset({"ca-central-1"})) is None
    assert restore_testing.availability_gap("ca-central-1") is None  # botocore's endpoint data has it
