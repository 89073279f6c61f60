"""The verify tests' world: the prod stack's account in moto (S3, RDS, DynamoDB, EFS, KMS, tagging), and AWS
Backup answered by botocore's Stubber (moto has no selections, protected resources, recovery points or copy jobs).

`World` builds a fully covered account; each test then opens one gap and checks that verify names it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pgf_backup.ops import verify
from pgf_backup.project import Project

PRIMARY, COPY = "ca-central-1", "ca-west-1"
ACCOUNT, BACKUP_ACCOUNT = "400000000040", "100000000010"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
GOOD_TAGS = {
    "backup:enabled": "true",
    "backup:tier": "prod",
    "data:classification": "confidential",
    "application": "pgf",
}


def aws_client(service: str, region: str = PRIMARY) -> Any:
    """A boto3 client (moto answers), untyped: the tests pass it plain dicts."""
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """Tags as S3, RDS, DynamoDB and EFS take them."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def moto_as(monkeypatch: pytest.MonkeyPatch, account: str) -> Iterator[None]:
    """moto, with `account` as the caller's (fake credentials, the primary region)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": PRIMARY,
        "MOTO_ACCOUNT_ID": account,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, with the prod stack's account as the caller's."""
    yield from moto_as(monkeypatch, ACCOUNT)


@pytest.fixture
def expectations(project: Project) -> verify.Expectations:
    """What the shipped prod stack expects (copies to the backup account, ca-west-1 and the air-gapped vault)."""
    cfg = project.load_config("prod")
    from pgf_backup.config import WorkloadStack

    assert isinstance(cfg, WorkloadStack)
    return verify.Expectations.of("prod", cfg, project.backup_config())


def _selection(
    name: str, resources: list[str], conditions: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "SelectionName": name,
        "IamRoleArn": f"arn:aws:iam::{ACCOUNT}:role/pgf-backup-service-role",
        "Resources": resources,
        **extra,
    }
    if conditions:
        body["Conditions"] = {
            "StringEquals": [
                {"ConditionKey": f"aws:ResourceTag/{k}", "ConditionValue": v} for k, v in conditions.items()
            ]
        }
    return body


def _kind_and_name(arn: str) -> tuple[str, str]:
    """What discovery calls a resource of this ARN, and its name (an EFS file system's is its Name tag: unused)."""
    if ":s3:::" in arn:
        return "s3-bucket", arn.split(":::", 1)[1]
    if ":rds:" in arn:
        return ("rds-cluster" if ":cluster:" in arn else "rds-instance"), arn.rsplit(":", 1)[1]
    if ":dynamodb:" in arn:
        return "dynamodb-table", arn.rsplit("/", 1)[1]
    return "efs-file-system", arn.rsplit("/", 1)[1]


def configured_tags(exp: verify.Expectations, arn: str) -> dict[str, str]:
    """The scheme's tags, and the routing tags the config says a resource it lists by ARN carries."""
    listed = exp.listed.get(_kind_and_name(arn))
    return {**GOOD_TAGS, **(listed.tags if listed else {})}


