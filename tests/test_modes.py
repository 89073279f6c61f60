"""Plans, copies and selections per stack, and the two scheduling modes (account / organization)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.backup_plan import CopyArgs, RuleArgs
from pgf_backup.plans import PolicyScheduleError, backup_policy
from pgf_backup.project import Project
from pgf_backup.stacks import MissingOutputError
from tests.conftest import MANAGEMENT_ACCOUNT, ROOT_ID, add_management_stack, organization_copy, utc_copy

Plan = dict[str, Any]
RunStack = Callable[..., Plan]
BACKUP_ACCOUNT = "100000000010"


def _of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def _plan_rules(plan: Plan, suffix: str = "") -> dict[str, dict[str, Any]]:
    tier = plan["outputs"]["tier"]
    (backup_plan,) = [p for p in _of_type(plan, "aws:backup/plan:Plan") if p["inputs"]["name"] == f"pgf-{tier}{suffix}"]
    return {rule["ruleName"]: rule for rule in backup_plan["inputs"]["rules"]}


def _selections(plan: Plan, plan_name: str) -> dict[str, dict[str, Any]]:
    return {
        s["inputs"]["name"].removeprefix(plan_name + "-"): s["inputs"]
        for s in _of_type(plan, "aws:backup/selection:Selection")
        if s["inputs"]["name"].startswith(plan_name + "-")
        and s["inputs"]["name"].count("-") == plan_name.count("-") + 1
    }


def test_rds_instances_are_not_copied_to_the_air_gapped_vault(run_stack: RunStack) -> None:
    """Logically air-gapped vaults hold no RDS DB instances: they get a plan copying to standard vaults only."""
    plan = run_stack("prod")
    instance = "arn:aws:rds:ca-central-1:400000000040:db:pgf-audit"
    instances = "arn:aws:rds:ca-central-1:400000000040:db:*"
    main = _selections(plan, "pgf-prod")
    assert instance not in main["listed"]["resources"]
    assert "arn:aws:rds:ca-central-1:400000000040:cluster:pgf-core" in main["listed"]["resources"]
    assert instances in main["tagged"]["notResources"] and instances in main["listed"]["notResources"]
    # pgf-audit is of the 90-day retention class (Pulumi.prod.yaml): its class's plan for DB instances lists it.
    standard = _selections(plan, "pgf-prod-90d-standard-vaults")
    assert standard["listed"]["resources"] == [instance]
    assert standard["tagged"]["resources"] == [instances]
    assert standard["tagged"]["conditions"] == _selections(plan, "pgf-prod-90d")["tagged"]["conditions"]
    assert _selections(plan, "pgf-prod-standard-vaults")["tagged"]["resources"] == [instances]
    rules = _plan_rules(plan, "-90d-standard-vaults")
    assert set(rules) == set(_plan_rules(plan))
    for rule in rules.values():
        destinations = [c["destinationVaultArn"] for c in rule["copyActions"]]
        assert destinations == [
            f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-prod",
            "arn:aws:backup:ca-west-1:400000000040:backup-vault:pgf-prod",
        ]
    assert plan["outputs"]["databases"]["pgf-audit"]["backup"].startswith("plan pgf-prod-90d-standard-vaults")


# ---------------------------------------------------------------------------------------------
# Account mode (the shipped stack files)


def test_prod_plan_copies_to_the_backup_account_and_the_copy_region(run_stack: RunStack) -> None:
    rules = _plan_rules(run_stack("prod"))
    assert set(rules) == {"daily", "monthly", "yearly", "continuous"}
    for name, rule in rules.items():
        destinations = [c["destinationVaultArn"] for c in rule["copyActions"]]
        assert f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-prod" in destinations, name
        assert "arn:aws:backup:ca-west-1:400000000040:backup-vault:pgf-prod" in destinations, name
        assert f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-prod-air-gapped" in destinations, name
        assert all(c["lifecycle"]["deleteAfter"] == rule["lifecycle"]["deleteAfter"] for c in rule["copyActions"])
    assert rules["continuous"]["enableContinuousBackup"] is True
    assert rules["continuous"]["lifecycle"] == {"deleteAfter": 35}
    assert rules["daily"]["lifecycle"] == {"deleteAfter": 35}
    assert rules["monthly"]["lifecycle"] == {"deleteAfter": 365}
    assert rules["yearly"]["lifecycle"] == {"deleteAfter": 2555, "coldStorageAfter": 30}


@pytest.mark.parametrize(
    ("stack", "account", "days"), [("lab", "200000000020", {7, 14}), ("dev", "300000000030", {7, 14})]
)
def test_lab_and_dev_keep_their_own_retention(run_stack: RunStack, stack: str, account: str, days: set[int]) -> None:
    rules = _plan_rules(run_stack(stack))
    assert {r["lifecycle"]["deleteAfter"] for r in rules.values()} == days
    for rule in rules.values():
        assert [c["destinationVaultArn"] for c in rule["copyActions"]] == [
            f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-{stack}",
            f"arn:aws:backup:ca-west-1:{account}:backup-vault:pgf-{stack}",
        ]


def test_selection_by_the_strategy_tags(run_stack: RunStack) -> None:
    plan = run_stack("prod")
    (selection,) = [s for s in _of_type(plan, "aws:backup/selection:Selection") if s["name"] == "plan-prod-tagged"]
    (block,) = selection["inputs"]["conditions"]
    conditions = {c["key"]: c["value"] for c in block["stringEquals"]}
    assert conditions == {
        "aws:ResourceTag/backup:enabled": "true",
        "aws:ResourceTag/backup:tier": "prod",
        "aws:ResourceTag/application": "pgf",
    }
    assert selection["inputs"]["resources"] == ["*"]
    assert selection["inputs"]["iamRoleArn"] == "arn:aws:iam::400000000040:role/pgf-backup-service-role"


def test_database_keys_are_granted_to_the_backup_account_for_copies(run_stack: RunStack) -> None:
    # RDS snapshots keep the database's own key: the copy into the backup account needs a grant on it.
    grants = {g["inputs"]["keyId"]: g["inputs"] for g in _of_type(run_stack("prod"), "aws:kms/grant:Grant")}
    assert set(grants) == {
        "arn:aws:kms:ca-central-1:400000000040:key/0c1e5d8a-1f2b-4c3d-9e8f-400000000040",
        "arn:aws:kms:ca-central-1:400000000040:key/7a6b5c4d-3e2f-4a1b-8c9d-400000000040",
    }
    for grant in grants.values():
        assert grant["granteePrincipal"] == f"arn:aws:iam::{BACKUP_ACCOUNT}:root"
        assert set(grant["operations"]) == {"Decrypt", "DescribeKey", "CreateGrant", "ReEncryptFrom"}
        assert grant["retireOnDelete"] is True


def test_workload_vault_keys_admit_the_backup_account_for_copies(run_stack: RunStack) -> None:
    # S3, DynamoDB and EFS recovery points are encrypted with the vault key: the destination account of a
    # cross-account copy must be admitted by it, in the primary region and in the copy region's replica.
    plan = run_stack("prod")
    for name in ("prod-ca-central-1-key", "prod-ca-west-1-key"):
        (key,) = [k for k in plan["resources"] if k["name"] == name]
        statements = {s["Sid"]: s for s in json.loads(key["inputs"]["policy"])["Statement"]}
        copies = statements["CrossAccountCopiesByDestinationAccounts"]
        assert copies["Principal"] == {"AWS": [f"arn:aws:iam::{BACKUP_ACCOUNT}:root"]}


def test_region_settings_opt_in_the_configured_services(run_stack: RunStack, project: Project) -> None:
    # Whole maps: the provider stores every type DescribeRegionSettings returns, so a partial map shows a
    # change on every preview (terraform-provider-aws#22744). Ours are true, every other listed type false.
    cfg = project.load_config("dev")
    settings = {s["name"]: s["inputs"] for s in _of_type(run_stack("dev"), "aws:backup/regionSettings:RegionSettings")}
    assert set(settings) == {"region-settings-ca-central-1-region", "region-settings-ca-west-1-region"}
    for region, listed in cfg.region_resource_types.items():
        inputs = settings[f"region-settings-{region}-region"]
        opt_in = inputs["resourceTypeOptInPreference"]
        assert sorted(opt_in) == sorted(listed.opt_in)
        assert {t for t, on in opt_in.items() if on} == {"Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3"}
        assert opt_in["EC2"] is False and opt_in["SAP HANA on Amazon EC2"] is False
        assert inputs["resourceTypeManagementPreference"] == {"DynamoDB": True, "EFS": True}


def test_region_settings_send_each_regions_own_list(run_stack: RunStack, project: Project, tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.backup.yaml"):
        shutil.copy(project.root / name, tmp_path / name)
    data = yaml.safe_load((project.root / "Pulumi.lab.yaml").read_text())
    data["config"]["pgf-backup:services"] = ["DynamoDB", "S3"]
    data["config"]["pgf-backup:region_resource_types"]["ca-west-1"] = {
        "opt_in": ["DynamoDB", "EBS", "S3"],
        "management": {"DynamoDB": True, "EFS": False},
    }
    (tmp_path / "Pulumi.lab.yaml").write_text(yaml.safe_dump(data))
    settings = {
        s["name"]: s["inputs"]
        for s in _of_type(run_stack("lab", Project.find(tmp_path)), "aws:backup/regionSettings:RegionSettings")
    }
    west = settings["region-settings-ca-west-1-region"]
    assert west["resourceTypeOptInPreference"] == {"DynamoDB": True, "EBS": False, "S3": True}
    assert west["resourceTypeManagementPreference"] == {"DynamoDB": True, "EFS": False}
    central = settings["region-settings-ca-central-1-region"]["resourceTypeOptInPreference"]
    assert len(central) == 17 and {t for t, on in central.items() if on} == {"DynamoDB", "S3"}


def test_backup_account_outputs_what_workloads_read(backup_outputs: dict[str, Any]) -> None:
    central = backup_outputs["central_vaults"]
    assert (
        central["prod"]["ca-central-1"]["arn"] == f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-prod"
    )
    assert central["prod"]["ca-west-1"]["lock"] == {"min": 35, "max": 3650}
    assert backup_outputs["air_gapped_vaults"]["prod"]["arn"].endswith(":backup-vault:pgf-prod-air-gapped")


def test_air_gapped_vault_in_the_backup_account(run_stack: RunStack) -> None:
    plan = run_stack("backup")
    (vault,) = _of_type(plan, "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault")
    assert vault["inputs"]["minRetentionDays"] == 35 and vault["inputs"]["maxRetentionDays"] == 3650
    assert vault["protect"]
    (policy,) = [
        p for p in _of_type(plan, "aws:backup/vaultPolicy:VaultPolicy") if p["name"] == "prod-air-gapped-policy"
    ]
    assert policy["inputs"]["backupVaultName"] == "pgf-prod-air-gapped"
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    assert statements["CopyIntoVaultFromTheOrganization"]["Action"] == "backup:CopyIntoBackupVault"
    assert "DenyRecoveryPointDeletionExceptBreakGlass" in statements


def test_missing_backup_outputs_are_a_clear_error(run_stack: RunStack) -> None:
    with pytest.raises(
        MissingOutputError, match=r"output 'central_vaults\.prod\.ca-central-1\.arn' is missing.*deploy `backup` first"
    ):
        run_stack("prod", refs={})


def test_copy_outside_the_central_lock_is_refused(run_stack: RunStack, backup_outputs: dict[str, Any]) -> None:
    outputs = json.loads(json.dumps(backup_outputs))
    outputs["central_vaults"]["prod"]["ca-central-1"]["lock"] = {"min": 40, "max": 3650}
    with pytest.raises(Exception, match=r"plan.rules.daily: a copy kept 35 days lands in .*allows 40-3650 days"):
        run_stack("prod", refs={"organization/pgf-backup/backup": outputs})


# ---------------------------------------------------------------------------------------------
# Organization mode


@pytest.fixture(scope="module")
def utc_project(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A copy of the project (account mode) whose plans are written in UTC, as organization mode needs."""
    return utc_copy(project, tmp_path_factory.mktemp("utc"))


