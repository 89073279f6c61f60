"""Coverage: the AWS Config rule of resources not protected by a plan, and the CloudWatch dashboards."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pulumi

from components.coverage import CoverageRule, CoverageRuleArgs, rules_for
from components.dashboards import (
    AWS_NAMESPACES,
    BackupDashboard,
    BackupDashboardArgs,
    CoverageSource,
    DashboardRow,
    MonitoringLink,
    MonitoringLinkArgs,
    MonitoringSink,
    MonitoringSinkArgs,
    OrganizationDashboard,
    RestoreMetrics,
)
from pgf_backup import availability, backup_outputs
from pgf_backup.config import BackupAccountStack, VaultStack, WorkloadStack, partition
from pgf_backup.constants import (
    METRIC_NAMESPACE,
    METRIC_RECOVERY_POINT_AGE,
    METRIC_RESTORE_DURATION,
    STACK_BACKUP,
    STACK_MANAGEMENT,
    TAG_BACKUP_ENABLED,
    TAG_BACKUP_TIER,
    TIERS,
)
from pgf_backup.providers import Providers

RESTORE_METRICS = RestoreMetrics(METRIC_NAMESPACE, METRIC_RESTORE_DURATION, METRIC_RECOVERY_POINT_AGE)
# What a workload account's link shares with the backup account: the dashboards' namespaces, nothing else.
SHARED_NAMESPACES = (*AWS_NAMESPACES, METRIC_NAMESPACE)

_WIDGETS = (
    "Each row is one account and region. **Backup jobs by state**: jobs created, completed, failed, aborted and "
    "expired (never started in their window), per vault. **Copy jobs**: counted under the vault they copy *into*. "
    "**Restore jobs**: completed and failed. **Recovery points**: created, partial, and expired but not deleted. "
    "**Coverage**: resources tagged `backup:enabled=true` that AWS Config found not protected by a backup plan "
    "(each change to NON_COMPLIANT; the rules run every 24 hours). **Last restore test**: the latest restore "
    "test's duration and the age of the recovery point it restored. Values are sums per period; AWS Backup "
    "reports only nonzero values, so an empty graph means none."
)


def _oam_note(region: str) -> str:
    return (
        f"dashboards: CloudWatch cross-account observability is not offered in {region} (botocore's endpoint data for "
        "`oam`; https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Unified-Cross-Account.html): "
        "no sink or link there, and the organization dashboard has no row for it"
    )


def _dashboard_name(cfg: VaultStack) -> str:
    return f"{cfg.tags.application}-{cfg.stack_tier or STACK_BACKUP}-backup"


def _tags(cfg: VaultStack) -> dict[str, str]:
    return {TAG_BACKUP_TIER: cfg.stack_tier} if cfg.stack_tier else {}


def coverage_rule_prefix(application: str, tier: str) -> str:
    """The name prefix of a workload account's coverage rules (the organization dashboard names them too)."""
    return f"{application}-{tier}"


# ---------------------------------------------------------------------------------------------
# Backup account


