"""Path checks over the shipped stacks, in both scheduling modes, and over plans with one fix reverted."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pgf_backup.automation.cli import main
from pgf_backup.automation.offline import plan_stack
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import StackConfig
from pgf_backup.paths.checks import KINDS, PathResult, broken, check_paths
from pgf_backup.project import Project
from tests.conftest import organization_copy, utc_copy

STACKS = ("backup", "lab", "dev", "prod")
BACKUP_ACCOUNT = "100000000010"
PROD_ACCOUNT = "400000000040"


@dataclass
class Planned:
    """A planned stack, as the path checks read it."""

    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, Any] = field(default_factory=dict)


def _plan_all(project: Project) -> tuple[list[Planned], dict[str, StackConfig]]:
    backup = plan_stack(project, "backup")
    refs = {"organization/pgf-backup/backup": backup.outputs}
    plans = [backup] + [plan_stack(project, stack, refs) for stack in STACKS[1:]]
    return (
        [Planned(p.stack, p.resources, p.outputs) for p in plans],
        {stack: project.load_config(stack) for stack in STACKS},
    )


@pytest.fixture(scope="module")
def shipped(project: Project) -> tuple[list[Planned], dict[str, StackConfig]]:
    """The shipped stacks (account mode), planned once."""
    return _plan_all(project)


@pytest.fixture(scope="module")
def organization(project: Project, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Planned], dict[str, Any]]:
    """The shipped stacks switched to organization mode (schedules in UTC), planned once."""
    utc = utc_copy(project, tmp_path_factory.mktemp("utc-paths"))
    return _plan_all(organization_copy(utc, tmp_path_factory.mktemp("org-paths")))


def _run(plans: list[Planned], configs: dict[str, StackConfig]) -> list[PathResult]:
    return check_paths(plans, configs)


def _edited(plans: list[Planned], stack: str, edit: Callable[[dict[str, Any]], None]) -> list[Planned]:
    """A deep copy of the plans where `edit` changes each resource of one stack."""
    changed = copy.deepcopy(plans)
    for plan in changed:
        if plan.stack == stack:
            for resource in plan.resources:
                edit(resource)
    return changed


def _without_statement(
    sid: str, types: tuple[str, ...], field_name: str = "policy"
) -> Callable[[dict[str, Any]], None]:
    def edit(resource: dict[str, Any]) -> None:
        if resource["type"] in types and field_name in resource["inputs"]:
            document = json.loads(resource["inputs"][field_name])
            document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]
            resource["inputs"][field_name] = json.dumps(document)

    return edit


KEYS = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")


# ---------------------------------------------------------------------------------------------
# The shipped stacks


@pytest.mark.parametrize("mode", ["account", "organization"])
def test_every_kind_of_path_for_every_workload_stack_and_none_broken(
    mode: str, shipped: Any, organization: Any
) -> None:
    plans, configs = shipped if mode == "account" else organization
    results = _run(plans, configs)
    assert not broken(results), [r.to_json() for r in broken(results)]
    for stack in STACKS[1:]:
        kinds = {r.kind for r in results if r.stack == stack and r.verdict == "ok"}
        assert kinds == set(KINDS), (stack, kinds)
    assert {r.kind for r in results if r.stack == "backup"} >= {"guard", "notification"}
    first = results[0].to_json()
    assert set(first) == {"kind", "stack", "from", "to", "request", "verdict", "reason"}


def test_cross_account_copies_are_evaluated_on_both_sides(shipped: Any) -> None:
    results = _run(*shipped)
    central = f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-prod"
    into = [r for r in results if r.stack == "prod" and r.kind == "copy" and r.target == central]
    requests = {r.request.split(" by ")[0] for r in into}
    assert {"backup:CopyIntoBackupVault", "kms:Decrypt", "kms:CreateGrant", "daily copy: lifecycle"} <= requests
    assert all(r.verdict == "ok" for r in into)


def test_rds_snapshot_keys_are_unproven_not_ok(shipped: Any) -> None:
    results = _run(*shipped)
    database = [r for r in results if r.source.startswith("database pgf-audit")]
    assert [r.verdict for r in database] == ["unproven"]
    assert BACKUP_ACCOUNT in database[0].reason and "required_key_policy_statement" in database[0].reason


# ---------------------------------------------------------------------------------------------
# One fix reverted: the path is broken, and the message names both ends and the statement


def test_reverting_the_source_key_fix_breaks_the_copies(shipped: Any) -> None:
    plans, configs = shipped
    edited = _edited(plans, "prod", _without_statement("CrossAccountCopiesByDestinationAccounts", KEYS))
    failures = [r for r in broken(_run(edited, configs)) if r.kind == "copy"]
    # Every vault of prod loses the statement: its vaults per criticality (files-raw, files-processed) too.
    assert {f.source.rsplit(":", 1)[-1] for f in failures} == {"pgf-prod", "pgf-files-raw", "pgf-files-processed"}
    failure = next(f for f in failures if f.source.endswith(":backup-vault:pgf-prod"))
    assert failure.stack == "prod"
    assert failure.target.startswith(f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:")
    assert "key policy of arn:aws:kms:ca-central-1:400000000040:key/" in failure.reason
    assert BACKUP_ACCOUNT in failure.reason


def test_reverting_the_restore_fix_breaks_the_copy_back(shipped: Any) -> None:
    plans, configs = shipped
    edited = _edited(
        plans, "prod", _without_statement("CopyIntoVaultFromAccounts", ("aws:backup/vaultPolicy:VaultPolicy",))
    )
    every = [r for r in broken(_run(edited, configs)) if r.kind == "restore"]
    assert len(every) == 3 * 2  # each of prod's three vaults, in the primary and the copy region
    failures = sorted((r for r in every if r.target.endswith(":backup-vault:pgf-prod")), key=lambda r: r.source)
    assert len(failures) == 2
    assert failures[0].source == f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-prod"
    assert failures[0].target == f"arn:aws:backup:ca-central-1:{PROD_ACCOUNT}:backup-vault:pgf-prod"
    assert "vault access policy of pgf-prod" in failures[0].reason


def test_restore_back_needs_the_central_key_to_admit_the_workload(shipped: Any) -> None:
    plans, configs = shipped
    edited = _edited(plans, "backup", _without_statement("CrossAccountCopiesByDestinationAccounts", KEYS))
    failures = [r for r in broken(_run(edited, configs)) if r.kind == "restore"]
    assert {r.stack for r in failures} == {"lab", "dev", "prod"}
    assert all("key policy of" in r.reason for r in failures)


def test_restore_back_needs_a_role_in_the_backup_account(shipped: Any) -> None:
    plans, configs = shipped
    edited = copy.deepcopy(plans)
    edited[0].resources = [r for r in edited[0].resources if r["type"] != "aws:iam/role:Role"]
    failures = [r for r in broken(_run(edited, configs)) if r.kind == "restore"]
    assert failures and all("no role pgf-backup-service-role" in r.reason for r in failures)


OLD_DENY = {
    "Sid": "DenyNonKmsEncryption",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::pgf-documents-prod/*",
    "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
}


def test_reverting_the_bucket_policy_fix_refuses_the_applications_uploads(shipped: Any) -> None:
    plans, configs = shipped

    def revert(resource: dict[str, Any]) -> None:
        if (
            resource["type"] == "aws:s3/bucketPolicy:BucketPolicy"
            and resource["inputs"]["bucket"] == "pgf-documents-prod"
        ):
            document = json.loads(resource["inputs"]["policy"])
            document["Statement"].append(OLD_DENY)
            resource["inputs"]["policy"] = json.dumps(document)

    (failure,) = broken(_run(_edited(plans, "prod", revert), configs))
    assert failure.kind == "data"
    assert (
        failure.source == "arn:aws:iam::400000000040:role/pgf-app"
        and failure.target == "arn:aws:s3:::pgf-documents-prod"
    )
    assert "must be allowed" in failure.reason and "DenyNonKmsEncryption" in failure.reason


def test_an_rds_instance_copied_to_the_air_gapped_vault_is_broken(shipped: Any) -> None:
    plans, configs = shipped
    instance = f"arn:aws:rds:ca-central-1:{PROD_ACCOUNT}:db:pgf-audit"

    def list_in_main_plan(resource: dict[str, Any]) -> None:
        if resource["type"] == "aws:backup/selection:Selection" and resource["inputs"]["name"] == "pgf-prod-listed":
            resource["inputs"]["resources"] = [*resource["inputs"]["resources"], instance]

    failures = broken(_run(_edited(plans, "prod", list_in_main_plan), configs))
    assert failures and all(r.target.endswith(":backup-vault:pgf-prod-air-gapped") for r in failures)
    assert instance in failures[0].reason and "air-gapped" in failures[0].reason


def test_a_copy_outside_the_destination_lock_or_into_no_vault_is_broken(shipped: Any) -> None:
    plans, configs = shipped

    def retarget(resource: dict[str, Any]) -> None:
        if resource["type"] == "aws:backup/plan:Plan" and resource["inputs"]["name"] == "pgf-lab":
            actions = resource["inputs"]["rules"][0]["copyActions"]
            actions[0]["lifecycle"]["deleteAfter"] = 400
            actions[1]["destinationVaultArn"] = "arn:aws:backup:ca-west-1:200000000020:backup-vault:missing"

    failures = broken(_run(_edited(plans, "lab", retarget), configs))
    reasons = " | ".join(r.reason for r in failures)
    assert "outside the lock of pgf-lab (7-14 days)" in reasons
    assert "no stack of the plan creates the destination vault" in reasons


def test_guards_refuse_the_administrator_and_admit_break_glass(shipped: Any) -> None:
    results = _run(*shipped)
    guards = [r for r in results if r.kind == "guard" and r.stack == "prod"]
    assert {r.source for r in guards} == {"role Administrator", "role pgf-backup-break-glass"}
    rotation = [r for r in guards if "kms:DisableKeyRotation" in r.request]
    assert rotation and all(r.verdict == "ok" for r in rotation)
    plans, configs = shipped
    edited = _edited(plans, "prod", _without_statement("DenyKeyDeletionExceptBreakGlass", KEYS))
    failures = broken(_run(edited, configs))
    assert failures and all(r.kind == "guard" and r.source == "role Administrator" for r in failures)
    assert "must be refused" in failures[0].reason


# ---------------------------------------------------------------------------------------------
# Through the command line


def test_plan_exits_1_and_names_a_broken_path(project: Project, tmp_path: Path) -> None:
    """A workload stack naming a service role the backup account lacks: its restore copies cannot run."""
    for name in ("Pulumi.yaml", "__main__.py", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        shutil.copy(project.root / name, tmp_path / name)
    shutil.copytree(project.root / "policy", tmp_path / "policy", ignore=shutil.ignore_patterns("__pycache__"))
    prod = tmp_path / "Pulumi.prod.yaml"
    # The prod stack file names its own roles (replacing Pulumi.yaml's `iam` whole).
    prod.write_text(
        prod.read_text().replace(
            "config:\n",
            "config:\n  pgf-backup:iam:\n    deploy_role: pgf-backup-deploy\n"
            "    break_glass_role: pgf-backup-break-glass\n    service_role: pgf-prod-backup\n",
            1,
        )
    )
    out, err = _Capture(), _Capture()
    status = main(
        ["--project-dir", str(tmp_path), "plan", "--verbose", "--stack", "prod", "--json", str(tmp_path / "plan.json")],
        out,
        err,
    )
    assert status == ExitStatus.FAILED
    assert "== paths:" in out.text and "restore: BROKEN" in out.text
    assert (
        f"broken restore path in stack prod: arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-prod"
        in err.text
    )
    assert "no role pgf-prod-backup" in err.text
    document = json.loads((tmp_path / "plan.json").read_text())
    assert any(p["verdict"] == "broken" and p["kind"] == "restore" for p in document["paths"])


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_a_deprecated_vault_event_in_a_stack_file_exits_2_naming_the_key(project: Project, tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "__main__.py", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        shutil.copy(project.root / name, tmp_path / name)
    prod = tmp_path / "Pulumi.prod.yaml"
    prod.write_text(
        prod.read_text().replace(
            "      tier: prod\n", "      tier: prod\n      notify_events: [BACKUP_JOB_FAILED]\n", 1
        )
    )
    out, err = _Capture(), _Capture()
    status = main(["--project-dir", str(tmp_path), "plan", "--all"], out, err)
    assert status == ExitStatus.USAGE
    assert "pgf-backup:vaults.prod.notify_events.0: 'BACKUP_JOB_FAILED' is a deprecated vault event" in err.text
    assert "COPY_JOB_FAILED" in err.text and "Traceback" not in err.text


REVERTS = {
    # Fix 1: the workload vault keys admit their copy destinations.
    "source key": (
        "backup_vault.py",
        "        statements += copy_out_statements(args.partition, args.copy_out_account_ids)\n",
        "",
        "broken copy path in stack lab",
    ),
    # Fix 5: the bucket policy denies only uploads that ask for another encryption.
    "bucket policy": (
        "s3_protection.py",
        '"Condition": {"Null": {sse: "false"}, "StringNotEquals": {sse: "aws:kms"}},',
        '"Condition": {"StringNotEqualsIfExists": {sse: "aws:kms"}},',
        "broken data path in stack lab: arn:aws:iam::200000000020:role/pgf-app -> arn:aws:s3:::pgf-documents-lab",
    ),
}


@pytest.mark.parametrize("fix", sorted(REVERTS))
def test_plan_all_exits_1_when_a_fix_is_reverted_in_a_scratch_copy(project: Project, tmp_path: Path, fix: str) -> None:
    """The program of a scratch copy with one fix undone: `plan --all` names the broken path."""
    module, old, new, expected = REVERTS[fix]
    for name in ("Pulumi.yaml", "__main__.py", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        shutil.copy(project.root / name, tmp_path / name)
    for folder in ("components", "policy"):
        shutil.copytree(project.root / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    source = tmp_path / "components" / module
    text = source.read_text()
    assert old in text
    source.write_text(text.replace(old, new))
    out, err = _Capture(), _Capture()
    status = main(["--project-dir", str(tmp_path), "plan", "--all"], out, err)
    assert status == ExitStatus.FAILED
    assert expected in err.text
    assert "BROKEN" in out.text


# ---------------------------------------------------------------------------------------------
# The export functions: their alarms, schedules, roles and writes

LAB_ACCOUNT = "200000000020"
EXPORT_BUCKET = f"arn:aws:s3:::pgf-backup-exports-{PROD_ACCOUNT}"
CATALOG_ROLE = f"arn:aws:iam::{PROD_ACCOUNT}:role/pgf-prod-catalog-export-function"
QUICKSIGHT_ROLE = f"arn:aws:iam::{PROD_ACCOUNT}:role/pgf-prod-quicksight-export-function"
ALERT_TOPIC = f"arn:aws:sns:ca-central-1:{PROD_ACCOUNT}:pgf-prod-backup-job-alerts"
# BackupAlarms of a shipped workload stack (two regions): five failure counters per vault and region, and one
# freshness alarm in the primary region (where the backups are made). lab and dev have one vault; prod three (its
# vaults per criticality, files-raw and files-processed).
PRIMARY_BACKUP_ALARMS = 5 + 1
BACKUP_ALARMS = PRIMARY_BACKUP_ALARMS + 5
PROD_VAULTS = 3
PROD_PRIMARY_BACKUP_ALARMS = 5 * PROD_VAULTS + 1
PROD_BACKUP_ALARMS = PROD_PRIMARY_BACKUP_ALARMS + 5 * PROD_VAULTS


def _edit_document(
    resource_type: str, field_name: str, change: Callable[[dict[str, Any]], None], **inputs: str
) -> Callable[[dict[str, Any]], None]:
    """Change the JSON document `field_name` of the resources of one type whose inputs hold `inputs`."""

    def edit(resource: dict[str, Any]) -> None:
        if resource["type"] == resource_type and all(resource["inputs"].get(k) == v for k, v in inputs.items()):
            document = json.loads(resource["inputs"][field_name])
            change(document)
            resource["inputs"][field_name] = json.dumps(document)

    return edit


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in document["Statement"] if s.get("Sid") == sid)


def test_every_alarm_publishes_to_the_alert_topic_and_uses_its_key(shipped: Any) -> None:
    results = _run(*shipped)
    alarms = [r for r in results if r.source.startswith("cloudwatch.amazonaws.com for ")]
    # Three requests per alarm. lab and dev: the catalog export's two alarms; prod: the catalog and QuickSight
    # exports' four; and in each workload stack BACKUP_ALARMS (BackupAlarms) in its two regions.
    counts = {s: sum(r.stack == s for r in alarms) for s in STACKS[1:]}
    assert counts == {
        "lab": 3 * (2 + BACKUP_ALARMS),
        "dev": 3 * (2 + BACKUP_ALARMS),
        "prod": 3 * (4 + PROD_BACKUP_ALARMS),
    }
    assert all(r.verdict == "ok" and r.kind == "notification" for r in alarms)
    errors = [r for r in alarms if r.source.endswith(f":{PROD_ACCOUNT}:alarm:pgf-prod-quicksight-export-errors")]
    assert sorted(r.request.split(" by ")[0] for r in errors) == ["kms:Decrypt", "kms:GenerateDataKey", "sns:Publish"]
    publish = next(r for r in errors if r.request.startswith("sns:Publish"))
    assert publish.target == ALERT_TOPIC and "CloudWatchAlarmsPublish" in publish.reason


def test_a_topic_policy_without_the_cloudwatch_statement_breaks_the_alarms(shipped: Any) -> None:
    plans, configs = shipped
    edited = _edited(plans, "prod", _without_statement("CloudWatchAlarmsPublish", ("aws:sns/topicPolicy:TopicPolicy",)))
    failures = broken(_run(edited, configs))
    assert len(failures) == 4 + PROD_BACKUP_ALARMS  # one publish per alarm; the key still admits CloudWatch
    assert all(
        r.source.startswith("cloudwatch.amazonaws.com for ") and r.request.startswith("sns:Publish") for r in failures
    )
    copy_region_topic = ALERT_TOPIC.replace("ca-central-1", "ca-west-1")
    assert {r.target for r in failures} == {ALERT_TOPIC, copy_region_topic}
    assert all("must be allowed" in r.reason for r in failures)
    home = next(r for r in failures if r.target == ALERT_TOPIC)  # the plan lists its resources in no fixed order
    assert f"no statement of topic policy of {ALERT_TOPIC} admits service cloudwatch.amazonaws.com" in home.reason


def test_an_alarm_of_another_region_is_not_admitted_by_the_topic(shipped: Any) -> None:
    """The topic admits this region's alarms only (ArnLike on aws:SourceArn): the alarm's ARN is in the request."""
    plans, configs = shipped

    def other_region(document: dict[str, Any]) -> None:
        statement = _statement(document, "CloudWatchAlarmsPublish")
        statement["Condition"] = {"ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:ca-west-1:{PROD_ACCOUNT}:alarm:*"}}

    edit = _edit_document("aws:sns/topicPolicy:TopicPolicy", "policy", other_region, arn=ALERT_TOPIC)
    failures = broken(_run(_edited(plans, "prod", edit), configs))
    # The primary region's topic: the export alarms and that region's backup alarms.
    assert len(failures) == 4 + PROD_PRIMARY_BACKUP_ALARMS
    assert all(r.request.startswith("sns:Publish") for r in failures)


def test_a_key_policy_without_the_cloudwatch_statement_breaks_the_alarms(shipped: Any) -> None:
    plans, configs = shipped
    edited = _edited(plans, "prod", _without_statement("CloudWatchAlarmsEncrypt", KEYS))
    failures = broken(_run(edited, configs))
    assert len(failures) == 2 * (4 + PROD_BACKUP_ALARMS)  # kms:GenerateDataKey and kms:Decrypt per alarm
    assert {r.request.split(" by ")[0] for r in failures} == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert all(r.source.startswith("cloudwatch.amazonaws.com for ") and "key policy of" in r.reason for r in failures)


def test_the_scheduler_assumes_its_roles_from_this_accounts_group_only(shipped: Any) -> None:
    results = _run(*shipped)
    scheduler = [r for r in results if r.source.startswith("scheduler.amazonaws.com")]
    assert {s: sum(r.stack == s for r in scheduler) for s in STACKS[1:]} == {"lab": 2, "dev": 2, "prod": 4}
    assert all(r.verdict == "ok" and r.kind == "notification" for r in scheduler)
    role = f"arn:aws:iam::{LAB_ACCOUNT}:role/pgf-lab-catalog-export-scheduler"
    lab = {r.source: r.reason for r in scheduler if r.target == role}
    own = f"scheduler.amazonaws.com for arn:aws:scheduler:ca-central-1:{LAB_ACCOUNT}:schedule-group/default"
    other = "scheduler.amazonaws.com for arn:aws:scheduler:ca-central-1:999999999999:schedule-group/default"
    assert lab[own].startswith("allowed by statement")
    assert lab[other].startswith("no statement of trust policy")


def _scheduler_trust(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edit(resource: dict[str, Any]) -> None:
        if resource["type"] == "aws:iam/role:Role" and resource["inputs"]["name"].endswith("-export-scheduler"):
            trust = json.loads(resource["inputs"]["assumeRolePolicy"])
            change(trust["Statement"][0])
            resource["inputs"]["assumeRolePolicy"] = json.dumps(trust)

    return edit


def test_a_scheduler_trust_naming_another_group_is_broken(shipped: Any) -> None:
    plans, configs = shipped

    def wrong_group(statement: dict[str, Any]) -> None:
        arn = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        statement["Condition"]["ArnEquals"]["aws:SourceArn"] = arn.replace(
            "schedule-group/default", "schedule-group/pgf"
        )

    failures = broken(_run(_edited(plans, "prod", _scheduler_trust(wrong_group)), configs))
    assert {r.target for r in failures} == {
        f"arn:aws:iam::{PROD_ACCOUNT}:role/pgf-prod-catalog-export-scheduler",
        f"arn:aws:iam::{PROD_ACCOUNT}:role/pgf-prod-quicksight-export-scheduler",
    }
    assert all(r.source.endswith(f":{PROD_ACCOUNT}:schedule-group/default") for r in failures)
    assert all("must be allowed" in r.reason and "admits service scheduler.amazonaws.com" in r.reason for r in failures)


def test_a_scheduler_trust_without_conditions_admits_other_accounts_and_is_broken(shipped: Any) -> None:
    plans, configs = shipped
    failures = broken(_run(_edited(plans, "lab", _scheduler_trust(lambda s: s.pop("Condition"))), configs))
    assert [r.source for r in failures] == [
        "scheduler.amazonaws.com for arn:aws:scheduler:ca-central-1:999999999999:schedule-group/default"
    ]
    assert "must be refused" in failures[0].reason


def test_lambda_assumes_each_function_role(shipped: Any) -> None:
    results = _run(*shipped)
    assumed = {(r.stack, r.target) for r in results if r.source == "lambda.amazonaws.com" and r.verdict == "ok"}
    assert {(s, t) for s, t in assumed if s == "prod"} == {("prod", CATALOG_ROLE), ("prod", QUICKSIGHT_ROLE)}
    # The export functions in each workload stack; the restore validator in the backup account.
    assert {s for s, _ in assumed} == {"backup", "lab", "dev", "prod"}
    plans, configs = shipped

    def other_service(resource: dict[str, Any]) -> None:
        if resource["type"] == "aws:iam/role:Role" and resource["inputs"]["name"] == "pgf-prod-catalog-export-function":
            trust = json.loads(resource["inputs"]["assumeRolePolicy"])
            trust["Statement"][0]["Principal"] = {"Service": "edgelambda.amazonaws.com"}
            resource["inputs"]["assumeRolePolicy"] = json.dumps(trust)

    (failure,) = broken(_run(_edited(plans, "prod", other_service), configs))
    assert (failure.source, failure.target) == ("lambda.amazonaws.com", CATALOG_ROLE)


def test_a_trust_waiting_for_aws_source_account_breaks_the_backup_and_lambda_roles(shipped: Any) -> None:
    """Neither AWS Backup nor Lambda documents sending aws:SourceAccount when assuming a role; the scheduler does."""
    plans, configs = shipped

    def condition(resource: dict[str, Any]) -> None:
        if resource["type"] == "aws:iam/role:Role":
            trust = json.loads(resource["inputs"]["assumeRolePolicy"])
            trust["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceAccount": PROD_ACCOUNT}}
            resource["inputs"]["assumeRolePolicy"] = json.dumps(trust)

    failures = broken(_run(_edited(plans, "prod", condition), configs))
    assert sorted((r.kind, r.source) for r in failures) == [
        ("notification", "backup.amazonaws.com"),
        ("notification", "lambda.amazonaws.com"),
        ("notification", "lambda.amazonaws.com"),
    ]


def _export_paths(results: list[PathResult], role: str) -> dict[str, PathResult]:
    """The data paths of one export role, by a short name of the request."""
    paths: dict[str, PathResult] = {}
    for r in results:
        if r.kind != "data" or r.source != role:
            continue
        action, _, resource = r.request.partition(" on ")
        action = action.split(" by ")[0]
        if action.startswith("kms:"):
            paths[action] = r
        else:
            prefix = resource.split("/", 1)[1].split("/", 1)[0]
            plain = "plain" if "DenyInsecureTransport" in r.reason else "tls"
            paths[f"{action} {prefix} {plain}"] = r
    return paths


def test_each_export_writes_under_its_own_prefix_only_over_tls(shipped: Any) -> None:
    results = _run(*shipped)
    catalog = _export_paths(results, CATALOG_ROLE)
    assert set(catalog) == {
        "s3:PutObject catalog tls",
        "s3:PutObject quicksight tls",
        "s3:PutObject catalog plain",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    assert all(r.verdict == "ok" and r.target.startswith(("arn:aws:s3:::", "arn:aws:kms:")) for r in catalog.values())
    assert catalog["s3:PutObject catalog tls"].target == EXPORT_BUCKET
    assert (
        "allowed by statement WriteExports of inline policy least-privilege"
        in catalog["s3:PutObject catalog tls"].reason
    )
    assert "no statement of the inline policies" in catalog["s3:PutObject quicksight tls"].reason
    assert "UseThroughS3AndAwsBackup" in catalog["kms:GenerateDataKey"].reason
    assert "EncryptExports" in catalog["kms:GenerateDataKey"].reason
    quicksight = _export_paths(results, QUICKSIGHT_ROLE)
    assert {"s3:PutObject quicksight tls", "s3:PutObject catalog tls"} <= set(quicksight)
    assert all(r.verdict == "ok" for r in quicksight.values())
    lab = _export_paths(results, f"arn:aws:iam::{LAB_ACCOUNT}:role/pgf-lab-catalog-export-function")
    assert len(lab) == 5 and all(r.verdict == "ok" for r in lab.values())
    outsiders = [r for r in results if r.target == EXPORT_BUCKET and r.source == "account 999999999999"]
    assert [r.verdict for r in outsiders] == ["ok"]


def _catalog_role_policy(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return _edit_document("aws:iam/rolePolicy:RolePolicy", "policy", change, role="pgf-prod-catalog-export-function")


def test_a_role_policy_missing_the_prefix_breaks_the_export(shipped: Any) -> None:
    plans, configs = shipped

    def drop_writes(document: dict[str, Any]) -> None:
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "WriteExports"]

    (failure,) = broken(_run(_edited(plans, "prod", _catalog_role_policy(drop_writes)), configs))
    assert (failure.kind, failure.source, failure.target) == ("data", CATALOG_ROLE, EXPORT_BUCKET)
    assert "/catalog/" in failure.request and "must be allowed" in failure.reason
    assert "no statement of the inline policies of" in failure.reason


def test_a_role_policy_over_the_whole_bucket_breaks_the_other_exports_prefix(shipped: Any) -> None:
    plans, configs = shipped

    def whole_bucket(document: dict[str, Any]) -> None:
        _statement(document, "WriteExports")["Resource"] = f"{EXPORT_BUCKET}/*"

    (failure,) = broken(_run(_edited(plans, "prod", _catalog_role_policy(whole_bucket)), configs))
    assert failure.source == CATALOG_ROLE and "/quicksight/" in failure.request
    assert "must be refused" in failure.reason and "WriteExports" in failure.reason


def test_an_identity_deny_refuses_the_export(shipped: Any) -> None:
    plans, configs = shipped

    def deny(document: dict[str, Any]) -> None:
        document["Statement"].append(
            {"Sid": "NoWrites", "Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{EXPORT_BUCKET}/*"}
        )

    (failure,) = broken(_run(_edited(plans, "prod", _catalog_role_policy(deny)), configs))
    assert failure.source == CATALOG_ROLE and "/catalog/" in failure.request
    assert "denied by statement NoWrites of inline policy least-privilege" in failure.reason


def test_the_export_key_needs_the_key_policy_and_the_role_policy(shipped: Any) -> None:
    plans, configs = shipped

    def no_encrypt(document: dict[str, Any]) -> None:
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "EncryptExports"]

    failures = broken(_run(_edited(plans, "prod", _catalog_role_policy(no_encrypt)), configs))
    assert sorted(r.request.split(" by ")[0] for r in failures) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert all("only through the account, which delegates to IAM policies" in r.reason for r in failures)

    def without_s3(resource: dict[str, Any]) -> None:
        if resource["type"] == "aws:kms/key:Key" and resource["name"] == "exports-protection-key":
            document = json.loads(resource["inputs"]["policy"])
            _statement(document, "UseThroughS3AndAwsBackup")["Condition"]["StringEquals"]["kms:ViaService"] = [
                "backup.ca-central-1.amazonaws.com"
            ]
            resource["inputs"]["policy"] = json.dumps(document)

    failures = broken(_run(_edited(plans, "prod", without_s3), configs))
    assert {r.source for r in failures} == {CATALOG_ROLE, QUICKSIGHT_ROLE}
    assert all(r.request.startswith("kms:") and "no statement of key policy" in r.reason for r in failures)


def test_an_export_naming_another_key_is_refused_by_the_bucket(shipped: Any) -> None:
    """The SSE headers the exporter sends come from its environment: another key is denied by the bucket policy."""
    plans, configs = shipped
    other_key = f"arn:aws:kms:ca-central-1:{PROD_ACCOUNT}:key/00000000-0000-0000-0000-000000000000"

    def other(resource: dict[str, Any]) -> None:
        if (
            resource["type"] == "aws:lambda/function:Function"
            and resource["inputs"]["name"] == "pgf-prod-catalog-export"
        ):
            resource["inputs"]["environment"]["variables"]["EXPORT_KMS_KEY_ARN"] = other_key

    results = _run(_edited(plans, "prod", other), configs)
    (failure,) = broken(results)
    assert failure.source == CATALOG_ROLE and "denied by statement DenyWrongKmsKey" in failure.reason
    unproven = [r for r in results if r.source == CATALOG_ROLE and r.verdict == "unproven"]
    assert [r.target for r in unproven] == [other_key]
