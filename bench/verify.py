"""`pgf-backup verify` at scale: API calls against the fewest pages the account needs, and wall time.

moto holds a prod account with (by default) 1,000 S3 buckets and 200 databases (150 RDS DB instances, 50 Aurora
clusters), all tagged by the scheme, in the stack's primary region; a third of the buckets are routed to the vault
files-raw (backup:vault), a third to files-processed with the 90-day class, as prod's vaults per criticality allow.
moto has no AWS Backup selections, protected resources, recovery points or copy jobs: a botocore `before-call`
handler answers the backup client (as botocore's Stubber does) from a generated account with one plan per routing
variant of the tier (its selection: the tier's tags and the variant's routing conditions), where every resource has a
recovery point per day of the look-back window (2 x 26 hours: 2 or 3 each) in the vault its routing names and a copy
per target of its plan; the backup account's vaults list the copies that land in each.
Every call any client makes is counted by a `before-call` hook (moto's and the fake's alike).

Printed: calls per operation beside the fewest pages at each operation's largest page size (one call for each
single-item operation: DescribeRegionSettings, DescribeBackupVault, GetBackupSelection, DescribeKey,
GetKeyRotationStatus), counting every vault verify must read (each of the stack's vaults in each region, each backup
account vault copies land in), the ratio (target <= 1.1), the wall time, and the report's summary. No assertion on
time.

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

    ResourceGroupsTaggingAPIBackend.get_resources = get_resources  # type: ignore[method-assign,assignment]

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

    ResourceGroupsTaggingAPIBackend._get_resources_generator = in_region  # type: ignore[method-assign,assignment]


def aws_client(service: str, region: str) -> Any:
    """A boto3 client (moto answers), untyped: the bench passes it plain dicts."""
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


class FakeBackup:
    """AWS Backup for one account and region, paginating as AWS documents (MaxResults, NextToken)."""

    def __init__(
        self, exp: verify.Expectations, routes: dict[str, tuple[str, verify.Route]], region: str, remote: bool = False
    ) -> None:
        self.exp, self.region, self.remote = exp, region, remote
        self.routes = routes if region == exp.primary else {}
        lookback = 2 * exp.window_hours
        # (resource, vault name, creation date): each resource's points in the vault its routing names.
        self.points = [
            (arn, route.vault.name, NOW - timedelta(hours=1 + 24 * day))
            for arn, (_, route) in self.routes.items()
            for day in range(lookback // 24 + 1)
        ]
        self.plans = {v.plan_name: v for v in exp.variants} if self.routes and not remote else {}

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

    def _vault(self, name: str) -> dict[str, Any]:
        vault: dict[str, Any] = {"BackupVaultName": name, "Locked": True, "MinRetentionDays": 35,
                                 "MaxRetentionDays": 3650, "LockDate": NOW - timedelta(days=30)}  # fmt: skip
        if name.endswith("-air-gapped"):
            vault["VaultType"] = "LOGICALLY_AIR_GAPPED_BACKUP_VAULT"
        return vault

    def _selection(self, plan: str) -> dict[str, Any]:
        variant = self.plans[plan]
        equals = [*((t["Key"], t["Value"]) for t in TAGS), *variant.equals.items()]
        conditions: dict[str, Any] = {
            "StringEquals": [{"ConditionKey": f"aws:ResourceTag/{k}", "ConditionValue": v} for k, v in equals]
        }
        if variant.not_equals:
            conditions["StringNotEquals"] = [
                {"ConditionKey": f"aws:ResourceTag/{k}", "ConditionValue": v} for k, v in variant.not_equals
            ]
        return {"BackupSelection": {"SelectionName": f"{plan}-tagged", "IamRoleArn": "arn:aws:iam::1:role/r",
                                    "Resources": ["*"], "Conditions": conditions}}  # fmt: skip

    def _parsed(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911 (one per operation)
        exp = self.exp
        if operation == "DescribeBackupVault":
            return self._vault(params["BackupVaultName"])
        if operation == "DescribeRegionSettings":
            return {"ResourceTypeOptInPreference": {"S3": True, "RDS": True, "Aurora": True},
                    "ResourceTypeManagementPreference": {"DynamoDB": True, "EFS": True}}  # fmt: skip
        if operation == "ListBackupPlans":
            plans = [{"BackupPlanId": name, "BackupPlanName": name} for name in self.plans]
            return self._page(plans, "BackupPlansList", params)
        if operation == "ListBackupSelections":
            return self._page([{"SelectionId": "s1"}], "BackupSelectionsList", params)
        if operation == "GetBackupSelection":
            return self._selection(params["BackupPlanId"])
        if operation == "ListProtectedResources":
            items = [{"ResourceArn": a, "ResourceType": t, "LastBackupTime": NOW - timedelta(hours=1),
                      "LastBackupVaultArn": self._vault_arn(exp.account_id, exp.primary, route.vault.name)}
                     for a, (t, route) in self.routes.items()]  # fmt: skip
            return self._page(items, "Results", params)
        if operation == "ListRecoveryPointsByBackupVault":
            name = params["BackupVaultName"]
            if self.remote:
                items = [{"RecoveryPointArn": f"rp:{name}:{a}", "ResourceArn": a, "Status": "COMPLETED"}
                         for a, (_, route) in self.routes.items()
                         if any(ref.name == name for _, ref in route.copies)]  # fmt: skip
            else:
                items = [{"RecoveryPointArn": f"rp:{a}:{w}", "ResourceArn": a, "Status": "COMPLETED", "CreationDate": w}
                         for a, vault, w in self.points if vault == name]  # fmt: skip
            return self._page(items, "RecoveryPoints", params)
        if operation == "ListCopyJobs":
            jobs = []
            for arn, (_, route) in self.routes.items():
                for _, ref in route.copies:
                    jobs.append({"ResourceArn": arn, "DestinationBackupVaultArn": self._vault_arn(ref.account,
                                 ref.region, ref.name), "State": "COMPLETED",
                                 "DestinationRecoveryPointArn": f"rp:{ref.name}:{arn}",
                                 "CompletionDate": NOW - timedelta(hours=1)})  # fmt: skip
            return self._page(jobs, "CopyJobs", params)
        raise AssertionError(f"unexpected AWS Backup call {operation}")

    @staticmethod
    def _vault_arn(account: str, region: str, name: str) -> str:
        return f"arn:aws:backup:{region}:{account}:backup-vault:{name}"


# Every third bucket is routed to files-raw, the next to files-processed with the 90-day class (prod's config).
ROUTING: tuple[dict[str, str], ...] = (
    {"backup:vault": "files-raw"},
    {"backup:vault": "files-processed", "backup:retention_days": "90"},
    {},
)


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
        resources: list[verify.Resource] = []
        s3 = aws_client("s3", region)
        for i in range(args.buckets):
            name = f"pgf-bench-{i:05d}"
            routing = ROUTING[i % len(ROUTING)]
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
            tags = [*TAGS, *({"Key": k, "Value": v} for k, v in routing.items())]
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
            arns[f"arn:aws:s3:::{name}"] = "S3"
            tagged = {t["Key"]: t["Value"] for t in tags}
            resources.append(verify.Resource(f"arn:aws:s3:::{name}", name, "S3", "s3-bucket", region, tagged))
        rds = aws_client("rds", region)
        for i in range(args.instances):
            db = rds.create_db_instance(
                DBInstanceIdentifier=f"pgf-db-{i:04d}", Engine="postgres", DBInstanceClass="db.t3.micro",
                AllocatedStorage=20, MasterUsername="pgf", MasterUserPassword="not-a-secret-1", StorageEncrypted=True,
                KmsKeyId=key, Tags=TAGS,
            )["DBInstance"]  # fmt: skip
            arns[db["DBInstanceArn"]] = "RDS"
            resources.append(verify.Resource(db["DBInstanceArn"], f"pgf-db-{i:04d}", "RDS", "rds-instance", region, {}))
        for i in range(args.clusters):
            cluster = rds.create_db_cluster(
                DBClusterIdentifier=f"pgf-cluster-{i:04d}", Engine="aurora-postgresql", MasterUsername="pgf",
                MasterUserPassword="not-a-secret-1", StorageEncrypted=True, KmsKeyId=key, Tags=TAGS,
            )["DBCluster"]  # fmt: skip
            arns[cluster["DBClusterArn"]] = "Aurora"
            resources.append(
                verify.Resource(cluster["DBClusterArn"], f"pgf-cluster-{i:04d}", "Aurora", "rds-cluster", region, {})
            )
        # Where each resource's routing sends its recovery points and copies (the fake keeps them there).
        routes = {r.arn: (arns[r.arn], exp.route(r)) for r in resources}

        def count(model: Any, **_: Any) -> None:
            calls[model.name] += 1

        made: dict[tuple[str, str, bool], Any] = {}

        def factory(remote: bool) -> Any:
            def clients(service: str, where: str) -> Any:
                if (service, where, remote) not in made:
                    client = aws_client(service, where)
                    client.meta.events.register("before-call", count)
                    if service == "backup":
                        fake = FakeBackup(exp, routes, where, remote)
                        client.meta.events.register("before-parameter-build", fake.remember)
                        client.meta.events.register("before-call", fake.answer)
                    made[service, where, remote] = client
                return made[service, where, remote]

            return clients

        started = time.perf_counter()
        report = verify.verify(exp, factory(False), now=NOW, backup_account=verify.BackupAccountAccess(factory(True)))
        elapsed = time.perf_counter() - started

    regions = len(exp.regions)
    copies = sum(len(exp.expected_copies(f.resource)) for f in report.findings)
    fake = FakeBackup(exp, routes, region)
    points, plans = len(fake.points), len(fake.plans)
    # Items in each vault verify reads: the recovery points in each of the stack's vaults (in the primary region),
    # the copies landing in each backup account vault.
    in_vault = Counter(vault for _, vault, _ in fake.points)
    copied_to = Counter(ref for _, route in routes.values() for _, ref in route.copies)
    # Items each listing must return, per call site (one per region unless said otherwise).
    listed: list[tuple[str, int]] = [
        *[("ListBuckets", args.buckets if r == region else 0) for r in exp.regions],
        *[("GetResources", args.buckets if r == region else 0) for r in exp.regions],
        *[("DescribeDBInstances", args.instances if r == region else 0) for r in exp.regions],
        *[("DescribeDBClusters", args.clusters if r == region else 0) for r in exp.regions],
        *[("ListTables", 0) for _ in exp.regions],
        *[("DescribeFileSystems", 0) for _ in exp.regions],
        *[("ListBackupPlans", plans if r == region else 0) for r in exp.regions],
        *[("ListBackupSelections", 1) for _ in range(plans)],  # one per plan
        *[("ListProtectedResources", len(routes) if r == region else 0) for r in exp.regions],
        # Each of the stack's vaults (the default and the routed ones), in each region.
        *[
            ("ListRecoveryPointsByBackupVault", in_vault[v.name] if r == region else 0)
            for r in exp.regions
            for v in exp.vaults
        ],
        *[("ListCopyJobs", copies if r == region else 0) for r in exp.regions],
        # Each backup account vault copies land in (central, air-gapped, the routed vaults' twins).
        *[("ListRecoveryPointsByBackupVault", copied_to[remote.ref]) for remote in exp.remote_vaults],
    ]
    single = {
        "DescribeRegionSettings": regions,
        "DescribeBackupVault": regions * len(exp.vaults) + len(exp.remote_vaults),
        "GetBackupSelection": plans,  # one selection per plan
        "DescribeKey": 1,
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
    print(f"vaults read: {len(exp.vaults)} of the stack x {regions} regions ({', '.join(v.name for v in exp.vaults)}), "
          f"{len(exp.remote_vaults)} in the backup account ({', '.join(r.ref.name for r in exp.remote_vaults)}); "
          f"{plans} plans")  # fmt: skip
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