def build_backup_account(cfg: BackupAccountStack, providers: Providers, job_alerts: dict[str, Any]) -> dict[str, Any]:
    """The organization-wide dashboard (one row per workload account and region); the outputs it adds."""
    settings = cfg.dashboards
    if not settings.enabled:
        return {"notes": ["dashboards: off (dashboards.enabled: false)"]}
    notes: list[str] = []
    tested = tuple(sorted(tier for tier, testing in cfg.restore_testing.items() if testing.enabled))
    own = BackupDashboard(
        "dashboard",
        BackupDashboardArgs(
            dashboard_name=_dashboard_name(cfg),
            title=f"AWS Backup: backup account {cfg.account_id}",
            description=_WIDGETS + " Central and air-gapped vaults receive the workload accounts' copies.",
            rows=tuple(
                DashboardRow(
                    label=f"backup account {cfg.account_id}, {region}",
                    region=region,
                    restore_test_tiers=tested,
                    coverage_absent="The backup account protects no resources of its own: coverage is checked in the "
                    "workload accounts.",
                )
                for region in cfg.regions.all
            ),
            period_seconds=settings.period_seconds,
            range_days=settings.range_days,
            restore_metrics=RESTORE_METRICS,
        ),
        providers.opts(),
    )
    dashboards: dict[str, Any] = {"account": own.dashboard_name}
    workloads = {
        name: account for name, account in cfg.accounts.items() if name not in (STACK_BACKUP, STACK_MANAGEMENT)
    }
    if not settings.cross_account:
        notes.append("dashboards: no organization dashboard (dashboards.cross_account: false)")
    elif not workloads:
        notes.append("dashboards: no organization dashboard: no workload account in accounts")
    else:
        offered = availability.oam_regions()
        regions = [r for r in cfg.regions.all if r in offered]
        notes.extend(_oam_note(r) for r in cfg.regions.all if r not in offered)
        sinks: dict[str, pulumi.Output[str]] = {}
        for region in regions:
            sink = MonitoringSink(
                f"monitoring-sink-{region}",
                MonitoringSinkArgs(
                    sink_name=f"{cfg.tags.application}-backup-monitoring",
                    source_account_ids=tuple(cfg.workload_account_ids),
                    partition=partition(region),
                ),
                providers.opts(region),
            )
            sinks[region] = sink.sink_arn
        if regions:
            rows = tuple(
                DashboardRow(
                    label=f"{name} ({account}), {region}",
                    region=region,
                    account_id=account,
                    # The workload stacks name their rules from their tier (coverage_rule_prefix); an account
                    # that is not a tier's has no rule this stack can name.
                    coverage=CoverageSource(
                        f"{coverage_rule_prefix(cfg.tags.application, name)}-coverage-non-compliant"
                    )
                    if name in TIERS and region == cfg.regions.primary
                    else None,
                    coverage_absent="Coverage is checked in the primary region of the tier accounts.",
                    restore_test_tiers=(name,) if name in TIERS else (),
                )
                for name, account in sorted(workloads.items(), key=lambda item: item[1])
                for region in regions
            )
            org = OrganizationDashboard(
                "organization-dashboard",
                BackupDashboardArgs(
                    dashboard_name=f"{cfg.tags.application}-organization-backup",
                    title="AWS Backup across the organization",
                    description=_WIDGETS + " Metrics come from the workload accounts through CloudWatch "
                    "cross-account observability (their links to this account's sink share only the AWS/Backup, "
                    "AWS/Events and PGF/Backup namespaces); restore tests run here by default (see the backup "
                    "account's own dashboard).",
                    rows=rows,
                    period_seconds=settings.period_seconds,
                    range_days=settings.range_days,
                    restore_metrics=RESTORE_METRICS,
                ),
                providers.opts(),
            )
            dashboards["organization"] = org.dashboard_name
            dashboards["sinks"] = sinks
    outputs: dict[str, Any] = {"dashboards": dashboards}
    if notes:
        outputs["notes"] = notes
    return outputs


# ---------------------------------------------------------------------------------------------
# Workload accounts


def _sink_arn(region: str, outputs: Mapping[str, Any]) -> str:
    """The backup stack's sink in `region` (`dashboards.sinks.<region>`, which `backup_outputs.problems` requires)."""
    arn = backup_outputs.read(outputs).sink_arn(region)
    if not arn:
        raise ValueError(
            f"the backup stack does not export dashboards.sinks.{region} (its dashboards.enabled and "
            "dashboards.cross_account must be on, and it must be deployed first)"
        )
    return arn


