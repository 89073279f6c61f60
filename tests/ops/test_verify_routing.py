"""`pgf-backup verify` with tag routing: each resource is expected in the vault of the one plan its routing selects
(vaults per criticality, retention classes, copies turned on or off by tag), with its copies where that plan copies;
routing tags outside what the config allows are named.

The prod world (tests/ops/conftest.py) already routes the config's buckets: pgf-documents-prod to files-raw,
pgf-reports-prod to files-processed (90 days). The tests add buckets routed by their own tags.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgf_backup.config import WorkloadStack
from pgf_backup.ops import verify
from pgf_backup.project import Project
from tests.conftest import organization_copy, utc_copy
from tests.ops.conftest import (
    ACCOUNT,
    BACKUP_ACCOUNT,
    COPY,
    GOOD_TAGS,
    PRIMARY,
    World,
    aws_client,
    build_world,
    tag_list,
)

RAW = {**GOOD_TAGS, "backup:vault": "files-raw"}
NO_REGION = {**GOOD_TAGS, "backup:copy_to_region": "none"}


def _bucket(world: World, name: str, tags: dict[str, str]) -> str:
    """A bucket in moto with these tags, which the world backs up and copies as its routing says."""
    s3 = aws_client("s3", PRIMARY)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": PRIMARY})
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(tags)})
    arn = f"arn:aws:s3:::{name}"
    world.add(arn, "S3", tags)
    return arn


def _by_name(report: verify.Report) -> dict[str, verify.Finding]:
    return {f.resource.name: f for f in report.findings}


def _copies(finding: verify.Finding) -> list[tuple[str, str, str]]:
    return [(c.target, c.vault, c.status) for c in finding.copies]


def _s3(name: str, tags: dict[str, str], kind: str = "s3-bucket") -> verify.Resource:
    return verify.Resource(f"arn:aws:s3:::{name}", name, "S3", kind, PRIMARY, tags)


# ---------------------------------------------------------------------------------------------
# Where each resource is expected


def test_routed_resources_are_ok_with_points_and_copies_in_their_vaults(world: World) -> None:
    _bucket(world, "pgf-inbox", RAW)
    report = world.run()
    assert report.ok, report.problems
    found = _by_name(report)
    inbox = found["pgf-inbox"]
    assert (inbox.status, inbox.plan, inbox.vault) == ("ok", "pgf-prod-files-raw", "pgf-files-raw")
    # A routed vault copies to the backup account's vault of the same key and to its own twin in the copy region,
    # never to the air-gapped vault.
    assert _copies(inbox) == [
        ("backup_account", f"pgf-files-raw ({BACKUP_ACCOUNT}, {PRIMARY})", "ok"),
        ("copy_region", f"pgf-files-raw ({ACCOUNT}, {COPY})", "ok"),
    ]
    reports = found["pgf-reports-prod"]  # routed by the config, which lists it by ARN
    assert (reports.plan, reports.vault) == ("pgf-prod-files-processed-90d", "pgf-files-processed")
    assert [c.vault for c in reports.copies] == [
        f"pgf-files-processed ({BACKUP_ACCOUNT}, {PRIMARY})",
        f"pgf-files-processed ({ACCOUNT}, {COPY})",
    ]
    assert (found["pgf-audit"].plan, found["pgf-audit"].vault) == ("pgf-prod-90d", "pgf-prod")
    assert (found["pgf-core"].plan, found["pgf-core"].vault) == ("pgf-prod", "pgf-prod")
    # Every vault of the stack in every region, and every backup account vault that copies land in.
    read = {(v.role, v.name, v.region) for v in report.vaults}
    local = {("workload", name, region) for name in ("pgf-prod", "pgf-files-raw", "pgf-files-processed")
             for region in (PRIMARY, COPY)}  # fmt: skip
    remote = {("backup-account", name, PRIMARY) for name in ("pgf-prod", "pgf-files-raw", "pgf-files-processed")}
    assert read == local | remote | {("air-gapped", "pgf-prod-air-gapped", PRIMARY)}
    assert all(v.exists and not v.problems and v.mode == "compliance" for v in report.vaults if v.role != "air-gapped")
    entry = next(r for r in report.to_json()["resources"] if r["name"] == "pgf-inbox")
    assert (entry["plan"], entry["vault"]) == ("pgf-prod-files-raw", "pgf-files-raw")


def test_routed_resource_backed_up_and_copied_as_the_default_is_reported(world: World) -> None:
    inbox = _bucket(world, "pgf-inbox", RAW)
    # Its recovery points and copies are where an untagged resource's go, not where its tags route it.
    world.point_vault[inbox] = "pgf-prod"
    world.copy_to[inbox] = {target: ref for target, ref in world.exp.destinations.items()}
    report = world.run()
    finding = _by_name(report)["pgf-inbox"]
    assert finding.status == "stale" and not report.ok
    label = f"S3 pgf-inbox ({PRIMARY})"
    assert finding.problems == [
        f"{label}: no recovery point in vault pgf-files-raw, where its plan pgf-prod-files-raw backs it up; the last "
        "one (1.0 hours old) is in vault pgf-prod",
        f"{label}: copy to backup account (pgf-files-raw ({BACKUP_ACCOUNT}, {PRIMARY})): none within the 26-hour "
        "window",
        f"{label}: copy to copy region (pgf-files-raw ({ACCOUNT}, {COPY})): none within the 26-hour window",
    ]
    assert finding.last_recovery_point is not None  # it was backed up: the report says when, and where
    assert {f.resource.name for f in report.findings if f.status != "ok"} == {"pgf-inbox"}


def test_routed_resource_never_backed_up_names_its_vault(world: World) -> None:
    inbox = _bucket(world, "pgf-inbox", RAW)
    del world.backup_age_hours[inbox]
    world.copied[inbox] = set()
    finding = _by_name(world.run())["pgf-inbox"]
    assert finding.status == "unprotected" and not finding.backed_up
    assert finding.problems == [
        f"S3 pgf-inbox ({PRIMARY}): no recovery point yet in vault pgf-files-raw (plan pgf-prod-files-raw)"
    ]


def test_stale_routed_resource_names_its_vault(world: World) -> None:
    documents = "arn:aws:s3:::pgf-documents-prod"
    world.backup_age_hours[documents] = 40.0
    finding = _by_name(world.run())["pgf-documents-prod"]
    assert finding.status == "stale"
    assert (
        f"S3 pgf-documents-prod ({PRIMARY}): last recovery point in vault pgf-files-raw (plan pgf-prod-files-raw) "
        "40.0 hours old; the prod RPO is 24 hours (+2 grace)"
    ) in finding.problems


def test_copy_gone_from_the_routed_vaults_twin(world: World) -> None:
    world.lost_in_backup_account.add("arn:aws:s3:::pgf-documents-prod")
    report = world.run()
    finding = _by_name(report)["pgf-documents-prod"]
    assert _copies(finding) == [
        ("backup_account", f"pgf-files-raw ({BACKUP_ACCOUNT}, {PRIMARY})", "missing"),
        ("copy_region", f"pgf-files-raw ({ACCOUNT}, {COPY})", "ok"),
    ]
    assert finding.status == "stale"
    # The other resources' copies are in their own vaults, untouched.
    assert {f.resource.name for f in report.findings if f.status != "ok"} == {"pgf-documents-prod"}


def test_routed_vaults_locks_checked_here_and_in_the_backup_account(world: World) -> None:
    raw = next(v for v in world.exp.vaults if v.key == "files-raw")
    for region in (PRIMARY, COPY):
        unlocked = world.default_local_vault(region, raw)
        for key in ("MinRetentionDays", "MaxRetentionDays", "LockDate"):
            unlocked.pop(key)
        world.local_vaults["pgf-files-raw", region] = {**unlocked, "Locked": False}
    processed = next(r for r in world.exp.remote_vaults if r.ref.name == "pgf-files-processed")
    world.remote_vaults["pgf-files-processed"] = {**world.default_remote_vault(processed), "MinRetentionDays": 7}
    report = world.run()
    problems = [p for v in report.vaults for p in v.problems]
    assert problems == [
        f"vault pgf-files-raw ({ACCOUNT}, {PRIMARY}): no Vault Lock; the config expects compliance mode",
        f"vault pgf-files-raw ({ACCOUNT}, {COPY}): no Vault Lock; the config expects compliance mode",
        f"vault pgf-files-processed ({BACKUP_ACCOUNT}, {PRIMARY}): lock retention 7-3650 days; the config expects "
        "35-3650",
    ]
    assert not report.ok


# ---------------------------------------------------------------------------------------------
# Copy routing


def test_copy_tag_outside_the_allowed_values_is_named_and_the_default_copies_expected(world: World) -> None:
    # Prod's plan has no tag_copies: backup:copy_to_region may only confirm the region copy.
    local = _bucket(world, "pgf-local", NO_REGION)
    world.copied[local].discard("copy_region")
    report = world.run()
    finding = _by_name(report)["pgf-local"]
    assert finding.tag_problems == [
        "tag backup:copy_to_region='none': not a value it may take here (ca-west-1); copied as the plan's default does"
    ]
    assert finding.plan == "pgf-prod"
    assert {c.target: c.status for c in finding.copies} == {
        "backup_account": "ok",
        "copy_region": "missing",
        "air_gapped": "ok",
    }
    assert finding.status == "stale" and not report.ok


@pytest.fixture
def tag_copies(aws: None, project: Project) -> World:
    """The prod world under a plan whose tags may turn the region copy off (plan.tag_copies: [copy_to_region]).

    Prod's config refuses tag_copies (every prod rule copies out of the region): the plan is changed with
    model_copy, without validation, to keep the prod world's accounts, vaults and tags."""
    cfg = project.load_config("prod")
    assert isinstance(cfg, WorkloadStack) and cfg.plan is not None
    plan = cfg.plan.model_copy(update={"tag_copies": ("copy_to_region",)})
    exp = verify.Expectations.of("prod", cfg.model_copy(update={"plan": plan}), project.backup_config())
    return build_world(exp)