@pytest.fixture(scope="module")
def org_project(utc_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """`utc_project` switched to organization mode: plans move to the backup stack."""
    return organization_copy(utc_project, tmp_path_factory.mktemp("org"))


def _policy(plan: Plan, tier: str) -> dict[str, Any]:
    (policy,) = [p for p in _of_type(plan, "aws:organizations/policy:Policy") if p["inputs"]["name"] == f"pgf-{tier}"]
    assert policy["inputs"]["type"] == "BACKUP_POLICY"
    assert policy["inputs"]["tags"] == {"backup:tier": tier}  # how the policy pack knows the tier
    content = policy["inputs"]["content"]
    assert len(content) <= 10_000
    document: dict[str, Any] = json.loads(content)
    return document


def _assigned(node: dict[str, Any]) -> Any:
    assert set(node) == {"@@assign"}, node
    return node["@@assign"]


# The rule keys of https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_backup_syntax.html
RULE_KEYS = {
    "schedule_expression",
    "target_backup_vault_name",
    "target_logically_air_gapped_backup_vault_arn",
    "start_backup_window_minutes",
    "complete_backup_window_minutes",
    "enable_continuous_backup",
    "lifecycle",
    "copy_actions",
    "recovery_point_tags",
    "index_actions",
    "scan_actions",
}
ROLE = "arn:aws:iam::$account:role/pgf-backup-service-role"
CENTRAL = f"arn:aws:backup:ca-central-1:{BACKUP_ACCOUNT}:backup-vault:pgf-prod"


def _rule(schedule: str = "cron(0 5 ? * * *)", timezone: str = "UTC", **changes: Any) -> RuleArgs:
    values: dict[str, Any] = {
        "name": "daily",
        "schedule": schedule,
        "timezone": timezone,
        "start_window_minutes": 60,
        "completion_window_minutes": 480,
        "delete_after_days": 35,
    }
    return RuleArgs(**(values | changes))


def _policy_rules(*rules: RuleArgs) -> dict[str, Any]:
    document = backup_policy(
        "pgf-prod", "prod", rules=rules, vault_name="pgf-prod", service_role_arn=ROLE, regions=["ca-central-1"]
    )
    (plan,) = document["plans"].values()
    policy_rules: dict[str, Any] = plan["rules"]
    return policy_rules


@pytest.mark.parametrize(
    ("schedule", "timezone", "utc"),
    [
        ("cron(0 5 ? * * *)", "UTC", "cron(0 5 ? * * *)"),
        ("cron(0 5 ? * * *)", "Etc/UTC", "cron(0 5 ? * * *)"),
        # A zone without daylight saving time: the same instants, written in UTC.
        ("cron(0 5 ? * * *)", "Asia/Tokyo", "cron(0 20 ? * * *)"),
        ("cron(0 12 1 * ? *)", "Asia/Tokyo", "cron(0 3 1 * ? *)"),
        ("cron(0 5,17 ? * * *)", "Asia/Kolkata", "cron(30 11,23 ? * * *)"),
        # Every hour, or a rate: daylight saving time changes nothing.
        ("cron(15 * ? * * *)", "America/Toronto", "cron(15 * ? * * *)"),
        ("rate(12 hours)", "America/Toronto", "rate(12 hours)"),
    ],
)
def test_policy_schedules_are_utc_crons(schedule: str, timezone: str, utc: str) -> None:
    body = _policy_rules(_rule(schedule, timezone))["daily"]
    assert _assigned(body["schedule_expression"]) == utc
    assert set(body) <= RULE_KEYS


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            _rule("cron(0 5 ? * * *)", "America/Toronto"),
            r"^plans\.prod\.rules\.daily\.timezone: cron\(0 5 \? \* \* \*\) in America/Toronto \(UTC-05:00 and "
            r"UTC-04:00\) has no single UTC equivalent: daylight saving time .* set `timezone: UTC` \(e\.g\. "
            r"cron\(0 10 \? \* \* \*\) keeps it at UTC-05:00; cron\(0 9 \? \* \* \*\) keeps it at UTC-04:00\)$",
        ),
        (
            _rule("cron(0 4 ? * * *)", "Europe/Paris", name="continuous", continuous=True),
            r"^plans\.prod\.continuous\.timezone: .*orgs_manage_policies_backup_syntax\.html",
        ),
        # 05:00 in Tokyo on the 1st is 20:00 UTC on the last day of the month before: not a shift of hours.
        (_rule("cron(0 5 1 * ? *)", "Asia/Tokyo"), r"\(UTC\+09:00\) is not converted"),
        (_rule("cron(0 0/2 ? * * *)", "Asia/Tokyo"), r"is not converted: only plain hours"),
    ],
)
def test_policy_refuses_a_schedule_no_utc_cron_keeps(rule: RuleArgs, message: str) -> None:
    with pytest.raises(PolicyScheduleError, match=message):
        _policy_rules(rule)