@dataclass
class World:
    """A fully covered prod account; tests change its fields (or moto's resources) to open one gap.

    Each resource's recovery points are in the vault its routing names and its copies at its plan's destinations
    (`Expectations.route`), unless a test moves them (`point_vault`, `copy_to`)."""

    exp: verify.Expectations
    resources: dict[str, str] = field(default_factory=dict)  # arn -> AWS Backup type
    routes: dict[str, verify.Route] = field(default_factory=dict)  # arn -> where its routing sends it
    selections: list[dict[str, Any]] = field(default_factory=list)
    opt_in: dict[str, bool] = field(
        default_factory=lambda: {t: True for t in ("S3", "RDS", "Aurora", "DynamoDB", "EFS")}
    )
    management: dict[str, bool] = field(default_factory=lambda: {"DynamoDB": True, "EFS": True})
    backup_age_hours: dict[str, float] = field(default_factory=dict)  # arn -> age of its last recovery point
    point_vault: dict[str, str] = field(default_factory=dict)  # arn -> the local vault its points are in (moved)
    copied: dict[str, set[str]] = field(default_factory=dict)  # arn -> copy targets with a completed job
    copy_to: dict[str, dict[str, verify.VaultRef]] = field(default_factory=dict)  # arn -> target -> vault (moved)
    lost_in_backup_account: set[str] = field(default_factory=set)  # arns whose copies are not in the backup account
    local_vault: dict[str, Any] = field(default_factory=dict)  # DescribeBackupVault of the default vault
    # ... of a routed vault, by (name, region)
    local_vaults: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    remote_vaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # ... of a backup account vault, by name
    central_vault: dict[str, Any] = field(default_factory=dict)
    air_gapped_vault: dict[str, Any] = field(default_factory=dict)
    missing_remote_vaults: set[str] = field(default_factory=set)  # names of backup account vaults that do not exist
    errors: dict[str, str] = field(default_factory=dict)  # backup operation -> error code (workload, primary)

    def add(self, arn: str, type_: str, tags: dict[str, str] | None = None) -> None:
        """A resource the world covers fully: selected, backed up an hour ago in its vault, copied everywhere its
        plan copies (`tags`: its tags, by default the scheme's and its configured routing)."""
        kind, name = _kind_and_name(arn)
        resource = verify.Resource(arn, name, type_, kind, PRIMARY, tags or configured_tags(self.exp, arn))
        self.resources[arn] = type_
        self.routes[arn] = self.exp.route(resource)
        self.backup_age_hours[arn] = 1.0
        self.copied[arn] = {target for target, _ in self.routes[arn].copies}

    def destination(self, arn: str, target: str) -> verify.VaultRef:
        """Where the world copies a resource's recovery points for one target."""
        moved = self.copy_to.get(arn, {})
        return moved[target] if target in moved else dict(self.routes[arn].copies)[target]  # type: ignore[index]

    # -- stubs --------------------------------------------------------------------------------------------

    def _vault_arn(self, ref: verify.VaultRef) -> str:
        return f"arn:aws:backup:{ref.region}:{ref.account}:backup-vault:{ref.name}"

    def _point_arn(self, ref: verify.VaultRef, arn: str) -> str:
        return f"arn:aws:backup:{ref.region}:{ref.account}:recovery-point:{ref.name}-{abs(hash(arn)) % 10**8}"

    def stub_workload(self, region: str) -> Stubber:
        """The workload account's AWS Backup in one region, in the order verify calls it."""
        client = aws_client("backup", region)
        stub = Stubber(client)
        exp = self.exp
        for vault in exp.vaults:
            described = (self.local_vault if vault.default else self.local_vaults.get((vault.name, region))) or (
                self.default_local_vault(region, vault)
            )
            stub.add_response("describe_backup_vault", described)
        stub.add_response(
            "describe_region_settings",
            {"ResourceTypeOptInPreference": self.opt_in, "ResourceTypeManagementPreference": self.management},
        )
        primary = region == PRIMARY
        selections = self.selections if primary else []
        stub.add_response(
            "list_backup_plans",
            {"BackupPlansList": [{"BackupPlanId": "plan-1", "BackupPlanName": "pgf-prod"}] if selections else []},
        )
        if selections:
            stub.add_response(
                "list_backup_selections",
                {"BackupSelectionsList": [{"SelectionId": f"sel-{i}"} for i in range(len(selections))]},
            )
            for i, body in enumerate(selections):
                stub.add_response(
                    "get_backup_selection",
                    {"BackupSelection": body, "SelectionId": f"sel-{i}", "BackupPlanId": "plan-1"},
                )
        if primary and "ListProtectedResources" in self.errors:
            stub.add_client_error("list_protected_resources", service_error_code=self.errors["ListProtectedResources"])
            return stub
        in_vault = {arn: self.point_vault.get(arn, self.routes[arn].vault.name) for arn in self.resources}
        protected: list[dict[str, Any]] = [
            {
                "ResourceArn": arn,
                "ResourceType": t,
                "LastBackupTime": NOW - timedelta(hours=self.backup_age_hours[arn]),
                "LastBackupVaultArn": self._vault_arn(verify.VaultRef(ACCOUNT, region, in_vault[arn])),
            }
            for arn, t in self.resources.items()
            if primary and arn in self.backup_age_hours
        ]
        stub.add_response("list_protected_resources", {"Results": protected})
        for vault in exp.vaults:
            points = [
                {
                    "RecoveryPointArn": f"arn:aws:backup:{region}:{ACCOUNT}:recovery-point:{vault.key}-{i}",
                    "ResourceArn": p["ResourceArn"],
                    "Status": "COMPLETED",
                    "CreationDate": p["LastBackupTime"],
                }
                for i, p in enumerate(protected)
                if p["LastBackupTime"] >= NOW - timedelta(hours=2 * exp.window_hours)
                and in_vault[p["ResourceArn"]] == vault.name
            ]
            stub.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": points})
        jobs = []
        for arn in self.resources if primary else []:
            for target in sorted(self.copied.get(arn, ())):
                ref = self.destination(arn, target)
                jobs.append(
                    {
                        "ResourceArn": arn,
                        "DestinationBackupVaultArn": self._vault_arn(ref),
                        "DestinationRecoveryPointArn": self._point_arn(ref, arn),
                        "State": "COMPLETED",
                        "CreationDate": NOW - timedelta(hours=self.backup_age_hours.get(arn, 1.0)),
                        "CompletionDate": NOW - timedelta(hours=self.backup_age_hours.get(arn, 1.0)),
                    }
                )
        stub.add_response("list_copy_jobs", {"CopyJobs": jobs})
        return stub

    def default_local_vault(self, region: str, vault: verify.LocalVault | None = None) -> dict[str, Any]:
        """A vault of the stack as configured (prod: compliance lock 35-3650 days), on a rotating key."""
        vault = vault or self.exp.vaults[0]
        described: dict[str, Any] = {
            "BackupVaultName": vault.name,
            "BackupVaultArn": self._vault_arn(verify.VaultRef(ACCOUNT, region, vault.name)),
            "EncryptionKeyArn": self.vault_keys[region],
            "Locked": vault.lock is not None,
            "NumberOfRecoveryPoints": 10,
        }
        if vault.lock is not None:
            described |= {"MinRetentionDays": vault.lock.min_retention_days,
                          "MaxRetentionDays": vault.lock.max_retention_days}  # fmt: skip
            if vault.lock.mode == "compliance":
                described["LockDate"] = NOW - timedelta(days=30)
        return described

    vault_key: str = ""
    vault_keys: dict[str, str] = field(default_factory=dict)

    def stub_backup_account(self) -> Stubber:
        """The backup account's vaults that copies land in (central, air-gapped, routed vaults' twins), and the copies
        they hold."""
        client = aws_client("backup", PRIMARY)
        stub = Stubber(client)
        central = self.exp.destinations.get("backup_account")
        for remote in self.exp.remote_vaults:
            ref = remote.ref
            if ref.name in self.missing_remote_vaults:
                stub.add_client_error(
                    "describe_backup_vault", service_error_code="ResourceNotFoundException", http_status_code=404
                )
                continue
            override = self.air_gapped_vault if remote.air_gapped else self.central_vault if ref == central else {}
            described = override or self.remote_vaults.get(ref.name) or self.default_remote_vault(remote)
            stub.add_response("describe_backup_vault", described)
            points = [
                {"RecoveryPointArn": self._point_arn(ref, arn), "ResourceArn": arn, "Status": "COMPLETED"}
                for arn, targets in self.copied.items()
                if any(self.destination(arn, t) == ref for t in targets) and arn not in self.lost_in_backup_account
            ]
            stub.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": points})
        return stub

    def default_remote_vault(self, remote: verify.RemoteVault) -> dict[str, Any]:
        """A backup account vault with the backup stack's lock, or the air-gapped vault."""
        ref = remote.ref
        base = {"BackupVaultName": ref.name, "BackupVaultArn": self._vault_arn(ref), "NumberOfRecoveryPoints": 5}
        if remote.air_gapped:
            return {**base, "VaultType": "LOGICALLY_AIR_GAPPED_BACKUP_VAULT", "Locked": True, "MinRetentionDays": 35,
                    "MaxRetentionDays": 3650}  # fmt: skip
        lock = remote.lock
        extra: dict[str, Any] = {"EncryptionKeyArn": self.vault_key, "Locked": lock is not None}
        if lock is not None:
            extra |= {"MinRetentionDays": lock.min_retention_days, "MaxRetentionDays": lock.max_retention_days}
            if lock.mode == "compliance":
                extra["LockDate"] = NOW - timedelta(days=30)
        return {**base, **extra}

    def factories(self) -> tuple[Any, Any, list[Stubber]]:
        """Client factories of the workload and the backup account: moto, with AWS Backup stubbed (activated)."""
        stubs = {region: self.stub_workload(region) for region in self.exp.regions}
        remote = self.stub_backup_account()

        def clients(service: str, region: str) -> Any:
            return stubs[region].client if service == "backup" else aws_client(service, region)

        def remote_clients(service: str, region: str) -> Any:
            return remote.client if service == "backup" else aws_client(service, region)

        for stub in [*stubs.values(), remote]:
            stub.activate()
        return clients, remote_clients, [*stubs.values(), remote]

    def run(self, *, backup_account: bool = True) -> verify.Report:
        """Verify this world: moto for everything but AWS Backup, the stubs for AWS Backup (all calls consumed)."""
        clients, remote_clients, stubs = self.factories()
        access = verify.BackupAccountAccess(remote_clients) if backup_account else None
        report = verify.verify(self.exp, clients, now=NOW, backup_account=access)
        for stub in stubs if backup_account else stubs[:-1]:
            stub.assert_no_pending_responses()
        return report