def test_copy_to_region_none_is_not_copied_to_the_region_when_the_plan_allows_it(tag_copies: World) -> None:
    local = _bucket(tag_copies, "pgf-local", NO_REGION)
    assert tag_copies.copied[local] == {"backup_account", "air_gapped"}  # the world copies where its plan does
    report = tag_copies.run()
    assert report.ok, report.problems
    finding = _by_name(report)["pgf-local"]
    assert finding.tag_problems == [] and finding.plan == "pgf-prod-noregion"
    assert [c.target for c in finding.copies] == ["backup_account", "air_gapped"]


def test_without_the_tag_the_region_copy_is_still_expected(tag_copies: World) -> None:
    table = next(arn for arn in tag_copies.resources if ":table/" in arn)
    tag_copies.copied[table].discard("copy_region")
    report = tag_copies.run()
    finding = _by_name(report)["pgf-sessions"]
    assert finding.plan == "pgf-prod" and finding.status == "stale"
    assert (
        f"DynamoDB pgf-sessions ({PRIMARY}): copy to copy region (pgf-prod ({ACCOUNT}, {COPY})): none within the "
        "26-hour window"
    ) in finding.problems


# ---------------------------------------------------------------------------------------------
# Routing, without AWS


@pytest.mark.parametrize(
    ("tags", "kind", "plan", "vault", "copies"),
    [
        (GOOD_TAGS, "s3-bucket", "pgf-prod", "pgf-prod",
         [("backup_account", BACKUP_ACCOUNT, PRIMARY, "pgf-prod"), ("copy_region", ACCOUNT, COPY, "pgf-prod"),
          ("air_gapped", BACKUP_ACCOUNT, PRIMARY, "pgf-prod-air-gapped")]),
        (GOOD_TAGS, "rds-instance", "pgf-prod", "pgf-prod",
         [("backup_account", BACKUP_ACCOUNT, PRIMARY, "pgf-prod"), ("copy_region", ACCOUNT, COPY, "pgf-prod")]),
        (RAW, "s3-bucket", "pgf-prod-files-raw", "pgf-files-raw",
         [("backup_account", BACKUP_ACCOUNT, PRIMARY, "pgf-files-raw"),
          ("copy_region", ACCOUNT, COPY, "pgf-files-raw")]),
        ({**GOOD_TAGS, "backup:vault": "files-processed", "backup:retention_days": "90"}, "s3-bucket",
         "pgf-prod-files-processed-90d", "pgf-files-processed",
         [("backup_account", BACKUP_ACCOUNT, PRIMARY, "pgf-files-processed"),
          ("copy_region", ACCOUNT, COPY, "pgf-files-processed")]),
        # Not a vault of the stack: the default plan's (and tag_problems names it).
        ({**GOOD_TAGS, "backup:vault": "files"}, "s3-bucket", "pgf-prod", "pgf-prod",
         [("backup_account", BACKUP_ACCOUNT, PRIMARY, "pgf-prod"), ("copy_region", ACCOUNT, COPY, "pgf-prod"),
          ("air_gapped", BACKUP_ACCOUNT, PRIMARY, "pgf-prod-air-gapped")]),
    ],
)  # fmt: skip
def test_route_follows_the_tags(
    expectations: verify.Expectations,
    tags: dict[str, str],
    kind: str,
    plan: str,
    vault: str,
    copies: list[tuple[str, str, str, str]],
) -> None:
    route = expectations.route(_s3("pgf-unlisted", tags, kind))
    assert (route.plan, route.vault.name) == (plan, vault)
    assert [(t, ref.account, ref.region, ref.name) for t, ref in route.copies] == copies