def test_policy_values_have_the_types_of_the_syntax_page() -> None:
    # The page's examples: numbers and booleans as strings ("480", "false"), regions and tag values as lists.
    copy = CopyArgs(destination_vault_arn=CENTRAL, delete_after_days=2555, cold_storage_after_days=30)
    rules = _policy_rules(
        _rule(cold_storage_after_days=30, delete_after_days=2555, recovery_point_tags={"k": "v"}, copies=[copy]),
        _rule("cron(0 4 ? * * *)", name="continuous", continuous=True),
    )
    daily, continuous = rules["daily"], rules["continuous"]
    assert _assigned(daily["start_backup_window_minutes"]) == "60"
    assert _assigned(daily["complete_backup_window_minutes"]) == "480"
    assert daily["lifecycle"] == {
        "delete_after_days": {"@@assign": "2555"},
        "move_to_cold_storage_after_days": {"@@assign": "30"},
    }
    assert daily["copy_actions"][CENTRAL]["lifecycle"] == daily["lifecycle"]
    assert daily["recovery_point_tags"] == {"k": {"tag_key": {"@@assign": "k"}, "tag_value": {"@@assign": "v"}}}
    assert "enable_continuous_backup" not in daily
    assert _assigned(continuous["enable_continuous_backup"]) == "true"