def build_world(exp: verify.Expectations) -> World:
    """In moto: two buckets, an RDS DB instance and an Aurora cluster on customer managed keys, a table and a file
    system, all tagged by the scheme (the config's buckets and databases with the routing tags it gives them:
    pgf-documents-prod in vault files-raw, pgf-reports-prod in files-processed for 90 days, pgf-audit kept 90 days);
    AWS Backup (stubbed): the stack's selections, fresh backups and copies, each where its plan puts them."""
    world = World(exp=copy.copy(exp))
    kms = aws_client("kms", PRIMARY)
    world.vault_key = kms.create_key(Description="vault")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=world.vault_key)
    world.vault_keys[PRIMARY] = world.vault_key
    copy_kms = aws_client("kms", COPY)
    world.vault_keys[COPY] = copy_kms.create_key(Description="vault")["KeyMetadata"]["Arn"]
    copy_kms.enable_key_rotation(KeyId=world.vault_keys[COPY])
    db_key = kms.create_key(Description="rds")["KeyMetadata"]["Arn"]
    s3 = aws_client("s3", PRIMARY)
    for name in ("pgf-documents-prod", "pgf-reports-prod"):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": PRIMARY})
        tags = configured_tags(exp, f"arn:aws:s3:::{name}")
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(tags)})
        world.add(f"arn:aws:s3:::{name}", "S3")
    rds = aws_client("rds", PRIMARY)
    db = rds.create_db_instance(
        DBInstanceIdentifier="pgf-audit", Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="pgf", MasterUserPassword="not-a-secret-1", StorageEncrypted=True, KmsKeyId=db_key,
        Tags=tag_list(configured_tags(exp, f"arn:aws:rds:{PRIMARY}:{ACCOUNT}:db:pgf-audit")),
    )["DBInstance"]  # fmt: skip
    world.add(db["DBInstanceArn"], "RDS")  # never copied to the air-gapped vault (an RDS DB instance)
    cluster = rds.create_db_cluster(
        DBClusterIdentifier="pgf-core", Engine="aurora-postgresql", MasterUsername="pgf",
        MasterUserPassword="not-a-secret-1", StorageEncrypted=True, KmsKeyId=db_key, Tags=tag_list(GOOD_TAGS),
    )["DBCluster"]  # fmt: skip
    world.add(cluster["DBClusterArn"], "Aurora")
    table = aws_client("dynamodb", PRIMARY).create_table(
        TableName="pgf-sessions", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        Tags=tag_list(GOOD_TAGS),
    )["TableDescription"]  # fmt: skip
    world.add(table["TableArn"], "DynamoDB")
    fs = aws_client("efs", PRIMARY).create_file_system(
        CreationToken="pgf-shared", Encrypted=True, Tags=tag_list({**GOOD_TAGS, "Name": "pgf-shared"})
    )
    world.add(fs["FileSystemArn"], "EFS")
    # The stack's own selection: everything tagged for the tier and the application (pgf_backup/plans.py).
    world.selections.append(
        _selection("pgf-prod-tagged", ["*"], {k: GOOD_TAGS[k] for k in GOOD_TAGS if k != "data:classification"})
    )
    return world


@pytest.fixture
def world(aws: None, expectations: verify.Expectations) -> World:
    """A fully covered prod account."""
    return build_world(expectations)
