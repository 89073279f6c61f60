"""Path checks of the audit reports bucket (restore test evidence, AWS Backup Audit Manager's reports) and of the
CloudWatch OAM links to the backup account's sinks: ok on the shipped stacks, broken when a statement is dropped."""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from pgf_backup.automation.offline import plan_stack
from pgf_backup.config import StackConfig
from pgf_backup.paths.checks import PathResult, broken, check_paths
from pgf_backup.project import Project
from tests.paths.test_checks import (
    BACKUP_ACCOUNT,
    KEYS,
    PROD_ACCOUNT,
    STACKS,
    Planned,
    _edit_document,
    _edited,
    _plan_all,
    _statement,
    _without_statement,
)

REPORTS_BUCKET = f"arn:aws:s3:::pgf-backup-reports-{BACKUP_ACCOUNT}"
PROD_REPORTS_BUCKET = f"arn:aws:s3:::pgf-backup-reports-{PROD_ACCOUNT}"
VALIDATOR = f"arn:aws:iam::{BACKUP_ACCOUNT}:role/pgf-backup-restore-validator"
PROD_VALIDATOR = f"arn:aws:iam::{PROD_ACCOUNT}:role/pgf-backup-restore-validator"
REPORTS_ROLE = "role/aws-service-role/reports.backup.amazonaws.com/AWSServiceRoleForBackupReports"
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
SINK_POLICY = ("aws:oam/sinkPolicy:SinkPolicy",)
REPORT_PLANS = 5  # three job reports and two compliance reports per audited account
WORKLOADS = STACKS[1:]
Plans = tuple[list[Planned], dict[str, StackConfig]]


@pytest.fixture(scope="module")
def shipped(project: Project) -> Plans:
    """The shipped stacks, planned once."""
    return _plan_all(project)


