"""`pgf-backup verify` at scale: API calls against the fewest pages the account needs, and wall time.

moto holds a prod account with (by default) 1,000 S3 buckets and 200 databases (150 RDS DB instances, 50 Aurora
clusters), all tagged by the scheme, in the stack's primary region. moto has no AWS Backup selections, protected
resources, recovery points or copy jobs: a botocore `before-call` handler answers the backup client (as botocore's
Stubber does) from a generated account where every resource is selected, has a recovery point per day of the
look-back window (2 x 26 hours: 2 or 3 each) and a copy per target; the backup account's vaults list the copies.
Every call any client makes is counted by a `before-call` hook (moto's and the fake's alike).

Printed: calls per operation beside the fewest pages at each operation's largest page size (one call for each
single-item operation: DescribeRegionSettings, DescribeBackupVault, GetBackupSelection, DescribeKey,
GetKeyRotationStatus), the ratio (target <= 1.1), the wall time, and the report's summary. No assertion on time.

    .venv/bin/python bench/verify.py [--buckets 1000 --instances 150 --clusters 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "ca-central-1",
    "MOTO_ACCOUNT_ID": "400000000040",
}.items():
    os.environ[_name] = _value

import boto3  # noqa: E402
from botocore.awsrequest import AWSResponse, HTTPHeaders  # noqa: E402
from moto import mock_aws  # noqa: E402

from pgf_backup.config import WorkloadStack  # noqa: E402
from pgf_backup.ops import verify  # noqa: E402
from pgf_backup.project import Project  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
TAGS = [
    {"Key": "backup:enabled", "Value": "true"},
    {"Key": "backup:tier", "Value": "prod"},
    {"Key": "data:classification", "Value": "confidential"},
    {"Key": "application", "Value": "pgf"},
]


def page_as_aws_documents() -> None:
    """Two labelled shims. moto's GetResources also ends a page at 100 tags when TagsPerPage is not sent (its default),
    a limit AWS documents only for a TagsPerPage the caller sends ("A limit that restricts the number of tags ...";
    botocore's resourcegroupstaggingapi model, GetResourcesInput.TagsPerPage). verify sends ResourcesPerPage alone,
    as that model recommends ("AWS recommends using ResourcesPerPage instead of this parameter"): here moto then pages
    by ResourcesPerPage only, as AWS documents it."""
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

    original = ResourceGroupsTaggingAPIBackend.get_resources

    def get_resources(self: Any, **kwargs: Any) -> Any:
        kwargs["tags_per_page"] = 10**9
        return original(self, **kwargs)

    ResourceGroupsTaggingAPIBackend.get_resources = get_resources  # type: ignore[method-assign]

    # moto's S3 backend is global: its GetResources returns every bucket in every region, where AWS returns "the
    # tagged or previously tagged resources that are located in the specified Region" (botocore's model,
    # GetResources). Here a bucket is listed in its own region only.
    from moto.s3.models import s3_backends

    listing = ResourceGroupsTaggingAPIBackend._get_resources_generator

    def in_region(self: Any, **kwargs: Any) -> Any:
        buckets = s3_backends[self.account_id]["aws"].buckets
        for resource in listing(self, **kwargs):
            name = resource.arn.removeprefix("arn:aws:s3:::")
            if name != resource.arn and name in buckets and buckets[name].region_name != self.region_name:
                continue
            yield resource

    ResourceGroupsTaggingAPIBackend._get_resources_generator = in_region  # type: ignore[method-assign]


def aws_client(service: str, region: str) -> Any:
    """A boto3 client (moto answers), untyped: the bench passes it plain dicts."""
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


class FakeBackup:
    """AWS Backup for one account and region, paginating as AWS documents (MaxResults, NextToken)."""

    def __init__(self, exp: verify.Expectations, arns: dict[str, str], region: str, remote: bool = False) -> None:
        self.exp, self.region, self.remote = exp, region, remote
        self.arns = arns if region == exp.primary else {}
        lookback = 2 * exp.window_hours
        self.points = [
            (arn, NOW - timedelta(hours=1 + 24 * day)) for arn in self.arns for day in range(lookback // 24 + 1)
        ]

    def _page(self, items: list[Any], key: str, params: dict[str, Any]) -> dict[str, Any]:
        size = min(int(params.get("MaxResults", 1000)), 1000)
        start = int(params.get("NextToken", 0))
        page: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            page["NextToken"] = str(start + size)
        return page

    last_params: dict[str, Any] | None = None

    def remember(self, params: dict[str, Any], **_: Any) -> None:
        """The call's API parameters (before-parameter-build: before-call sees them serialized)."""
        self.last_params = dict(params)

    def answer(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        """The parsed response of one call (the before-call hook's short cut, as Stubber's)."""
        return AWSResponse("https://backup", 200, HTTPHeaders(), None), self._parsed(model.name, self.last_params or {})

    def _vault(self, name: str, account: str) -> dict[str, Any]:
        vault: dict[str, Any] = {"BackupVaultName": name, "Locked": True, "MinRetentionDays": 35,
                                 "MaxRetentionDays": 3650, "LockDate": NOW - timedelta(days=30)}  # fmt: skip
        if name.endswith("-air-gapped"):
            vault["VaultType"] = "LOGICALLY_AIR_GAPPED_BACKUP_VAULT"
        return vault

    def _parsed(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911 (one per operation)
        exp = self.exp
        if operation == "DescribeBackupVault":
            return self._vault(params["BackupVaultName"], exp.account_id)
        if operation == "DescribeRegionSettings":
            return {"ResourceTypeOptInPreference": {"S3": True, "RDS": True, "Aurora": True},
                    "ResourceTypeManagementPreference": {"DynamoDB": True, "EFS": True}}  # fmt: skip
        if operation == "ListBackupPlans":
            plans = [{"BackupPlanId": "p1", "BackupPlanName": "pgf-prod"}] if self.arns else []
            return self._page(plans, "BackupPlansList", params)
        if operation == "ListBackupSelections":
            return self._page([{"SelectionId": "s1"}], "BackupSelectionsList", params)
        if operation == "GetBackupSelection":
            conditions = [{"ConditionKey": f"aws:ResourceTag/{t['Key']}", "ConditionValue": t["Value"]} for t in TAGS]
            return {"BackupSelection": {"SelectionName": "pgf-prod-tagged", "IamRoleArn": "arn:aws:iam::1:role/r",
                                        "Resources": ["*"], "Conditions": {"StringEquals": conditions}}}  # fmt: skip
        if operation == "ListProtectedResources":
            items = [{"ResourceArn": a, "ResourceType": t, "LastBackupTime": NOW - timedelta(hours=1)}
                     for a, t in self.arns.items()]  # fmt: skip
            return self._page(items, "Results", params)
        if operation == "ListRecoveryPointsByBackupVault":
            if self.remote:
                items = [{"RecoveryPointArn": f"rp:{params['BackupVaultName']}:{a}", "Status": "COMPLETED"}
                         for a in self.arns]  # fmt: skip
            else:
                items = [{"RecoveryPointArn": f"rp:{a}:{w}", "ResourceArn": a, "Status": "COMPLETED", "CreationDate": w}
                         for a, w in self.points]  # fmt: skip
            return self._page(items, "RecoveryPoints", params)
        if operation == "ListCopyJobs":
            jobs = []
            for arn in self.arns:
                for target, ref in exp.destinations.items():
                    if target == "air_gapped" and ":db:" in arn:
                        continue
                    vault_arn = f"arn:aws:backup:{ref.region}:{ref.account}:backup-vault:{ref.name}"
                    jobs.append({"ResourceArn": arn, "DestinationBackupVaultArn": vault_arn, "State": "COMPLETED",
                                 "DestinationRecoveryPointArn": f"rp:{ref.name}:{arn}",
                                 "CompletionDate": NOW - timedelta(hours=1)})  # fmt: skip
            return self._page(jobs, "CopyJobs", params)
        raise AssertionError(f"unexpected AWS Backup call {operation}")


def main() -> None:
    """Populate moto, run verify with every call counted, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=150)
    parser.add_argument("--clusters", type=int, default=50)
    args = parser.parse_args()
    page_as_aws_documents()
    project = Project.find(ROOT)
    cfg = project.load_config("prod")
    assert isinstance(cfg, WorkloadStack)
    exp = verify.Expectations.of("prod", cfg, project.backup_config())
    region = exp.primary
    calls: Counter[str] = Counter()

    with mock_aws():
        kms = aws_client("kms", region)
        key = kms.create_key()["KeyMetadata"]["Arn"]
        arns: dict[str, str] = {}
        s3 = aws_client("s3", region)
        for i in range(args.buckets):
            name = f"pgf-bench-{i:05d}"
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": TAGS})
            arns[f"arn:aws:s3:::{name}"] = "S3"
        rds = aws_client("rds", region)
        for i in range(args.instances):
            db = rds.create_db_instance(
                DBInstanceIdentifier=f"pgf-db-{i:04d}", Engine="postgres", DBInstanceClass="db.t3.micro",
                AllocatedStorage=20, MasterUsername="pgf", MasterUserPassword="not-a-secret-1", StorageEncrypted=True,
                KmsKeyId=key, Tags=TAGS,
            )["DBInstance"]  # fmt: skip
            arns[db["DBInstanceArn"]] = "RDS"
        for i in range(args.clusters):
            cluster = rds.create_db_cluster(
                DBClusterIdentifier=f"pgf-cluster-{i:04d}", Engine="aurora-postgresql", MasterUsername="pgf",
                MasterUserPassword="not-a-secret-1", StorageEncrypted=True, KmsKeyId=key, Tags=TAGS,
            )["DBCluster"]  # fmt: skip
            arns[cluster["DBClusterArn"]] = "Aurora"

        def count(model: Any, **_: Any) -> None:
            calls[model.name] += 1

        made: dict[tuple[str, str, bool], Any] = {}

        def factory(remote: bool) -> Any:
            def clients(service: str, where: str) -> Any:
                if (service, where, remote) not in made:
                    client = aws_client(service, where)
                    client.meta.events.register("before-call", count)
                    if service == "backup":
                        fake = FakeBackup(exp, arns, where, remote)
                        client.meta.events.register("before-parameter-build", fake.remember)
                        client.meta.events.register("before-call", fake.answer)
                    made[service, where, remote] = client
                return made[service, where, remote]

            return clients

        started = time.perf_counter()
        report = verify.verify(exp, factory(False), now=NOW, backup_account=verify.BackupAccountAccess(factory(True)))
        elapsed = time.perf_counter() - started

    regions = len(exp.regions)
    resources = args.buckets + args.instances + args.clusters
    copies = sum(len(exp.expected_copies(f.resource)) for f in report.findings)
    points = len(FakeBackup(exp, arns, region).points)
    remote_vaults = len(exp.backup_vault_locks)
    per_target = Counter(t for f in report.findings for t in exp.expected_copies(f.resource))
    # Items each listing must return, per call site (one per region unless said otherwise).
    listed: list[tuple[str, int]] = [
        *[("ListBuckets", args.buckets if r == region else 0) for r in exp.regions],
        *[("GetResources", args.buckets if r == region else 0) for r in exp.regions],
        *[("DescribeDBInstances", args.instances if r == region else 0) for r in exp.regions],
        *[("DescribeDBClusters", args.clusters if r == region else 0) for r in exp.regions],
        *[("ListTables", 0) for _ in exp.regions],
        *[("DescribeFileSystems", 0) for _ in exp.regions],
        *[("ListBackupPlans", 1 if r == region else 0) for r in exp.regions],
        ("ListBackupSelections", 1),
        *[("ListProtectedResources", resources if r == region else 0) for r in exp.regions],
        *[("ListRecoveryPointsByBackupVault", points if r == region else 0) for r in exp.regions],
        *[("ListCopyJobs", copies if r == region else 0) for r in exp.regions],
        *[("ListRecoveryPointsByBackupVault", per_target[t]) for t in exp.backup_vault_locks],
    ]
    single = {
        "DescribeRegionSettings": regions,
        "DescribeBackupVault": regions + remote_vaults,
        "GetBackupSelection": 1,
        "DescribeKey": 1 + regions + (1 if "backup_account" in exp.backup_vault_locks else 0),
        "GetKeyRotationStatus": 0,
    }
    minimum: Counter[str] = Counter()
    for operation, items in listed:
        minimum[operation] += verify.minimum_pages({operation: items})
    minimum.update(single)
    # The fakes' vaults name no key: no rotation read for them; moto's DescribeKey answers the databases' key.
    minimum["DescribeKey"] = calls.get("DescribeKey", 0) and 1
    print(f"verify: {args.buckets} buckets, {args.instances} RDS DB instances, {args.clusters} Aurora clusters; "
          f"{points} recovery points, {copies} copies; regions {', '.join(exp.regions)}")  # fmt: skip
    print(f"{'operation':<34}{'calls':>7}{'minimum':>9}")
    for operation in sorted(set(calls) | set(minimum)):
        if calls.get(operation, 0) or minimum.get(operation, 0):
            print(f"{operation:<34}{calls.get(operation, 0):>7}{minimum.get(operation, 0):>9}")
    total, least = sum(calls.values()), sum(minimum.values())
    print(f"{'total':<34}{total:>7}{least:>9}   ratio {total / least:.3f} (target <= 1.1)")
    print(
        "GetResources as AWS documents it: paged by ResourcesPerPage only, a bucket in its own region only "
        "(page_as_aws_documents, a labelled shim of moto)"
    )
    print(f"wall time {elapsed:.1f} s (moto in-process); summary: {report.summary()['by_status']}")


if __name__ == "__main__":
    main()