def _check_policy_syntax(document: dict[str, Any]) -> None:
    """The documented shape: plans -> regions, rules, selections; every value under @@assign."""
    assert set(document) == {"plans"}
    for plan in document["plans"].values():
        assert set(plan) <= {"regions", "rules", "selections", "advanced_backup_settings", "backup_plan_tags"}
        assert isinstance(_assigned(plan["regions"]), list)
        for rule in plan["rules"].values():
            assert {"schedule_expression", "target_backup_vault_name", "lifecycle"} <= set(rule)
            assert set(rule) <= RULE_KEYS  # no schedule_expression_timezone: the page has none
            assert _assigned(rule["schedule_expression"]).startswith(("cron(", "rate("))
            assert _assigned(rule["lifecycle"]["delete_after_days"]).isdigit()
            for arn, copy in rule.get("copy_actions", {}).items():
                assert _assigned(copy["target_backup_vault_arn"]) == arn
                assert _assigned(copy["lifecycle"]["delete_after_days"]).isdigit()
        for selection in plan["selections"].get("tags", {}).values():
            assert set(selection) == {"iam_role_arn", "tag_key", "tag_value"}
            assert isinstance(_assigned(selection["tag_value"]), list)
        for selection in plan["selections"].get("resources", {}).values():
            assert {"iam_role_arn", "resource_types", "conditions"} <= set(selection)
            assert set(selection) <= {"iam_role_arn", "resource_types", "not_resource_types", "conditions"}
            assert isinstance(_assigned(selection["resource_types"]), list)