def test_a_listed_resource_goes_where_the_config_lists_it(expectations: verify.Expectations) -> None:
    # The plans list pgf-documents-prod by ARN in pgf-prod-files-raw (buckets.pgf-documents-prod.vault), whatever
    # its tags: a tag that disagrees is named.
    untagged = _s3("pgf-documents-prod", GOOD_TAGS)
    assert expectations.route(untagged).vault.name == "pgf-files-raw"
    assert verify.tag_problems(untagged, expectations) == [
        "routing tags select plan pgf-prod, but buckets.pgf-documents-prod lists it by ARN in plan pgf-prod-files-raw, "
        "which AWS Backup follows: tag it as the config says (backup:vault=files-raw)"
    ]
    assert verify.tag_problems(_s3("pgf-documents-prod", RAW), expectations) == []
    # The same tags on a bucket the config does not list: its tags route it.
    assert expectations.route(_s3("pgf-elsewhere", GOOD_TAGS)).vault.name == "pgf-prod"


def test_organization_mode_routes_to_the_policys_vaults(project: Project, tmp_path: Path) -> None:
    (tmp_path / "utc").mkdir()
    (tmp_path / "org").mkdir()
    org = organization_copy(utc_copy(project, tmp_path / "utc", routed=True), tmp_path / "org", routed=True)
    cfg = org.load_config("prod")
    assert isinstance(cfg, WorkloadStack) and cfg.scheduling == "organization"
    exp = verify.Expectations.of("prod", cfg, org.backup_config())
    assert [v.name for v in exp.vaults] == ["pgf-prod", "pgf-files-processed", "pgf-files-raw"]
    route = exp.route(_s3("pgf-inbox", RAW))
    assert route.plan == "pgf-prod-files-raw"
    assert [(t, ref.account, ref.name) for t, ref in route.copies] == [
        ("backup_account", BACKUP_ACCOUNT, "pgf-files-raw"),
        ("copy_region", ACCOUNT, "pgf-files-raw"),
    ]
    assert exp.listed == {}  # the BACKUP_POLICY selects by tag only
    assert [t for t, _ in exp.route(_s3("pgf-any", GOOD_TAGS)).copies] == [
        "backup_account",
        "copy_region",
        "air_gapped",
    ]
