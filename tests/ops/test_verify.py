"""`pgf-backup verify`: discovery and tags against moto, AWS Backup through Stubber; a fully covered account, then
one gap at a time, each named in the report and failing it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from moto.backends import get_backend

from pgf_backup.ops import verify
from tests.ops.conftest import ACCOUNT, BACKUP_ACCOUNT, GOOD_TAGS, NOW, PRIMARY, World, aws_client, tag_list


def _by_name(report: verify.Report) -> dict[str, verify.Finding]:
    return {f.resource.name: f for f in report.findings}


def test_fully_covered_account(world: World) -> None:
    report = world.run()
    found = _by_name(report)
    assert sorted(found) == [
        "pgf-audit",
        "pgf-core",
        "pgf-documents-prod",
        "pgf-reports-prod",
        "pgf-sessions",
        "pgf-shared",
    ]
    assert {f.resource.type for f in report.findings} == {"S3", "RDS", "Aurora", "DynamoDB", "EFS"}
    assert report.ok, report.problems
    assert all(f.status == "ok" and f.protected for f in report.findings)
    assert found["pgf-audit"].resource.kind == "rds-instance"
    # An RDS DB instance is copied to the backup account and the copy region, never to the air-gapped vault.
    assert [c.target for c in found["pgf-audit"].copies] == ["backup_account", "copy_region"]
    assert [c.target for c in found["pgf-core"].copies] == ["backup_account", "copy_region", "air_gapped"]
    assert all(c.status == "ok" for f in report.findings for c in f.copies)
    assert found["pgf-core"].key_manager == "CUSTOMER"
    summary = report.summary()
    assert summary["protected"] == 6 and summary["unprotected"] == 0
    assert summary["by_type"]["S3"] == {"protected": 2, "unprotected": 0, "excluded": 0}
    assert summary["by_tier"] == {"prod": {"protected": 6, "unprotected": 0, "excluded": 0}}
    roles = {(v.role, v.region) for v in report.vaults}
    assert roles == {
        ("workload", PRIMARY),
        ("workload", "ca-west-1"),
        ("backup-account", PRIMARY),
        ("air-gapped", PRIMARY),
    }
    assert all(v.exists and not v.problems for v in report.vaults)
    doc = report.to_json()
    assert doc["schema"] == verify.SCHEMA and doc["ok"] is True and doc["account_id"] == ACCOUNT


def test_untagged_bucket_is_unprotected_and_misconfigured(world: World) -> None:
    s3 = aws_client("s3", PRIMARY)
    s3.create_bucket(Bucket="pgf-scratch", CreateBucketConfiguration={"LocationConstraint": PRIMARY})
    s3.put_bucket_tagging(Bucket="pgf-scratch", Tagging={"TagSet": tag_list({"backup:tier": "dev"})})
    report = world.run()
    finding = _by_name(report)["pgf-scratch"]
    assert finding.status == "unprotected" and not finding.protected
    assert finding.tag_problems == [
        "tag backup:enabled missing (true or false)",
        "tag backup:tier='dev': this account's tier is 'prod'",
        "tag data:classification missing (public, internal, confidential, restricted)",
        "tag application missing (pgf)",
    ]
    assert "S3 pgf-scratch (ca-central-1): no backup plan selects it" in report.problems
    assert not report.ok
    assert report.summary()["by_tier"]["dev"] == {"protected": 0, "unprotected": 1, "excluded": 0}


def test_tagged_but_excluded_by_not_resources(world: World) -> None:
    world.selections[0]["NotResources"] = ["arn:aws:s3:::pgf-reports-*"]
    report = world.run()
    finding = _by_name(report)["pgf-reports-prod"]
    assert finding.status == "unprotected" and finding.selected_by == []
    assert _by_name(report)["pgf-documents-prod"].status == "ok"


def test_stale_recovery_point(world: World, expectations: verify.Expectations) -> None:
    core = next(arn for arn in world.resources if ":cluster:" in arn)
    world.backup_age_hours[core] = expectations.window_hours + 5
    report = world.run()
    finding = _by_name(report)["pgf-core"]
    assert finding.status == "stale" and finding.protected
    assert finding.age_hours == expectations.window_hours + 5
    assert f"Aurora pgf-core (ca-central-1): last recovery point {float(expectations.window_hours + 5)} hours old" in (
        " ".join(report.problems)
    )
    # Its copies are as old: stale too.
    assert {c.status for c in finding.copies} == {"stale"}


def test_never_backed_up(world: World) -> None:
    table = next(arn for arn in world.resources if ":table/" in arn)
    del world.backup_age_hours[table]
    world.copied[table] = set()
    report = world.run()
    finding = _by_name(report)["pgf-sessions"]
    assert finding.status == "unprotected" and finding.selected_by == ["pgf-prod/pgf-prod-tagged"]
    assert "DynamoDB pgf-sessions (ca-central-1): no recovery point yet" in report.problems


def test_missing_copy_to_backup_account(world: World) -> None:
    table = next(arn for arn in world.resources if ":table/" in arn)
    world.copied[table].discard("backup_account")
    report = world.run()
    finding = _by_name(report)["pgf-sessions"]
    states = {c.target: c.status for c in finding.copies}
    assert states == {"backup_account": "missing", "copy_region": "ok", "air_gapped": "ok"}
    assert finding.status == "stale"
    assert any("copy to backup account (pgf-prod" in p and "none within" in p for p in finding.problems)


def test_copy_job_completed_but_recovery_point_gone(world: World) -> None:
    core = next(arn for arn in world.resources if ":cluster:" in arn)
    world.lost_in_backup_account.add(core)
    finding = _by_name(world.run())["pgf-core"]
    assert {c.target: c.status for c in finding.copies}["backup_account"] == "missing"
    assert {c.target: c.status for c in finding.copies}["air_gapped"] == "missing"


def test_without_the_backup_account_copies_rest_on_copy_jobs(world: World) -> None:
    world.lost_in_backup_account.add("arn:aws:s3:::pgf-reports-prod")
    report = world.run(backup_account=False)
    assert report.ok, report.problems  # the jobs say the copies exist; nothing reads the vault
    assert report.notes and not report.backup_account_checked
    assert {v.role for v in report.vaults} == {"workload"}


def test_aws_managed_key_trap(world: World) -> None:
    kms = aws_client("kms", PRIMARY)
    key = kms.create_key(Description="stands for aws/rds")["KeyMetadata"]
    # moto makes every key customer managed: mark this one as AWS managed, as DescribeKey reports aws/rds.
    get_backend("kms")[ACCOUNT][PRIMARY].keys[key["KeyId"]].key_manager = "AWS"
    db = aws_client("rds", PRIMARY).create_db_instance(
        DBInstanceIdentifier="pgf-legacy", Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="pgf", MasterUserPassword="not-a-secret-1", StorageEncrypted=True, KmsKeyId=key["Arn"],
        Tags=tag_list(GOOD_TAGS),
    )["DBInstance"]  # fmt: skip
    world.add(db["DBInstanceArn"], "RDS")
    world.copied[db["DBInstanceArn"]].discard("air_gapped")
    report = world.run()
    finding = _by_name(report)["pgf-legacy"]
    assert finding.key_manager == "AWS" and finding.key_trap
    assert finding.status == "misconfigured"
    assert any("AWS managed key" in p and "cannot be copied to the backup account" in p for p in finding.problems)


def test_aws_managed_key_is_no_trap_for_fully_managed_types(world: World) -> None:
    kms = aws_client("kms", PRIMARY)
    key = kms.create_key(Description="stands for aws/elasticfilesystem")["KeyMetadata"]
    get_backend("kms")[ACCOUNT][PRIMARY].keys[key["KeyId"]].key_manager = "AWS"
    fs = aws_client("efs", PRIMARY).create_file_system(
        CreationToken="pgf-other",
        Encrypted=True,
        KmsKeyId=key["Arn"],
        Tags=tag_list({**GOOD_TAGS, "Name": "pgf-other"}),
    )
    world.add(fs["FileSystemArn"], "EFS")
    finding = _by_name(world.run())["pgf-other"]
    assert finding.key_manager == "AWS" and not finding.key_trap and finding.status == "ok"


def test_type_not_opted_in(world: World) -> None:
    world.opt_in["EFS"] = False
    report = world.run()
    finding = _by_name(report)["pgf-shared"]
    assert finding.status == "unprotected" and finding.opted_in is False
    assert any("EFS is not opted in to AWS Backup in ca-central-1" in p for p in finding.problems)


def test_excluded_resource_is_reported_not_failed(world: World) -> None:
    s3 = aws_client("s3", PRIMARY)
    s3.create_bucket(Bucket="pgf-tmp", CreateBucketConfiguration={"LocationConstraint": PRIMARY})
    s3.put_bucket_tagging(Bucket="pgf-tmp", Tagging={"TagSet": tag_list({**GOOD_TAGS, "backup:enabled": "false"})})
    report = world.run()
    assert _by_name(report)["pgf-tmp"].status == "excluded"
    assert report.ok
    assert report.summary()["excluded"] == 1


def test_vault_lock_and_key_rotation_checked(world: World) -> None:
    kms = aws_client("kms", PRIMARY)
    unrotated = kms.create_key(Description="no rotation")["KeyMetadata"]["Arn"]
    world.local_vault = {
        **world.default_local_vault(PRIMARY),
        "EncryptionKeyArn": unrotated,
        "LockDate": None,
        "MinRetentionDays": 7,
    }
    del world.local_vault["LockDate"]
    report = world.run()
    problems = [p for v in report.vaults for p in v.problems]
    name = world.exp.local_vault
    assert (
        f"vault {name} ({ACCOUNT}, ca-central-1): Vault Lock in governance mode; the config expects compliance"
        in problems
    )
    assert any("lock retention 7-3650 days; the config expects 35-3650" in p for p in problems)
    assert any(f"key {unrotated} does not rotate" in p for p in problems)
    assert not report.ok


def test_missing_central_vault(world: World) -> None:
    world.missing_remote_vaults.add("pgf-prod")
    report = world.run()
    central = next(v for v in report.vaults if v.role == "backup-account" and v.name == "pgf-prod")
    assert not central.exists and central.problems == [f"vault pgf-prod ({BACKUP_ACCOUNT}, ca-central-1): not found"]
    # Its copies cannot be confirmed there; the routed vaults' twins are read, and theirs are.
    statuses = {
        (c.vault.split()[0], c.status) for f in report.findings for c in f.copies if c.target == "backup_account"
    }
    assert statuses == {("pgf-prod", "unverified"), ("pgf-files-raw", "ok"), ("pgf-files-processed", "ok")}
    assert not report.ok


def test_lookback_window_bounds_what_is_read(world: World, expectations: verify.Expectations) -> None:
    core = next(arn for arn in world.resources if ":cluster:" in arn)
    # Older than the look-back window: known from ListProtectedResources only.
    world.backup_age_hours[core] = 3 * expectations.window_hours
    finding = _by_name(world.run())["pgf-core"]
    assert finding.age_hours == 3 * expectations.window_hours and finding.status == "stale"
    assert finding.last_recovery_point == (NOW - timedelta(hours=3 * expectations.window_hours)).isoformat()


# ---------------------------------------------------------------------------------------------
# Selection semantics (https://docs.aws.amazon.com/aws-backup/latest/devguide/assigning-resources-json.html)


def _resource(arn: str, **tags: str) -> verify.Resource:
    return verify.Resource(arn, arn.rsplit(":", 1)[-1], "S3", "s3-bucket", PRIMARY, tags)


def _sel(resources: tuple[str, ...] = ("*",), **kwargs: Any) -> verify.Selection:
    return verify.Selection("p", "s", resources, kwargs.get("not_resources", ()), kwargs.get("conditions", {}),
                            kwargs.get("list_of_tags", ()))  # fmt: skip


@pytest.mark.parametrize(
    ("selection", "tags", "expected"),
    [
        (_sel(), {}, (True, True)),
        (_sel(("arn:aws:s3:::logs-*",)), {}, (True, False)),
        (_sel(("arn:aws:s3:::other-*",)), {}, (False, False)),
        (_sel(not_resources=("arn:aws:s3:::logs-*",)), {}, (False, False)),
        (
            _sel(conditions={"StringEquals": (("aws:ResourceTag/a", "1"), ("aws:ResourceTag/b", "2"))}),
            {"a": "1"},
            (False, False),
        ),
        (
            _sel(conditions={"StringEquals": (("aws:ResourceTag/a", "1"), ("aws:ResourceTag/b", "2"))}),
            {"a": "1", "b": "2"},
            (True, True),
        ),
        (_sel(conditions={"StringLike": (("aws:ResourceTag/env", "*rod*"),)}), {"env": "production"}, (True, True)),
        (_sel(conditions={"StringLike": (("aws:ResourceTag/env", "*rod*"),)}), {}, (False, False)),
        (_sel(conditions={"StringNotEquals": (("aws:ResourceTag/env", "dev"),)}), {"env": "dev"}, (False, False)),
        (_sel(conditions={"StringNotLike": (("aws:ResourceTag/env", "de*"),)}), {"env": "prod"}, (True, True)),
        (_sel(list_of_tags=(("a", "1"), ("b", "2"))), {"b": "2"}, (True, True)),
        (_sel(list_of_tags=(("a", "1"), ("b", "2"))), {"c": "3"}, (False, False)),
    ],
)
def test_selection_semantics(selection: verify.Selection, tags: dict[str, str], expected: tuple[bool, bool]) -> None:
    assert verify.selects(selection, _resource("arn:aws:s3:::logs-2026", **tags)) == expected


def test_minimum_pages() -> None:
    assert verify.minimum_pages({"ListBuckets": 1000, "GetResources": 1000, "DescribeDBInstances": 200}) == 1 + 10 + 2
    assert verify.minimum_pages({"ListTables": 0}) == 1


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"backup:retention_days": "90"}, []),
        ({"backup:vault": "files-raw", "backup:retention_days": "35"}, []),
        (
            {"backup:retention_days": "60"},
            ["tag backup:retention_days='60': not a retention class (35, 90); backed up with the default class"],
        ),
        (
            {"backup:vault": "files"},
            [
                "tag backup:vault='files': not a vault of this stack (prod, files-raw, files-processed); backed up "
                "in the default"
            ],
        ),
        # The defaults, tagged explicitly (routing that does not depend on how an absent tag is read).
        ({"backup:vault": "prod", "backup:retention_days": "35", "backup:copy_to_region": "ca-west-1"}, []),
        # Prod's plan copies to the copy region and the backup account, and no tag may turn either off.
        ({"backup:copy_to_region": "ca-west-1", "backup:copy_to_account": BACKUP_ACCOUNT}, []),
        (
            {"backup:copy_to_region": "none"},
            [
                "tag backup:copy_to_region='none': not a value it may take here (ca-west-1); copied as the plan's "
                "default does"
            ],
        ),
        (
            {"backup:copy_to_account": "300000000030"},
            [
                "tag backup:copy_to_account='300000000030': not a value it may take here (100000000010); copied as "
                "the plan's default does"
            ],
        ),
    ],
)
def test_routing_tags_outside_the_config_are_named(
    expectations: verify.Expectations, tags: dict[str, str], expected: list[str]
) -> None:
    resource = verify.Resource("arn:aws:s3:::b", "b", "S3", "s3-bucket", PRIMARY, {**GOOD_TAGS, **tags})
    assert verify.tag_problems(resource, expectations) == expected