def _normalize_plan_rules(rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        name: {
            "schedule": r["schedule"],
            "timezone": r["scheduleExpressionTimezone"],
            "windows": (r["startWindow"], r["completionWindow"]),
            "lifecycle": (r["lifecycle"]["deleteAfter"], r["lifecycle"].get("coldStorageAfter")),
            "continuous": r["enableContinuousBackup"],
            "tags": r.get("recoveryPointTags") or {},
            "copies": sorted(
                (c["destinationVaultArn"], c["lifecycle"]["deleteAfter"], c["lifecycle"].get("coldStorageAfter"))
                for c in r["copyActions"]
            ),
        }
        for name, r in rules.items()
    }


def _days(node: dict[str, Any], key: str) -> int | None:
    return int(_assigned(node[key])) if key in node else None


def _normalize_policy_rules(document: dict[str, Any], account: str, name: str) -> dict[str, Any]:
    plan = document["plans"][name]
    normalized = {}
    for name, r in plan["rules"].items():
        normalized[name] = {
            "schedule": _assigned(r["schedule_expression"]),
            "timezone": "UTC",  # the policy's cron is in UTC (no time zone key, checked above)
            "windows": (
                int(_assigned(r["start_backup_window_minutes"])),
                int(_assigned(r["complete_backup_window_minutes"])),
            ),
            "lifecycle": (
                _days(r["lifecycle"], "delete_after_days"),
                _days(r["lifecycle"], "move_to_cold_storage_after_days"),
            ),
            "continuous": _assigned(r["enable_continuous_backup"]) == "true"
            if "enable_continuous_backup" in r
            else False,
            "tags": {k: _assigned(v["tag_value"]) for k, v in r.get("recovery_point_tags", {}).items()},
            "copies": sorted(
                (
                    arn.replace("$account", account),
                    _days(c["lifecycle"], "delete_after_days"),
                    _days(c["lifecycle"], "move_to_cold_storage_after_days"),
                )
                for arn, c in r["copy_actions"].items()
            ),
        }
    return normalized


@pytest.mark.parametrize(("tier", "account"), [("lab", "200000000020"), ("prod", "400000000040")])
def test_both_modes_produce_the_same_rules_from_one_config(
    run_stack: RunStack, utc_project: Project, org_project: Project, tier: str, account: str
) -> None:
    planned = run_stack(tier, utc_project)
    backup = run_stack("backup", org_project)
    document = _policy(backup, tier)
    _check_policy_syntax(document)
    # Both modes make the same plans: in prod, a second one that spares RDS instances the air-gapped copy.
    names = {p["inputs"]["name"] for p in _of_type(planned, "aws:backup/plan:Plan")}
    assert set(document["plans"]) == names
    for name in names:
        account_mode = _normalize_plan_rules(_plan_rules(planned, name.removeprefix(f"pgf-{tier}")))
        assert _normalize_policy_rules(document, account, name) == account_mode, name