def build_workload(
    cfg: WorkloadStack,
    providers: Providers,
    job_alerts: dict[str, Any],
    backup: pulumi.Output[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The coverage Config rule and the account's dashboard; the outputs they add.

    `backup`: the backup stack's (checked) outputs; with it, this account links its metrics to the backup
    account's sink in each region (the organization dashboard).
    """
    primary, tier = cfg.regions.primary, cfg.tier
    prefix = coverage_rule_prefix(cfg.tags.application, tier)
    notes: list[str] = []
    outputs: dict[str, Any] = {}
    coverage: CoverageSource | None = None
    rules_cfg = cfg.aws_config_rules
    if not (rules_cfg.enabled and rules_cfg.backup_coverage):
        notes.append("coverage: no AWS Config rule (aws_config_rules.enabled or .backup_coverage is false)")
    else:
        chosen, skipped = rules_for(cfg.services, primary)
        notes.extend(skipped)
        if chosen:
            resource_tags = {TAG_BACKUP_ENABLED: "true"}
            component = CoverageRule(
                "coverage",
                CoverageRuleArgs(
                    name_prefix=prefix,
                    rules=chosen,
                    # `backup:enabled=true` alone: a resource that asks for backup but lacks the tier (or
                    # application) tag the plan selects on is exactly what the rule must report.
                    resource_tags=resource_tags,
                    topic_arn=job_alerts[primary]["topic_arn"],
                    tags=_tags(cfg),
                ),
                providers.opts(),
            )
            coverage = CoverageSource(component.event_rule_name, tuple(component.rule_names))
            outputs["coverage"] = {
                "region": primary,
                "config_rules": component.rule_names,
                "resource_tags": resource_tags,
                "non_compliant_alert": {
                    "rule": component.event_rule_name,
                    "topic_arn": job_alerts[primary]["topic_arn"],
                },
            }
            if cfg.regions.copy_region is not None:
                notes.append(
                    f"coverage: evaluated in {primary} only: the plan backs up the resources of the primary region "
                    f"(and copies them to {cfg.regions.copy_region})"
                )
    settings = cfg.dashboards
    if not settings.enabled:
        notes.append("dashboards: off (dashboards.enabled: false)")
    else:
        tested = (tier,) if cfg.restore_testing is not None and cfg.restore_testing.enabled else ()
        dashboard = BackupDashboard(
            "dashboard",
            BackupDashboardArgs(
                dashboard_name=_dashboard_name(cfg),
                title=f"AWS Backup: {tier} account {cfg.account_id}",
                description=_WIDGETS
                + (
                    " Config rules: "
                    + ", ".join(f"`{n}`" for n in coverage.config_rule_names)
                    + " (`aws configservice "
                    "describe-compliance-by-config-rule --config-rule-names <rule>` lists the current state)."
                    if coverage
                    else ""
                ),
                rows=tuple(
                    DashboardRow(
                        label=f"{tier} account {cfg.account_id}, {region}",
                        region=region,
                        coverage=coverage if region == primary else None,
                        coverage_absent=f"Coverage is checked in {primary}.",
                        restore_test_tiers=tested,
                    )
                    for region in cfg.regions.all
                ),
                period_seconds=settings.period_seconds,
                range_days=settings.range_days,
                restore_metrics=RESTORE_METRICS,
            ),
            providers.opts(),
        )
        dashboards: dict[str, Any] = {"account": dashboard.dashboard_name}
        if settings.cross_account:
            dashboards["links"] = _links(cfg, providers, backup, notes)
        outputs["dashboards"] = dashboards
    if notes:
        outputs["notes"] = notes
    return outputs


def _links(
    cfg: WorkloadStack, providers: Providers, backup: pulumi.Output[Mapping[str, Any]] | None, notes: list[str]
) -> dict[str, Any]:
    """This account's links to the backup account's sinks (one per region where OAM is offered)."""
    if backup is None:
        notes.append(
            "dashboards: this account is not linked to the backup account's sinks (the backup stack's outputs were "
            "not given to the observability builder): the organization dashboard shows nothing for it"
        )
        return {}
    linked = availability.linked_regions(cfg)
    notes.extend(_oam_note(region) for region in cfg.regions.all if region not in linked)
    links: dict[str, Any] = {}
    label = f"{cfg.tags.application}-{cfg.tier}"
    for region in linked:
        link = MonitoringLink(
            f"monitoring-link-{region}",
            MonitoringLinkArgs(
                sink_arn=backup.apply(functools.partial(_sink_arn, region)),
                label=label,
                namespaces=SHARED_NAMESPACES,
                tags=_tags(cfg),
            ),
            providers.opts(region),
        )
        links[region] = {"label": label, "link_arn": link.link_arn}
    return links
