"""The config models: the shipped stack files load; each rule refuses bad input with a clear message."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from pgf_backup.config import ROLE_MODELS, ConfigError, ManagementStack
from pgf_backup.project import Project
from tests.conftest import config_of, stack_values

Mutation = Callable[[dict[str, Any]], None]
FULLY_MANAGED = {"DynamoDB": True, "EFS": True}


def _set(path: str, value: Any) -> Mutation:
    """Set `pgf-backup:<key>.<nested>...` to value."""

    def mutate(values: dict[str, Any]) -> None:
        key, *rest = path.split(".")
        target = values.setdefault(f"pgf-backup:{key}", {})
        if not rest:
            values[f"pgf-backup:{key}"] = value
            return
        for part in rest[:-1]:
            target = target.setdefault(part, {})
        target[rest[-1]] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(values: dict[str, Any]) -> None:
        key, *rest = path.split(".")
        if not rest:
            del values[f"pgf-backup:{key}"]
            return
        target = values[f"pgf-backup:{key}"]
        for part in rest[:-1]:
            target = target[part]
        del target[rest[-1]]

    return mutate


def _each(*mutations: Mutation) -> Mutation:
    """Several mutations as one."""

    def mutate(values: dict[str, Any]) -> None:
        for one in mutations:
            one(values)

    return mutate


def _mutated(project: Project, stack: str, *mutations: Mutation) -> dict[str, Any]:
    values = copy.deepcopy(stack_values(project, stack))
    for mutate in mutations:
        mutate(values)
    return values


def _error(project: Project, stack: str, *mutations: Mutation) -> str:
    with pytest.raises(ConfigError) as caught:
        config_of(_mutated(project, stack, *mutations))
    return str(caught.value)


@pytest.mark.parametrize("stack", ["backup", "lab", "dev", "prod"])
def test_shipped_stack_files_are_valid(project: Project, stack: str) -> None:
    cfg = project.load_config(stack)
    assert cfg.regions.primary == "ca-central-1"
    assert cfg.regions.copy_region == "ca-west-1"
    assert cfg.backup_account_id not in {a for n, a in cfg.accounts.items() if n != "backup"}


def test_shipped_retention_follows_the_strategy(project: Project) -> None:
    prod = project.load_config("prod")
    assert prod.plan is not None
    rules = prod.plan.rules
    assert rules["daily"].delete_after_days == 35
    assert rules["monthly"].delete_after_days == 365
    assert rules["yearly"].delete_after_days == 7 * 365
    assert rules["yearly"].cold_storage_after_days is not None
    assert prod.vaults["prod"].lock is not None and prod.vaults["prod"].lock.mode == "compliance"
    for stack in ("lab", "dev"):
        cfg = project.load_config(stack)
        assert cfg.plan is not None
        assert all(7 <= r.delete_after_days <= 14 for r in cfg.plan.rules.values())
        assert all(v.lock is not None and v.lock.mode == "governance" for v in cfg.vaults.values())


def test_models_are_frozen(project: Project) -> None:
    cfg = project.load_config("prod")
    with pytest.raises(ValueError, match="frozen"):
        cfg.role = "backup-account"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("stack", "mutation", "expected"),
    [
        # unknown, misspelt keys and wrong types
        ("prod", _set("retension", 3), "pgf-backup:retension: unknown key"),
        ("prod", _set("regions.primry", "ca-central-1"), "Did you mean 'primary'?"),
        ("prod", _set("plan.rules.daily.delete_after_dayz", 35), "Did you mean 'delete_after_days'?"),
        ("prod", _set("plan.rules.daily.delete_after_days", "a month"), "plan.rules.daily.delete_after_days"),
        ("prod", _set("vaults", ["prod"]), "pgf-backup:vaults: Input should be a valid dictionary"),
        ("prod", _delete("regions.primary"), "pgf-backup:regions.primary: required key is missing"),
        # accounts and roles
        (
            "prod",
            _set("accounts.prod", "4000000000"),
            "accounts.prod: '4000000000' is not an AWS account id",
        ),
        ("prod", _set("accounts.prod", "40000000004a"), "12 digits"),
        ("prod", _set("role", "workloads"), "pgf-backup:role: 'workloads' is not allowed"),
        ("prod", _set("accounts.prod", "100000000010"), "must be distinct from every workload account"),
        ("prod", _delete("accounts.backup"), "the backup account is missing"),
        ("prod", _delete("tier"), "pgf-backup:tier: required key is missing; allowed: lab, dev, prod"),
        ("prod", _delete("role"), "role: required key is missing; allowed: backup-account, workload, management"),
        ("prod", _set("rollout_order", ["lab"]), "pgf-backup:rollout_order: the rollout order is the backup account's"),
        ("prod", _set("plans", {}), "pgf-backup:plans: only the backup account holds plans per tier"),
        ("backup", _set("buckets", {}), "pgf-backup:buckets: application data is protected in its workload stack"),
        ("backup", _set("aws_config_rules", {}), "pgf-backup:aws_config_rules: not used by backup-account stacks"),
        ("backup", _set("tierr", "prod"), "unknown key. Did you mean 'tier'? ('tier' is a key of workload stacks)"),
        ("backup", _set("tier", "prod"), "pgf-backup:tier: only a workload stack has a tier"),
        # regions
        ("prod", _set("regions.primary", "ca-central-2"), "did you mean 'ca-central-1'?"),
        (
            "prod",
            _set("regions.copy", "ca-central-1"),
            "regions: copy region 'ca-central-1' equals the primary",
        ),
        # schedules
        ("prod", _set("plan.rules.daily.schedule", "cron(0 5 * * *)"), "has 5 cron fields; AWS needs 6"),
        ("prod", _set("plan.rules.daily.schedule", "cron(0 5 * * * *)"), "exactly one of day-of-month and day-of-week"),
        ("prod", _set("plan.rules.daily.schedule", "cron(0 25 ? * * *)"), "cron hours field '25': 25 is outside 0-23"),
        ("prod", _set("plan.rules.daily.schedule", "cron(0 5 ? * FUNDAY *)"), "day-of-week field"),
        ("prod", _set("plan.rules.daily.schedule", "every day"), "is not an AWS schedule"),
        ("prod", _set("plan.rules.daily.schedule", "rate(30 minutes)"), "at most once an hour"),
        ("prod", _set("plan.rules.daily.schedule", "rate(1 days)"), "use 'rate(1 day)'"),
        ("prod", _set("plan.rules.daily.timezone", "Mars/Olympus"), "is not an IANA time zone"),
        # lifecycle rules of AWS Backup
        (
            "prod",
            _set("plan.rules.yearly.cold_storage_after_days", 2500),
            "plan.rules.yearly: delete_after_days (2555) must be at least 90 days after cold_storage_after_days",
        ),
        ("prod", _set("plan.continuous.retention_days", 36), "plan.continuous.retention_days: Input should be less"),
        ("prod", _set("plan.continuous.retention_days", 0), "plan.continuous.retention_days: Input should be greater"),
        ("prod", _set("vaults.prod.lock.min_retention_days", 4000), "must be <= max_retention_days"),
        ("prod", _set("vaults.prod.lock.min_retention_days", 0), "vaults.prod.lock.min_retention_days"),
        ("prod", _set("vaults.prod.lock.changeable_for_days", 2), "vaults.prod.lock.changeable_for_days"),
        ("prod", _delete("vaults.prod.lock.changeable_for_days"), "compliance mode needs changeable_for_days"),
        ("lab", _set("vaults.lab.lock.changeable_for_days", 3), "changeable_for_days makes the lock a compliance"),
        # tier bounds
        ("prod", _set("plan.rules.daily.delete_after_days", 30), "below the prod minimum of 35 days"),
        ("lab", _set("plan.rules.weekly.delete_after_days", 30), "above the lab maximum of 14 days"),
        (
            "dev",
            _set("plan.continuous.retention_days", 21),
            "continuous.retention_days: 21 is above the dev maximum",
        ),
        ("prod", _set("tier_bounds.prod", {"min_days": 30, "max_days": 3650}), "below the strategy's prod floor"),
        ("prod", _set("vaults.prod.lock.min_retention_days", 20), "below the prod minimum of 35 days"),
        ("lab", _set("vaults.lab.lock.min_retention_days", 10), "outside the lock of vault 'lab' (10-14 days)"),
        # vault names
        ("prod", _set("vaults.prod.name", "p"), "does not match the allowed pattern"),
        ("prod", _set("vaults.prod.name", "pgf prod!"), "vaults.prod.name"),
        ("prod", _set("vaults.prod.name", "x" * 51), "vaults.prod.name"),
        ("prod", _set("vaults.prod.tier", "dev"), "only hosts vaults of its own tier"),
        # plans, copies and the scheduling modes
        ("prod", _set("plan.rules.continuous", {"schedule": "rate(1 day)", "delete_after_days": 35}), "reserved"),
        (
            "prod",
            _set("plan.rules.daily.copies", {"copy_region": {"delete_after_days": 20}}),
            "plan.rules.daily.copies.copy_region.delete_after_days: 20 is below the prod minimum",
        ),
        (
            "lab",
            _set("plan.rules.daily.copies", {"backup_account": {"delete_after_days": 30}}),
            "copies.backup_account.delete_after_days: 30 is above the lab maximum",
        ),
        ("prod", _set("scheduling", "org"), "pgf-backup:scheduling: 'org' is not allowed"),
        ("prod", _set("scheduling", "organization"), "in organization mode the plan comes from the backup stack"),
        ("backup", _set("scheduling", "organization"), "plans: organization mode needs a plan per tier"),
        (
            "backup",
            _set("plans", {"lab": {"rules": {"d": {"schedule": "rate(1 day)", "delete_after_days": 7}}}}),
            "plans: only used in organization mode",
        ),
        (
            "prod",
            _set("vaults.prod.air_gapped", {"min_retention_days": 35, "max_retention_days": 40}),
            "air-gapped vaults live in the backup account",
        ),
        ("prod", _set("organization.policy_targets", {"prod": ["not-an-ou"]}), "organization.policy_targets.prod.0"),
        ("prod", _set("plan.selection.resources", ["s3://bucket"]), "plan.selection.resources.0"),
    ],
)
def test_bad_config_is_refused_naming_the_key(project: Project, stack: str, mutation: Mutation, expected: str) -> None:
    assert expected in _error(project, stack, mutation)


@pytest.mark.parametrize(
    ("stack", "mutation"),
    [
        ("prod", _set("plan.rules.daily.schedule", "cron(15 3 ? * MON-FRI *)")),
        ("prod", _set("plan.rules.daily.schedule", "cron(0 5 L * ? *)")),
        ("prod", _set("plan.rules.daily.schedule", "cron(0 0/6 ? * * *)")),
        ("prod", _set("plan.rules.daily.schedule", "rate(12 hours)")),
        ("prod", _set("plan.rules.daily.schedule", "rate(1 day)")),
        ("prod", _set("plan.rules.yearly.cold_storage_after_days", 2465)),
        (
            "prod",
            _each(
                _set("regions.primary", "us-gov-west-1"),
                _set(
                    "region_resource_types.us-gov-west-1",
                    {"opt_in": ["Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3"], "management": FULLY_MANAGED},
                ),
            ),
        ),
        ("prod", _delete("regions.copy")),
        ("lab", _set("tier_bounds.lab", {"min_days": 7, "max_days": 30})),
        ("lab", _delete("vaults.lab.lock")),
        ("backup", _set("vaults.prod.lock.changeable_for_days", 7)),
    ],
)
def test_valid_variants_are_accepted(project: Project, stack: str, mutation: Mutation) -> None:
    assert isinstance(config_of(_mutated(project, stack, mutation)), tuple(ROLE_MODELS.values()))


def test_tier_bounds_are_configurable(project: Project) -> None:
    message = _error(project, "lab", _set("plan.rules.weekly.delete_after_days", 21))
    assert "above the lab maximum of 14 days" in message
    cfg = config_of(
        _mutated(
            project,
            "lab",
            _set("tier_bounds.lab", {"min_days": 7, "max_days": 30}),
            _delete("vaults.lab.lock"),
            _set("plan.rules.weekly.delete_after_days", 21),
        )
    )
    assert cfg.plan is not None and cfg.plan.rules["weekly"].delete_after_days == 21


def test_every_problem_is_reported_at_once(project: Project) -> None:
    message = _error(project, "prod", _set("accounts.prod", "12"), _set("regions.primary", "ca-central-2"))
    assert "accounts.prod" in message and "regions.primary" in message


def test_derived_values(project: Project) -> None:
    cfg = project.load_config("prod")
    assert cfg.account_id == "400000000040"
    assert cfg.vault_name("prod") == "pgf-prod"
    assert cfg.role_arn("400000000040", "r") == "arn:aws:iam::400000000040:role/r"
    assert project.load_config("backup").account_id == "100000000010"


def test_organization_mode_needs_targets_and_an_organization(project: Project) -> None:
    plan = {"rules": {"daily": {"schedule": "rate(1 day)", "delete_after_days": 35}}}
    message = _error(
        project,
        "backup",
        _set("scheduling", "organization"),
        _set("plans", {"prod": plan}),
        _set("organization", {}),
    )
    assert "organization.id: organization mode needs the organization id" in message
    assert "organization.policy_targets.prod: where the prod BACKUP_POLICY is attached" in message


def test_organization_mode_copies_checked_against_central_locks(project: Project) -> None:
    plan = {
        "rules": {"daily": {"schedule": "rate(1 day)", "delete_after_days": 35}},
        "copy_to_air_gapped": True,
        "continuous": {"retention_days": 10},
    }
    message = _error(
        project,
        "backup",
        _set("scheduling", "organization"),
        _set("plans", {"prod": plan, "lab": {"rules": {"d": {"schedule": "rate(1 day)", "delete_after_days": 7}}}}),
        _set("organization.policy_targets", {"prod": ["ou-abcd-12345678"], "lab": ["r-abcd"]}),
        _set("vaults.prod.air_gapped", {"min_retention_days": 40, "max_retention_days": 3650}),
    )
    assert (
        "plans.prod.rules.daily.delete_after_days: 35 is outside the lock of vault 'prod (air-gapped)' (40-3650"
        in message
    )
    # continuous PITR window may be shorter than the prod floor, its copies may not
    assert "plans.prod.continuous.retention_days: 10 is below the prod minimum" in message
    assert "plans.lab" not in message


@pytest.mark.parametrize(
    ("stack", "mutation", "expected"),
    [
        ("prod", _set("accounts.prod", 400000000040), "is a number: quote account ids in YAML"),
        ("prod", _set("plan.rules.daily.delete_after_days", True), "is a boolean; a number of days is expected"),
        ("prod", _set("plan.rules.daily.schedule", "cron(0/0 5 ? * * *)"), "step '0' must be a number of at least 1"),
        ("prod", _set("plan.rules.yearly.schedule", "cron(0 5 1 1 ? 2030-2025)"), "the range 2030-2025 goes backwards"),
        ("prod", _set("plan.rules.daily.timezone", "localtime"), "is not an IANA time zone"),
        ("prod", _set("plan.rules.daily.timezone", "America/Toront"), "did you mean 'America/Toronto'?"),
        ("prod", _set("tags.extra", {"aws:owner": "x"}), "the 'aws:' prefix is reserved"),
        ("prod", _set("plan.rules.daily.recovery_point_tags", {"aws:x": "y"}), "the 'aws:' prefix is reserved"),
        ("prod", _set("tags.application", "pgf app"), "pgf-backup:tags.application"),
        (
            "backup",
            _set("vaults.prod.name", "p" * 45),
            "the vault name '" + "p" * 45 + "-air-gapped' (from tags.application and the key, or vaults.prod.name) "
            "must be 2-50",
        ),
        (
            "prod",
            _set("plan.rules", {f"r{i}": {"schedule": "rate(1 day)", "delete_after_days": 35} for i in range(10)}),
            "11 rules (continuous backup included), AWS Backup allows 10 per plan",
        ),
        ("prod", _set("databases.pgf-core.region", "ca-west-1"), "backup plans and selections are regional"),
        ("prod", _delete("databases.pgf-core.kms_key_arn"), "databases.pgf-core.kms_key_arn: required"),
        (
            "prod",
            _set("buckets.pgf-exports-prod.transitions", [{"days": 200, "storage_class": "DEEP_ARCHIVE"}]),
            "does not back up objects in GLACIER (Flexible Retrieval) or DEEP_ARCHIVE",
        ),
        (
            "prod",
            _set("buckets.pgf-exports-prod.transitions", [{"days": 10, "storage_class": "STANDARD_IA"}]),
            "STANDARD_IA after 30 days at the earliest, not 10",
        ),
        (
            "prod",
            _set(
                "buckets.pgf-exports-prod.transitions",
                [{"days": 90, "storage_class": "GLACIER_IR"}, {"days": 60, "storage_class": "STANDARD_IA"}],
            ),
            "days [90, 60] must increase",
        ),
    ],
)
def test_values_aws_would_reject_are_refused(project: Project, stack: str, mutation: Mutation, expected: str) -> None:
    assert expected in _error(project, stack, mutation)


def test_one_problem_is_reported_once(project: Project) -> None:
    message = _error(project, "lab", _set("plan.rules.weekly.delete_after_days", 30))
    assert message.count("plan.rules.weekly.delete_after_days: 30 is above the lab maximum") == 1


# -- vault notification events -------------------------------------------------------------------

DEPRECATED_EVENTS = (
    "BACKUP_JOB_SUCCESSFUL",
    "BACKUP_JOB_FAILED",
    "BACKUP_JOB_EXPIRED",
    "RESTORE_JOB_SUCCESSFUL",
    "RESTORE_JOB_FAILED",
    "BACKUP_PLAN_CREATED",
    "BACKUP_PLAN_MODIFIED",
)
# "The following events are supported" (PutBackupVaultNotifications API reference).
SUPPORTED_EVENTS = (
    "BACKUP_JOB_STARTED",
    "BACKUP_JOB_COMPLETED",
    "COPY_JOB_STARTED",
    "COPY_JOB_SUCCESSFUL",
    "COPY_JOB_FAILED",
    "RESTORE_JOB_STARTED",
    "RESTORE_JOB_COMPLETED",
    "RECOVERY_POINT_MODIFIED",
    "S3_BACKUP_OBJECT_FAILED",
    "S3_RESTORE_OBJECT_FAILED",
)


@pytest.mark.parametrize("event", DEPRECATED_EVENTS)
def test_deprecated_vault_events_are_refused_naming_the_key(project: Project, event: str) -> None:
    message = _error(project, "prod", _set("vaults.prod.notify_events", ["COPY_JOB_FAILED", event]))
    assert f"pgf-backup:vaults.prod.notify_events.1: {event!r} is a deprecated vault event" in message
    assert f"Supported: {', '.join(SUPPORTED_EVENTS)}." in message
    assert "EventBridge rules" in message


def test_unknown_vault_events_are_refused_listing_only_supported_ones(project: Project) -> None:
    message = _error(project, "backup", _set("vaults.prod.notify_events", ["BACKUP_JOB_FAILURE"]))
    assert "pgf-backup:vaults.prod.notify_events.0: 'BACKUP_JOB_FAILURE' is not allowed" in message
    assert not [event for event in DEPRECATED_EVENTS if event in message]


def test_every_supported_vault_event_is_accepted(project: Project) -> None:
    cfg = config_of(_mutated(project, "prod", _set("vaults.prod.notify_events", list(SUPPORTED_EVENTS))))
    assert cfg.vaults["prod"].notify_events == SUPPORTED_EVENTS


@pytest.mark.parametrize("stack", ["backup", "lab", "dev", "prod"])
def test_default_and_shipped_vault_events_are_all_sent_by_aws(project: Project, stack: str) -> None:
    cfg = project.load_config(stack)
    for key, vault in cfg.vaults.items():
        assert set(vault.notify_events) <= set(SUPPORTED_EVENTS), key
        # The shipped stacks keep the default: completed (failed ones included) backups and failed copies.
        assert {"BACKUP_JOB_COMPLETED", "COPY_JOB_FAILED"} <= set(vault.notify_events), key


# -- region settings: every resource type AWS Backup offers in each region -------------------------


def _region_types(region: str, opt_in: list[str], management: dict[str, bool] | None = None) -> Mutation:
    return _set(
        f"region_resource_types.{region}",
        {"opt_in": opt_in, "management": FULLY_MANAGED if management is None else management},
    )


OFFERED = ["Aurora", "CloudFormation", "DynamoDB", "EBS", "EC2", "EFS", "RDS", "S3", "SAP HANA on Amazon EC2"]


@pytest.mark.parametrize("stack", ["lab", "dev", "prod"])
def test_shipped_workload_stacks_list_the_types_of_both_regions(project: Project, stack: str) -> None:
    cfg = project.load_config(stack)
    assert set(cfg.region_resource_types) == {"ca-central-1", "ca-west-1"}
    for listed in cfg.region_resource_types.values():
        assert set(cfg.services) <= set(listed.opt_in)
        assert listed.management == FULLY_MANAGED
    assert not hasattr(project.load_config("backup"), "region_resource_types")  # a key of workload stacks only


def test_each_region_of_a_workload_stack_needs_its_resource_types(project: Project) -> None:
    message = _error(project, "lab", _delete("region_resource_types.ca-west-1"))
    assert (
        "pgf-backup:region_resource_types.ca-west-1: missing: list what `aws backup describe-region-settings "
        "--region ca-west-1` returns in this account" in message
    )
    assert "ca-central-1" not in message


def test_a_service_the_region_does_not_offer_is_refused(project: Project) -> None:
    message = _error(project, "dev", _region_types("ca-west-1", [t for t in OFFERED if t not in ("EFS", "S3")]))
    assert "pgf-backup:services: EFS is not offered by AWS Backup in ca-west-1" in message
    assert "pgf-backup:services: S3 is not offered by AWS Backup in ca-west-1" in message
    assert "ca-central-1" not in message
    cfg = config_of(_mutated(project, "dev", _region_types("ca-west-1", OFFERED), _set("services", ["EBS", "RDS"])))
    assert cfg.services == ("EBS", "RDS")


@pytest.mark.parametrize(
    ("management", "refused"),
    [({}, ["DynamoDB", "EFS"]), ({"DynamoDB": True}, ["EFS"]), ({"DynamoDB": False, "EFS": True}, ["DynamoDB"])],
)
def test_fully_managed_services_need_full_management(
    project: Project, management: dict[str, bool], refused: list[str]
) -> None:
    message = _error(project, "prod", _region_types("ca-central-1", OFFERED, management))
    for service in refused:
        assert f"pgf-backup:region_resource_types.ca-central-1.management.{service}: must be true" in message
    assert message.count("must be true") == len(refused)
    # Without DynamoDB and EFS in services, nothing needs full management.
    assert config_of(_mutated(project, "prod", _region_types("ca-central-1", OFFERED, {}), _set("services", ["S3"])))


@pytest.mark.parametrize("resource_type", ["S3;", " EBS", "", "x" * 51])
def test_resource_type_names_follow_aws(project: Project, resource_type: str) -> None:
    message = _error(project, "lab", _region_types("ca-central-1", [*OFFERED, resource_type]))
    assert "pgf-backup:region_resource_types.ca-central-1.opt_in." in message


def test_the_backup_account_sets_no_region_settings(project: Project) -> None:
    message = _error(project, "backup", _region_types("ca-central-1", OFFERED))
    assert "pgf-backup:region_resource_types: only workload stacks manage AWS Backup region settings" in message


# -- the management stack (role: management) ----------------------------------------------------


def _management(project: Project, *mutations: Mutation) -> dict[str, Any]:
    """The backup stack's shared keys as a management stack (what tests/conftest.add_management_stack writes)."""
    from pgf_backup.config import MANAGEMENT_KEYS

    values = {k: v for k, v in stack_values(project, "backup").items() if k.split(":", 1)[1] in MANAGEMENT_KEYS}
    values["pgf-backup:role"] = "management"
    values["pgf-backup:accounts"] = {**values["pgf-backup:accounts"], "management": "900000000090"}
    values["pgf-backup:organization"] = {"id": "o-pgfexample01", "root_id": "r-pgf0"}
    for mutate in mutations:
        mutate(values)
    return values