def test_organization_mode_backup_stack(run_stack: RunStack, org_project: Project) -> None:
    backup = run_stack("backup", org_project)
    (dev,) = _policy(backup, "dev")["plans"].values()
    (selection,) = dev["selections"]["tags"].values()
    assert _assigned(selection["iam_role_arn"]) == "arn:aws:iam::$account:role/pgf-backup-service-role"
    assert (_assigned(selection["tag_key"]), _assigned(selection["tag_value"])) == ("backup:tier", ["dev"])
    # Prod copies to the air-gapped vault, which holds no RDS DB instances: two plans, split by type.
    plans = _policy(backup, "prod")["plans"]
    assert set(plans) == {"pgf-prod", "pgf-prod-standard-vaults"}
    assert _assigned(plans["pgf-prod"]["regions"]) == ["ca-central-1"]
    (main,) = plans["pgf-prod"]["selections"]["resources"].values()
    (standard,) = plans["pgf-prod-standard-vaults"]["selections"]["resources"].values()
    assert _assigned(main["resource_types"]) == ["*"]
    assert _assigned(main["not_resource_types"]) == ["arn:aws:rds:*:*:db:*"]
    assert _assigned(standard["resource_types"]) == ["arn:aws:rds:*:*:db:*"]
    for chosen in (main, standard):
        assert _assigned(chosen["iam_role_arn"]) == "arn:aws:iam::$account:role/pgf-backup-service-role"
        (condition,) = chosen["conditions"]["string_equals"].values()
        assert (_assigned(condition["condition_key"]), _assigned(condition["condition_value"])) == (
            "aws:ResourceTag/backup:tier",
            "prod",
        )
    for rule in plans["pgf-prod-standard-vaults"]["rules"].values():
        assert not [arn for arn in rule["copy_actions"] if "air-gapped" in arn]
    attachments = _of_type(backup, "aws:organizations/policyAttachment:PolicyAttachment")
    assert sorted(a["inputs"]["targetId"] for a in attachments) == sorted(
        ["ou-pgf0-lab00001", "ou-pgf0-dev00001", "ou-pgf0-prod0001", "400000000040"]
    )
    # UpdateGlobalSettings works only in the management account: the management stack's, never the backup stack's.
    assert _of_type(backup, "aws:backup/globalSettings:GlobalSettings") == []


def test_organization_mode_workloads_create_no_plan(run_stack: RunStack, org_project: Project) -> None:
    backup = run_stack("backup", org_project)
    workload = run_stack("prod", org_project, refs={"organization/pgf-backup/backup": backup["outputs"]})
    types = {r["type"] for r in workload["resources"]}
    assert "aws:backup/plan:Plan" not in types and "aws:backup/selection:Selection" not in types
    assert "aws:s3/bucketVersioning:BucketVersioning" in types  # data protection does not depend on the mode
    assert {"aws:backup/vault:Vault", "aws:kms/key:Key", "aws:iam/role:Role"} <= types
    # The service role, with the name the policy expects (the other roles are the export functions').
    roles = {r["inputs"]["name"] for r in _of_type(workload, "aws:iam/role:Role")}
    assert "pgf-backup-service-role" in roles
    assert roles - {"pgf-backup-service-role"} == {
        f"pgf-prod-{kind}-export-{who}" for kind in ("catalog", "quicksight") for who in ("function", "scheduler")
    }
    assert workload["outputs"]["policy_vault_name"] == "pgf-prod"