@pytest.fixture(scope="module")
def workload_testing(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Plans:
    """The backup and prod stacks of a scratch copy where prod runs its own restore tests (`restore_testing`)."""
    root = tmp_path_factory.mktemp("workload-restore-tests")
    for name in ("Pulumi.yaml", "__main__.py", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        shutil.copy(project.root / name, root / name)
    prod = root / "Pulumi.prod.yaml"
    prod.write_text(
        prod.read_text().replace("config:\n", "config:\n  pgf-backup:restore_testing:\n    enabled: true\n", 1)
    )
    copy = Project.find(root)
    backup = plan_stack(copy, "backup")
    planned = [backup, plan_stack(copy, "prod", {"organization/pgf-backup/backup": backup.outputs})]
    return (
        [Planned(p.stack, p.resources, p.outputs) for p in planned],
        {p.stack: copy.load_config(p.stack) for p in planned},
    )


def _paths(plans: Plans, kind: str, source: str | None = None) -> list[PathResult]:
    return [r for r in check_paths(*plans) if r.kind == kind and (source is None or r.source == source)]


def _by_request(results: list[PathResult]) -> dict[str, PathResult]:
    """Paths keyed `<action> <object key below the bucket, or the KMS encryption context's>`."""
    keyed: dict[str, PathResult] = {}
    for r in results:
        action = r.request.split(" by ")[0]
        obj = r.request.split(" for ")[-1] if " for " in r.request else r.request.split(" on ")[-1]
        keyed[f"{action} {obj.split(':::', 1)[-1].split('/', 1)[-1]}"] = r
    return keyed


def _broken(plans: Plans, stack: str, edit: Callable[[dict[str, Any]], None]) -> list[PathResult]:
    edited = _edited(plans[0], stack, edit)
    return broken(check_paths(edited, plans[1]))


def _validator_policy(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return _edit_document("aws:iam/rolePolicy:RolePolicy", "policy", change, role="pgf-backup-restore-validator")


def _drop(sid: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]

    return change


# ---------------------------------------------------------------------------------------------
# The shipped stacks


def test_every_stack_has_evidence_and_observability_paths_and_none_is_broken(shipped: Plans) -> None:
    results = check_paths(*shipped)
    assert not broken(results), [r.to_json() for r in broken(results)]
    for stack in STACKS:
        kinds = {r.kind for r in results if r.stack == stack and r.verdict == "ok"}
        assert {"evidence", "observability"} <= kinds, (stack, kinds)
    # The mock runtime registers resources in no fixed order: the report reads the same whatever the order.
    shuffled = copy.deepcopy(shipped[0])
    for plan in shuffled:
        random.Random(7).shuffle(plan.resources)
    assert [r.to_json() for r in check_paths(shuffled, shipped[1])] == [r.to_json() for r in results]


def test_the_backup_validator_writes_its_evidence_and_nothing_else(shipped: Plans) -> None:
    paths = _by_request(_paths(shipped, "evidence", VALIDATOR))
    own = f"restore-tests/{BACKUP_ACCOUNT}/ca-central-1/2025/01/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.json"
    forged = f"audit-reports/Backup/{BACKUP_ACCOUNT}/ca-central-1/2025/01/01/forged.csv"
    assert set(paths) == {
        f"s3:PutObject {own}",
        f"s3:PutObject {own.replace(BACKUP_ACCOUNT, '999999999999')}",
        f"s3:PutObject {forged}",
        f"s3:DeleteObject {own}",
        f"s3:DeleteObjectVersion {own}",
        f"kms:GenerateDataKey {own}",
        f"kms:GenerateDataKey {forged}",
    }
    assert all(r.verdict == "ok" and r.stack == "backup" for r in paths.values())
    write = paths[f"s3:PutObject {own}"]
    assert write.target == REPORTS_BUCKET
    assert "allowed by statement EvidenceWriter0 of bucket policy" in write.reason
    assert "allowed by statement WriteEvidence of inline policy" in write.reason
    assert "x-amz-server-side" not in write.request  # the headers are conditions, not part of the label
    key = paths[f"kms:GenerateDataKey {own}"]
    assert key.target.startswith(f"arn:aws:kms:ca-central-1:{BACKUP_ACCOUNT}:key/")
    assert "EvidenceWriter0 of key policy of audit-reports-key" in key.reason and "EncryptEvidence" in key.reason
    assert "DenyEvidenceDeletionExceptBreakGlass" in paths[f"s3:DeleteObjectVersion {own}"].reason


def test_audit_manager_delivers_each_report_plan_and_another_account_is_refused(shipped: Plans) -> None:
    results = _paths(shipped, "evidence")
    for stack, account in zip(STACKS, ("100000000010", "200000000020", "300000000030", PROD_ACCOUNT), strict=True):
        delivered = [r for r in results if r.stack == stack and ":report-plan:" in r.source]
        # s3:PutObject, then kms:GenerateDataKey and kms:Decrypt, per report plan.
        assert len(delivered) == 3 * REPORT_PLANS, stack
        assert all(r.verdict == "ok" and f"iam::{account}:{REPORTS_ROLE}" in r.request for r in delivered)
        assert all("BackupAuditManagerDeliversReports" in r.reason for r in delivered)
        outsider = [r for r in results if r.stack == stack and r.source.endswith("of account 999999999999")]
        assert sorted(r.request.split(" by ")[0] for r in outsider) == ["kms:GenerateDataKey", "s3:PutObject"]
        assert all(r.verdict == "ok" and "no statement of" in r.reason for r in outsider)
    prod = {r.request.split(" on ")[-1] for r in results if r.stack == "prod" and r.target == PROD_REPORTS_BUCKET}
    # Multi-region job reports land under crossregion/, single-region compliance reports under the region.
    assert f"{PROD_REPORTS_BUCKET}/audit-reports/Backup/{PROD_ACCOUNT}/crossregion/2025/01/01/pgf_backup_jobs" in prod
    assert (
        f"{PROD_REPORTS_BUCKET}/audit-reports/Backup/{PROD_ACCOUNT}/ca-central-1/2025/01/01/pgf_control_compliance"
        in prod
    )


def test_each_workload_links_metrics_to_the_backup_sinks_and_nothing_else(shipped: Plans) -> None:
    results = _paths(shipped, "observability")
    for stack in WORKLOADS:
        links = [r for r in results if r.stack == stack]
        assert len(links) == 4  # two regions: the planned link, and the same sharing log groups
        assert all(r.verdict == "ok" and f":{BACKUP_ACCOUNT}:sink/" in r.target for r in links)
        assert {r.source.split(":")[3] for r in links} == {"ca-central-1", "ca-west-1"}
        metrics = [r for r in links if r.request.endswith("sharing AWS::CloudWatch::Metric")]
        logs = [r for r in links if r.request.endswith("sharing AWS::CloudWatch::Metric, AWS::Logs::LogGroup")]
        assert len(metrics) == len(logs) == 2
        assert all("allowed by statement WorkloadAccountsShareMetrics of sink policy" in r.reason for r in metrics)
        assert all(r.reason.startswith("no statement of sink policy") for r in logs)
        assert all(":role/pgf-backup-deploy on " in r.request for r in links)
    outsiders = [r for r in results if r.stack == "backup"]
    assert [r.source for r in outsiders] == ["account 999999999999"] * 2
    assert all(r.verdict == "ok" and "arn:aws:iam::999999999999:role/" in r.request for r in outsiders)


# ---------------------------------------------------------------------------------------------
# The validator, one statement dropped or widened


def test_a_validator_role_without_write_evidence_cannot_write(shipped: Plans) -> None:
    (failure,) = _broken(shipped, "backup", _validator_policy(_drop("WriteEvidence")))
    assert (failure.kind, failure.source, failure.target) == ("evidence", VALIDATOR, REPORTS_BUCKET)
    assert failure.request.startswith(
        f"s3:PutObject by {VALIDATOR} on {REPORTS_BUCKET}/restore-tests/{BACKUP_ACCOUNT}/"
    )
    assert "must be allowed" in failure.reason
    assert (
        "statement EvidenceWriter0 of bucket policy" in failure.reason and "only through the account" in failure.reason
    )


def test_a_key_policy_without_the_evidence_writer_refuses_the_data_key(shipped: Plans) -> None:
    (failure,) = _broken(shipped, "backup", _without_statement("EvidenceWriter0", KEYS))
    assert failure.source == VALIDATOR and failure.request.startswith("kms:GenerateDataKey")
    assert "no statement of key policy of audit-reports-key admits" in failure.reason
    (failure,) = _broken(shipped, "backup", _validator_policy(_drop("EncryptEvidence")))
    assert failure.request.startswith("kms:GenerateDataKey") and "only through the account" in failure.reason


def test_a_validator_role_over_the_whole_bucket_may_write_outside_its_prefix(shipped: Plans) -> None:
    def whole_bucket(document: dict[str, Any]) -> None:
        _statement(document, "WriteEvidence")["Resource"] = f"{REPORTS_BUCKET}/*"

    failures = _broken(shipped, "backup", _validator_policy(whole_bucket))
    assert {r.request.split(" on ")[-1].split("/", 2)[1] for r in failures} == {"restore-tests", "audit-reports"}
    assert all(r.source == VALIDATOR and "must be refused" in r.reason for r in failures)
    assert all("allowed by the caller's IAM policies" in r.reason for r in failures)


def test_a_validator_role_that_may_delete_is_refused_by_the_deny_only_for_versions(shipped: Plans) -> None:
    def delete(document: dict[str, Any]) -> None:
        _statement(document, "WriteEvidence")["Action"] = ["s3:PutObject", "s3:DeleteObject*"]

    (failure,) = _broken(shipped, "backup", _validator_policy(delete))
    assert failure.request.startswith(f"s3:DeleteObject by {VALIDATOR}") and "must be refused" in failure.reason
    # Without the bucket's deny, deleting a version goes through too.
    edit = _without_statement("DenyEvidenceDeletionExceptBreakGlass", BUCKET_POLICY)
    edited = _edited(_edited(shipped[0], "backup", _validator_policy(delete)), "backup", edit)
    failures = broken(check_paths(edited, shipped[1]))
    assert sorted(r.request.split(" by ")[0] for r in failures) == ["s3:DeleteObject", "s3:DeleteObjectVersion"]


# ---------------------------------------------------------------------------------------------
# Restore tests in a workload account: its validator writes into the backup account's bucket


def test_a_workload_validator_writes_into_the_backup_accounts_bucket(workload_testing: Plans) -> None:
    results = check_paths(*workload_testing)
    assert not broken(results), [r.to_json() for r in broken(results)]
    paths = _by_request([r for r in results if r.kind == "evidence" and r.source == PROD_VALIDATOR])
    own = f"restore-tests/{PROD_ACCOUNT}/ca-central-1/2025/01/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0.json"
    assert len(paths) == 7 and all(r.stack == "prod" and r.verdict == "ok" for r in paths.values())
    write = paths[f"s3:PutObject {own}"]
    assert write.target == REPORTS_BUCKET  # the backup account's bucket, not prod's
    assert "EvidenceWriter3 of bucket policy" in write.reason and "WriteEvidence" in write.reason
    key = paths[f"kms:GenerateDataKey {own}"]
    assert key.target.startswith(f"arn:aws:kms:ca-central-1:{BACKUP_ACCOUNT}:key/")
    assert "EvidenceWriter3 of key policy of audit-reports-key" in key.reason
    refused = paths[f"s3:PutObject {own.replace(PROD_ACCOUNT, '999999999999')}"]
    assert f"no statement of bucket policy of pgf-backup-reports-{BACKUP_ACCOUNT} admits account" in refused.reason


@pytest.mark.parametrize(("types", "target"), [(BUCKET_POLICY, REPORTS_BUCKET), (KEYS, "arn:aws:kms:")])
def test_a_backup_account_without_the_workload_writer_refuses_its_evidence(
    workload_testing: Plans, types: tuple[str, ...], target: str
) -> None:
    """Across accounts the bucket (or key) policy must admit the role: the role's own policy is not enough."""
    (failure,) = _broken(workload_testing, "backup", _without_statement("EvidenceWriter3", types))
    assert (failure.stack, failure.source) == ("prod", PROD_VALIDATOR) and failure.target.startswith(target)
    assert f"/restore-tests/{PROD_ACCOUNT}/" in failure.request and "must be allowed" in failure.reason
    assert f"admits account {PROD_ACCOUNT} ({PROD_VALIDATOR})" in failure.reason


# ---------------------------------------------------------------------------------------------
# AWS Backup Audit Manager's delivery


def test_a_reports_bucket_without_the_audit_manager_statement_refuses_every_report(shipped: Plans) -> None:
    failures = _broken(shipped, "prod", _without_statement("BackupAuditManagerDeliversReports", BUCKET_POLICY))
    assert len(failures) == REPORT_PLANS
    assert all(r.target == PROD_REPORTS_BUCKET and r.request.startswith("s3:PutObject") for r in failures)
    assert all(r.source.startswith(f"arn:aws:backup:ca-central-1:{PROD_ACCOUNT}:report-plan:") for r in failures)
    # The service-linked role's own policy grants no s3:PutObject: without the statement nothing allows it.
    expected = f"must be allowed, but neither bucket policy of pgf-backup-reports-{PROD_ACCOUNT} nor the caller's IAM"
    assert all(r.reason.startswith(expected) for r in failures)


def test_a_reports_key_without_the_audit_manager_statement_refuses_the_data_keys(shipped: Plans) -> None:
    failures = _broken(shipped, "prod", _without_statement("BackupAuditManagerDeliversReports", KEYS))
    assert len(failures) == 2 * REPORT_PLANS
    assert {r.request.split(" by ")[0] for r in failures} == {"kms:GenerateDataKey", "kms:Decrypt"}
    generate = [r for r in failures if r.request.startswith("kms:GenerateDataKey")]
    assert all("no statement of key policy of audit-reports-key admits account" in r.reason for r in generate)
    # kms:Decrypt is still granted to the account (its readers), which delegates to IAM: the role has no such policy.
    decrypt = [r for r in failures if r.request.startswith("kms:Decrypt")]
    assert all("ReadThroughS3ByTheAccount" in r.reason and "only through the account" in r.reason for r in decrypt)


def test_a_grant_to_the_account_does_not_reach_the_service_linked_role(shipped: Plans) -> None:
    """The role's own policy grants no S3 write: a bucket statement naming the account root leaves it refused."""

    def to_account(document: dict[str, Any]) -> None:
        _statement(document, "BackupAuditManagerDeliversReports")["Principal"] = {
            "AWS": f"arn:aws:iam::{PROD_ACCOUNT}:root"
        }

    edit = _edit_document(BUCKET_POLICY[0], "policy", to_account, bucket=f"pgf-backup-reports-{PROD_ACCOUNT}")
    failures = _broken(shipped, "prod", edit)
    assert len(failures) == REPORT_PLANS and all("only through the account" in r.reason for r in failures)


def test_a_reports_bucket_open_to_any_principal_admits_another_accounts_audit_manager(shipped: Plans) -> None:
    def anyone(document: dict[str, Any]) -> None:
        _statement(document, "BackupAuditManagerDeliversReports")["Principal"] = "*"

    edit = _edit_document(BUCKET_POLICY[0], "policy", anyone, bucket=f"pgf-backup-reports-{PROD_ACCOUNT}")
    (failure,) = _broken(shipped, "prod", edit)
    assert failure.source == "AWS Backup Audit Manager of account 999999999999"
    assert failure.target == PROD_REPORTS_BUCKET and "must be refused" in failure.reason


# ---------------------------------------------------------------------------------------------
# The OAM sink policy


def test_a_sink_policy_without_its_statement_refuses_every_link(shipped: Plans) -> None:
    failures = _broken(shipped, "backup", _without_statement("WorkloadAccountsShareMetrics", SINK_POLICY))
    assert sorted(r.stack for r in failures) == sorted([*WORKLOADS, *WORKLOADS])  # one link per region
    assert all(r.kind == "observability" and r.request.endswith("sharing AWS::CloudWatch::Metric") for r in failures)
    assert all("must be allowed" in r.reason and "no statement of sink policy of" in r.reason for r in failures)


def test_a_sink_policy_without_the_resource_type_condition_admits_log_groups(shipped: Plans) -> None:
    def no_condition(document: dict[str, Any]) -> None:
        _statement(document, "WorkloadAccountsShareMetrics").pop("Condition")

    failures = _broken(shipped, "backup", _edit_document("aws:oam/sinkPolicy:SinkPolicy", "policy", no_condition))
    assert len(failures) == 2 * len(WORKLOADS)
    assert all(r.request.endswith("AWS::Logs::LogGroup") and "must be refused" in r.reason for r in failures)
    assert all("WorkloadAccountsShareMetrics" in r.reason for r in failures)


def test_a_sink_policy_open_to_every_account_admits_an_outsider(shipped: Plans) -> None:
    def anyone(document: dict[str, Any]) -> None:
        _statement(document, "WorkloadAccountsShareMetrics")["Principal"] = {"AWS": "*"}

    failures = _broken(shipped, "backup", _edit_document("aws:oam/sinkPolicy:SinkPolicy", "policy", anyone))
    assert [(r.stack, r.source) for r in failures] == [("backup", "account 999999999999")] * 2
    assert all("must be refused" in r.reason for r in failures)


def test_a_link_to_a_sink_no_stack_creates_is_broken(shipped: Plans) -> None:
    def elsewhere(resource: dict[str, Any]) -> None:
        if resource["type"] == "aws:oam/link:Link":
            resource["inputs"]["sinkIdentifier"] = f"arn:aws:oam:ca-central-1:{BACKUP_ACCOUNT}:sink/missing"

    failures = _broken(shipped, "lab", elsewhere)
    assert len(failures) == 2 and all(r.target.endswith(":sink/missing") for r in failures)
    assert all("no stack of the plan creates the sink" in r.reason for r in failures)


def test_the_json_shape_of_a_new_path(shipped: Plans) -> None:
    path = _paths(shipped, "observability")[0].to_json()
    assert set(path) == {"kind", "stack", "from", "to", "request", "verdict", "reason"}
    assert json.loads(json.dumps(path))["kind"] == "observability"