@pytest.mark.parametrize("scheduling", ["account", "organization"])
def test_a_management_stack_needs_no_vault(project: Project, scheduling: str) -> None:
    cfg = config_of(_management(project, _set("scheduling", scheduling)))
    assert isinstance(cfg, ManagementStack) and not hasattr(cfg, "vaults")
    assert cfg.account_id == "900000000090"


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (_set("vaults", {"lab": {"tier": "lab"}}), "pgf-backup:vaults: not used by the management stack"),
        (_set("vaultz", {}), "Did you mean 'vaults'? ('vaults' is a key of backup-account and workload stacks)"),
        (_set("tier", "prod"), "pgf-backup:tier: not used by the management stack"),
        (
            _set("plan", {"rules": {"daily": {"schedule": "cron(0 5 ? * * *)", "delete_after_days": 7}}}),
            "pgf-backup:plan: not used",
        ),
        (_set("buckets", {}), "pgf-backup:buckets: not used by the management stack"),
        (_set("databases", {}), "pgf-backup:databases: not used by the management stack"),
        (_set("rollout_order", ["lab"]), "pgf-backup:rollout_order: not used by the management stack"),
        (_delete("accounts.management"), "pgf-backup:accounts: the management stack deploys into the organization's"),
        (_set("accounts.management", "100000000010"), "pgf-backup:accounts.management: 100000000010 is the backup"),
        (
            _each(_set("scheduling", "organization"), _set("organization", {"id": "o-pgfexample01"})),
            "pgf-backup:organization.root_id: organization mode's delegation policy names the organization's root",
        ),
        (_set("organization.root_id", "root"), "pgf-backup:organization.root_id: 'root' does not match"),
    ],
)
def test_bad_management_config_is_refused_naming_the_key(project: Project, mutation: Mutation, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_of(_management(project, mutation))
    assert expected in str(caught.value)


def test_management_keys_name_what_is_allowed(project: Project) -> None:
    with pytest.raises(ConfigError) as caught:
        config_of(_management(project, _set("vaults", {"lab": {"tier": "lab"}})))
    assert "allowed keys: accounts, iam, operations, organization, regions, role, scheduling, tags" in str(caught.value)


@pytest.mark.parametrize("stack", ["backup", "lab"])
def test_other_stacks_still_need_a_vault(project: Project, stack: str) -> None:
    assert "pgf-backup:vaults: at least one vault is needed" in _error(project, stack, _set("vaults", {}))


def test_the_management_account_is_not_a_workload_account(project: Project) -> None:
    values = _mutated(project, "backup", _set("accounts.management", "900000000090"))
    assert "900000000090" not in config_of(values).workload_account_ids


def test_the_vault_events_of_limits_are_the_api_references_lists() -> None:
    """limits' supported and deprecated vault events are the lists PutBackupVaultNotifications documents."""
    from pgf_backup.limits import DEPRECATED_VAULT_EVENTS, SUPPORTED_VAULT_EVENTS

    assert SUPPORTED_VAULT_EVENTS == SUPPORTED_EVENTS
    assert DEPRECATED_VAULT_EVENTS == DEPRECATED_EVENTS


def test_shipped_operations_are_shared_by_every_stack(project: Project) -> None:
    # Set once in Pulumi.yaml: every stack reads the same contacts and targets.
    seen = {stack: project.load_config(stack).operations for stack in ("backup", "lab", "dev", "prod")}
    assert len({ops.model_dump_json() for ops in seen.values()}) == 1
    ops = seen["prod"]
    assert ops.rto_hours.of("prod") == 4
    assert ops.escalation[0].contact == ops.contacts[0].name


def test_operations_default_when_absent(project: Project) -> None:
    cfg = config_of(_mutated(project, "prod", _delete("operations")))
    assert cfg.operations.contacts == ()
    assert cfg.operations.rto_hours.of("prod") == 4.0


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (
            _set("operations.escalation", [{"after_minutes": 0, "contact": "Nobody"}]),
            "pgf-backup:operations: escalation[0].contact: 'Nobody' is not a contact's name",
        ),
        (
            _set(
                "operations.escalation",
                [{"after_minutes": 30, "contact": "PGF on-call"}, {"after_minutes": 0, "contact": "PGF on-call"}],
            ),
            "escalation[1].after_minutes: 0 comes after a step at 30",
        ),
        (
            _set("operations.contacts", [{"name": "A", "role": "r", "email": "not-an-address"}]),
            "operations.contacts.0.email",
        ),
        (_set("operations.rto_hours.prod", 0), "operations.rto_hours.prod"),
        (_set("operations.rto_hours.prod", 200), "operations.rto_hours.prod"),
        (
            _set(
                "operations.contacts",
                [
                    {"name": "A", "role": "r", "email": "a@example.com"},
                    {"name": "A", "role": "s", "email": "b@example.com"},
                ],
            ),
            "contacts: 'A' is listed more than once",
        ),
    ],
)
def test_bad_operations_are_refused_naming_the_key(project: Project, mutation: Mutation, expected: str) -> None:
    assert expected in _error(project, "prod", mutation)