def test_organization_mode_refuses_a_workload_plan(org_project: Project, tmp_path: Path, project: Project) -> None:
    from pgf_backup.config import ConfigError

    root = tmp_path
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.backup.yaml"):
        shutil.copy(org_project.root / name, root / name)
    data = yaml.safe_load((org_project.root / "Pulumi.prod.yaml").read_text())
    data["config"]["pgf-backup:plan"] = yaml.safe_load((project.root / "Pulumi.prod.yaml").read_text())["config"][
        "pgf-backup:plan"
    ]
    (root / "Pulumi.prod.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="in organization mode the plan comes from the backup stack"):
        Project.find(root).load_config("prod")


def test_organization_mode_refuses_the_shipped_local_time_schedules(
    run_stack: RunStack, project: Project, org_project: Project, tmp_path: Path
) -> None:
    from pgf_backup.config import ConfigError

    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(org_project.root / name, tmp_path / name)
    backup = yaml.safe_load((org_project.root / "Pulumi.backup.yaml").read_text())
    shipped = yaml.safe_load((project.root / "Pulumi.prod.yaml").read_text())["config"]["pgf-backup:plan"]
    backup["config"]["pgf-backup:plans"]["prod"] = shipped  # America/Toronto: EST in winter, EDT in summer
    (tmp_path / "Pulumi.backup.yaml").write_text(yaml.safe_dump(backup))
    # Refused when the stack file is read, before any stack runs (the CLI exits 2 naming the key).
    with pytest.raises(ConfigError, match=r"plans\.prod\.rules\.daily\.timezone: .* in America/Toronto"):
        Project.find(tmp_path).load_config("backup")


def test_a_backup_policy_over_the_size_limit_names_the_plan(
    run_stack: RunStack, org_project: Project, tmp_path: Path
) -> None:
    from pgf_backup.config import ConfigError

    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(org_project.root / name, tmp_path / name)
    backup = yaml.safe_load((org_project.root / "Pulumi.backup.yaml").read_text())
    tags = {f"evidence-{i}": "x" * 200 for i in range(20)}
    for rule in backup["config"]["pgf-backup:plans"]["prod"]["rules"].values():
        rule["recovery_point_tags"] = tags
    (tmp_path / "Pulumi.backup.yaml").write_text(yaml.safe_dump(backup))
    with pytest.raises(
        ConfigError,
        match=r"plans.prod: its BACKUP_POLICY is \d+ characters, \d+ over the 10000 AWS Organizations allows",
    ):
        run_stack("backup", Project.find(tmp_path))


# -- the management stack (optional) -----------------------------------------------------------


def _with_management(source: Project, root: Path) -> Project:
    for path in source.root.glob("Pulumi*.yaml"):
        shutil.copy(path, root / path.name)
    shutil.copy(source.root / "__main__.py", root / "__main__.py")
    add_management_stack(root)
    return Project.find(root)


def test_management_stack_in_account_mode_only_enables_cross_account_backup(
    run_stack: RunStack, project: Project, tmp_path: Path
) -> None:
    plan = run_stack("management", _with_management(project, tmp_path), refs={})
    custom = [r for r in plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:")]
    assert [r["type"] for r in custom] == ["aws:backup/globalSettings:GlobalSettings"]
    assert custom[0]["inputs"]["globalSettings"] == {"isCrossAccountBackupEnabled": "true"}
    (provider,) = _of_type(plan, "pulumi:providers:aws")
    assert json.loads(provider["inputs"]["allowedAccountIds"]) == [MANAGEMENT_ACCOUNT]
    assert plan["outputs"]["account_id"] == MANAGEMENT_ACCOUNT


def test_management_stack_in_organization_mode_delegates_to_the_backup_account(
    run_stack: RunStack, org_project: Project, tmp_path: Path
) -> None:
    plan = run_stack("management", _with_management(org_project, tmp_path), refs={})
    (settings,) = _of_type(plan, "aws:backup/globalSettings:GlobalSettings")
    assert settings["inputs"]["globalSettings"] == {"isCrossAccountBackupEnabled": "true"}
    (admin,) = _of_type(plan, "aws:organizations/delegatedAdministrator:DelegatedAdministrator")
    assert admin["inputs"] == {"accountId": BACKUP_ACCOUNT, "servicePrincipal": "backup.amazonaws.com"}
    (policy,) = _of_type(plan, "aws:organizations/resourcePolicy:ResourcePolicy")
    document = json.loads(policy["inputs"]["content"])
    read, read_backup_policies, manage = document["Statement"]
    backup_root = f"arn:aws:iam::{BACKUP_ACCOUNT}:root"
    assert {s["Principal"]["AWS"] for s in document["Statement"]} == {backup_root}
    assert {s["Effect"] for s in document["Statement"]} == {"Allow"}
    assert "Condition" not in read and "organizations:ListRoots" in read["Action"]
    only_backup_policies = {"StringLikeIfExists": {"organizations:PolicyType": "BACKUP_POLICY"}}
    assert read_backup_policies["Condition"] == manage["Condition"] == only_backup_policies
    assert set(manage["Action"]) == {
        f"organizations:{a}"
        for a in (
            "CreatePolicy",
            "UpdatePolicy",
            "DeletePolicy",
            "AttachPolicy",
            "DetachPolicy",
            "EnablePolicyType",
            "DisablePolicyType",
        )
    }
    base = f"arn:aws:organizations::{MANAGEMENT_ACCOUNT}"
    assert manage["Resource"] == [
        f"{base}:root/o-pgfexample01/{ROOT_ID}",
        f"{base}:ou/o-pgfexample01/*",
        f"{base}:account/o-pgfexample01/*",
        f"{base}:policy/o-pgfexample01/backup_policy/*",
    ]
    # What the backup stack does as delegated administrator is what the policy allows.
    backup = run_stack("backup", org_project)
    assert _of_type(backup, "aws:organizations/policy:Policy")


# ---------------------------------------------------------------------------------------------
# Tag routing in organization mode (issue 14)


def _org_condition_holds(operator: str, key: str, value: str, tags: dict[str, str]) -> bool:
    actual = tags.get(key.removeprefix("aws:ResourceTag/"))
    # As in account mode (pgf_backup.config.PlanVariant): a negated condition holds when the tag is absent.
    return actual == value if operator == "string_equals" else actual != value


def _org_plans_selecting(document: dict[str, Any], tags: dict[str, str]) -> set[str]:
    chosen = set()
    for name, plan in document["plans"].items():
        for selection in plan["selections"].get("resources", {}).values():
            types = _assigned(selection["resource_types"])
            if types != ["*"]:
                continue  # the DB-instance twin: by type, checked for S3-like resources here
            if all(
                _org_condition_holds(op, _assigned(c["condition_key"]), _assigned(c["condition_value"]), tags)
                for op, conditions in selection["conditions"].items()
                for c in conditions.values()
            ):
                chosen.add(name)
    return chosen


@pytest.fixture(scope="module")
def routed_org_project(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Organization mode with prod's routing (two classes, two vaults per criticality), on a one-rule plan that fits
    AWS's 10,000 characters once per (vault, class)."""
    utc = utc_copy(project, tmp_path_factory.mktemp("utc-routed"), routed=True)
    org = organization_copy(utc, tmp_path_factory.mktemp("org-routed"), routed=True)
    path = org.root / "Pulumi.backup.yaml"
    backup = yaml.safe_load(path.read_text())
    plan = backup["config"]["pgf-backup:plans"]["prod"]
    plan["rules"] = {"daily": plan["rules"]["daily"]}
    plan.pop("continuous", None)
    plan["copy_to_air_gapped"] = False
    path.write_text(yaml.safe_dump(backup))
    return Project.find(org.root)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({}, "pgf-prod"),
        ({"backup:retention_days": "90"}, "pgf-prod-90d"),
        ({"backup:vault": "files-raw"}, "pgf-prod-files-raw"),
        ({"backup:vault": "files-processed", "backup:retention_days": "90"}, "pgf-prod-files-processed-90d"),
        ({"backup:retention_days": "60"}, "pgf-prod"),
    ],
)
def test_organization_mode_routes_as_account_mode(
    run_stack: RunStack, routed_org_project: Project, tags: dict[str, str], expected: str
) -> None:
    document = _policy(run_stack("backup", routed_org_project), "prod")  # parses, and within 10,000 characters
    _check_policy_syntax(document)
    assert set(document["plans"]) == {
        "pgf-prod",
        "pgf-prod-90d",
        "pgf-prod-files-raw",
        "pgf-prod-files-raw-90d",
        "pgf-prod-files-processed",
        "pgf-prod-files-processed-90d",
    }
    base = {"backup:tier": "prod"}
    assert _org_plans_selecting(document, {**base, **tags}) == {expected}
    # The routed vault's plan writes to its own vault and copies to its twins, never to the air-gapped vault.
    raw = document["plans"]["pgf-prod-files-raw"]["rules"]["daily"]
    assert _assigned(raw["target_backup_vault_name"]) == "pgf-files-raw"
    assert {arn.rsplit(":", 1)[-1] for arn in raw["copy_actions"]} == {"pgf-files-raw"}
    # The 90-day class keeps its daily recovery points 90 days.
    daily = document["plans"]["pgf-prod-90d"]["rules"]["daily"]
    assert _days(daily["lifecycle"], "delete_after_days") == 90


def test_shipped_prod_routing_does_not_fit_one_backup_policy(
    run_stack: RunStack, project: Project, tmp_path: Path
) -> None:
    for folder in ("utc", "org"):
        (tmp_path / folder).mkdir()
    org = organization_copy(utc_copy(project, tmp_path / "utc", routed=True), tmp_path / "org", routed=True)
    with pytest.raises(Exception, match=r"plans.prod: its BACKUP_POLICY is \d+ characters, \d+ over the 10000"):
        run_stack("backup", org)


@pytest.mark.parametrize(
    ("tags", "expected", "copies"),
    [
        ({}, "pgf-dev", {"backup-account", "region"}),
        ({"backup:copy_to_account": BACKUP_ACCOUNT}, "pgf-dev", {"backup-account", "region"}),
        ({"backup:copy_to_account": "none"}, "pgf-dev-noaccount", {"region"}),
    ],
)
def test_organization_mode_routes_copies_by_tag(
    run_stack: RunStack,
    org_project: Project,
    tmp_path: Path,
    tags: dict[str, str],
    expected: str,
    copies: set[str],
) -> None:
    """plan.tag_copies in a tier's BACKUP_POLICY: backup:copy_to_account=none keeps a dev resource's recovery points
    out of the backup account, and the other plan excludes the tag's value."""
    shutil.copytree(org_project.root, tmp_path / "org")
    path = tmp_path / "org" / "Pulumi.backup.yaml"
    backup = yaml.safe_load(path.read_text())
    backup["config"]["pgf-backup:plans"]["dev"]["tag_copies"] = ["copy_to_account"]
    path.write_text(yaml.safe_dump(backup))
    document = _policy(run_stack("backup", Project.find(tmp_path / "org")), "dev")
    _check_policy_syntax(document)
    assert set(document["plans"]) == {"pgf-dev", "pgf-dev-noaccount"}
    assert _org_plans_selecting(document, {"backup:tier": "dev", **tags}) == {expected}
    daily = document["plans"][expected]["rules"]["daily"]
    found = {
        "backup-account" if f":{BACKUP_ACCOUNT}:" in arn else "region" if ":ca-west-1:" in arn else arn
        for arn in daily["copy_actions"]
    }
    assert found == copies
