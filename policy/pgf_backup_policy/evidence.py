"""Evidence rules: prod's protected resource types are restore-tested; the backup account produces audit reports.

Both are stack rules that read settings the shared `Settings` does not model (`restoreTesting`), so their checks
take the policy's config as given and the stack's own context (its name and tier) besides its resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pgf_backup.constants import RESTORE_TESTING_TYPES, TAG_BACKUP_TIER, TIERS
from pgf_backup_policy.model import Context, Finding, Resource, decoded, is_unknown
from pgf_backup_policy.vaults import AIR_GAPPED_VAULT, VAULT

RESTORE_TESTING_PLAN: Final = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
RESTORE_TESTING_SELECTION: Final = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
FRAMEWORK: Final = "aws:backup/framework:Framework"
REPORT_PLAN: Final = "aws:backup/reportPlan:ReportPlan"

RESTORE_TESTING_RULE_TYPES: Final = frozenset({RESTORE_TESTING_PLAN, RESTORE_TESTING_SELECTION})
AUDIT_RULE_TYPES: Final = frozenset({VAULT, AIR_GAPPED_VAULT, FRAMEWORK, REPORT_PLAN})

# Where a tier's restore tests run: on the copies in the backup account (the default, an isolated account), or in
# the workload account itself (`restore_testing` set in its stack file).
LOCATION_BACKUP_ACCOUNT: Final = "backup-account"
LOCATION_WORKLOAD: Final = "workload"
LOCATIONS: Final = (LOCATION_BACKUP_ACCOUNT, LOCATION_WORKLOAD)
# The tier whose restore testing is mandatory (the strategy's periodic restore tests of production).
TESTED_TIER: Final = "prod"

# The report plans the backup account keeps for its auditors: backup, copy and restore jobs, control and resource
# compliance (issue 12, "Audit Manager"). The templates are ReportSetting.ReportTemplate's values in botocore's
# backup model and https://docs.aws.amazon.com/aws-backup/latest/devguide/create-report-plan-api.html.
REQUIRED_REPORTS: Final[Mapping[str, str]] = {
    "BACKUP_JOB_REPORT": "backup jobs",
    "COPY_JOB_REPORT": "copy jobs",
    "RESTORE_JOB_REPORT": "restore jobs",
    "CONTROL_COMPLIANCE_REPORT": "control compliance",
    "RESOURCE_COMPLIANCE_REPORT": "resource compliance",
}


# ---------------------------------------------------------------------------------------------
# The `restoreTesting` setting


@dataclass(frozen=True)
class TierTesting:
    """Where a tier's restore tests run, which resource types the tier protects, and the stacks that protect them."""

    location: str
    types: tuple[str, ...]
    stacks: tuple[str, ...] = ()


def restore_testing_scope(config: Mapping[str, Any] | None) -> dict[str, TierTesting]:
    """The `restoreTesting` setting ({tier: {location, types, stacks}}) as data; refuses bad values (ValueError)."""
    given = decoded((config or {}).get("restoreTesting"))
    given = {} if given is None else given
    if not isinstance(given, Mapping):
        raise ValueError("policy config 'restoreTesting' must map a tier to {location, types}")
    scope: dict[str, TierTesting] = {}
    for tier, entry in given.items():
        where = f"policy config 'restoreTesting.{tier}'"
        if tier not in TIERS or not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a tier ({', '.join(TIERS)}) -> {{location, types}}")
        location = entry.get("location")
        if location not in LOCATIONS:
            raise ValueError(f"{where}.location: {location!r} is not one of {', '.join(LOCATIONS)}")
        types = entry.get("types")
        if not isinstance(types, list) or any(t not in RESTORE_TESTING_TYPES for t in types):
            raise ValueError(
                f"{where}.types: expected a list of restore testing resource types "
                f"({', '.join(RESTORE_TESTING_TYPES)}), not {types!r}"
            )
        stacks = entry.get("stacks", [])
        if not isinstance(stacks, list) or not all(isinstance(s, str) for s in stacks):
            raise ValueError(f"{where}.stacks: expected a list of stack names, not {stacks!r}")
        scope[str(tier)] = TierTesting(str(location), tuple(sorted(set(types))), tuple(stacks))
    return scope


# ---------------------------------------------------------------------------------------------
# restore-testing-covers-prod


def _tested_types(resources: Sequence[Resource], tier: str) -> tuple[set[str], bool]:
    """(types with a selection under a plan of this stack tagged `tier`, whether unknown values hide some)."""
    plans: dict[tuple[Any, ...], Resource] = {}
    uncertain = False
    for candidate in resources:
        if candidate.type != RESTORE_TESTING_PLAN:
            continue
        if is_unknown(candidate.props.get("name")):
            uncertain = True
            continue
        plans[(*candidate.where, candidate.props.get("name"))] = candidate
    covered: set[str] = set()
    for selection in resources:
        if selection.type != RESTORE_TESTING_SELECTION:
            continue
        kind = selection.props.get("protectedResourceType")
        name = selection.props.get("restoreTestingPlanName")
        if is_unknown(kind) or is_unknown(name):
            uncertain = True
            continue
        # A selection belongs to the plan it names in its own account and region: CreateRestoreTestingSelection puts
        # the plan's name in its regional endpoint's URI (/restore-testing/plans/{RestoreTestingPlanName}/selections,
        # https://docs.aws.amazon.com/aws-backup/latest/devguide/API_CreateRestoreTestingSelection.html).
        plan = plans.get((*selection.where, name))
        if plan is None:
            continue
        if is_unknown(plan.props.get("tags")):
            uncertain = True
        elif plan.ctx.tags_of(plan.props).get(TAG_BACKUP_TIER) == tier and isinstance(kind, str):
            covered.add(kind)
    return covered, uncertain


def _restore_testing_fix(tier: str, testing: TierTesting, here: str) -> str:
    if here == LOCATION_WORKLOAD:
        return (
            f"add them to this stack's restore testing (`restore_testing` in its stack file), or remove "
            f"`restore_testing` there to test the {tier} copies in the backup account; if the stack does not use a "
            "type, remove it from its `services`"
        )
    files = ", ".join(f"Pulumi.{s}.yaml" for s in testing.stacks) or f"the {tier} stacks' files"
    return (
        f"add them to the backup account's restore testing of {tier} (`restore_testing.{tier}` in "
        f"Pulumi.backup.yaml), or test {tier} in its workload account (`restore_testing` in {files}); if {tier} "
        f"does not use a type, remove it from `services` in {files}"
    )


def restore_testing_covers_prod_violations(
    resources: Sequence[Resource], config: Mapping[str, Any] | None = None, stack: Context | None = None
) -> list[Finding]:
    """Every type prod protects has a restore testing selection under a plan tagged `backup:tier=prod`.

    Checked where prod's tests run: in the backup account's stack (no tier) when `restoreTesting.prod.location`
    is `backup-account`, in the prod stack itself when it is `workload`.
    """
    testing = restore_testing_scope(config).get(TESTED_TIER)
    if testing is None or not testing.types:
        return []
    tier = (stack or (resources[0].ctx if resources else Context(stack=""))).stack_tier
    if tier is None:
        here = LOCATION_BACKUP_ACCOUNT
    elif tier == TESTED_TIER:
        here = LOCATION_WORKLOAD
    else:
        return []
    if testing.location != here:
        return []
    covered, uncertain = _tested_types(resources, TESTED_TIER)
    missing = [t for t in testing.types if t not in covered]
    if not missing or uncertain:
        return []
    where = "the backup account" if here == LOCATION_BACKUP_ACCOUNT else "its own account"
    plural = "s" if len(testing.stacks) > 1 else ""
    by = f" (stack{plural} {', '.join(testing.stacks)})" if testing.stacks else ""
    return [
        Finding(
            "",
            f"{TESTED_TIER} protects {', '.join(testing.types)}{by} and is restore-tested in {where}, but this stack "
            f"has no restore testing selection of {', '.join(missing)} under a restore testing plan tagged "
            f"{TAG_BACKUP_TIER}={TESTED_TIER}: {_restore_testing_fix(TESTED_TIER, testing, here)}",
        )
    ]


# ---------------------------------------------------------------------------------------------
# audit-evidence-present


def _delivery_bucket(props: Mapping[str, Any]) -> Any:
    channel = decoded(props.get("reportDeliveryChannel"))
    if is_unknown(channel):
        return channel
    return channel.get("s3BucketName") if isinstance(channel, Mapping) else None


def _template(props: Mapping[str, Any]) -> Any:
    setting = decoded(props.get("reportSetting"))
    if is_unknown(setting):
        return setting
    return setting.get("reportTemplate") if isinstance(setting, Mapping) else None


def _label(resource: Resource) -> str:
    name = resource.props.get("name")
    return name if isinstance(name, str) and name else resource.name


def audit_evidence_present_violations(
    resources: Sequence[Resource], config: Mapping[str, Any] | None = None, stack: Context | None = None
) -> list[Finding]:
    """In the backup account, when a prod vault exists: a framework with controls, and report plans of backup,
    copy and restore jobs, control and resource compliance, each delivered to a bucket."""
    context = stack or (resources[0].ctx if resources else Context(stack=""))
    if context.stack_tier is not None:
        return []  # a workload stack: the backup account keeps the organization's audit evidence
    prod_vaults = [
        r for r in resources if r.type in (VAULT, AIR_GAPPED_VAULT) and r.ctx.tier_of(r.props) == TESTED_TIER
    ]
    if not prod_vaults:
        return []
    fix = "(`audit` in Pulumi.backup.yaml)"
    findings: list[Finding] = []
    frameworks = [r for r in resources if r.type == FRAMEWORK]
    with_controls = [r for r in frameworks if is_unknown(r.props.get("controls")) or r.props.get("controls")]
    if not with_controls:
        findings.append(
            Finding(
                "",
                f"this backup account holds {TESTED_TIER} vaults but no AWS Backup Audit Manager framework with "
                f"controls (aws.backup.Framework): the {TESTED_TIER} backups have no compliance evidence {fix}",
            )
        )
    covered: set[str] = set()
    uncertain = False
    for plan in resources:
        if plan.type != REPORT_PLAN:
            continue
        template, bucket = _template(plan.props), _delivery_bucket(plan.props)
        if is_unknown(template):
            uncertain = True
            continue
        if not is_unknown(bucket) and not (isinstance(bucket, str) and bucket):
            findings.append(
                Finding(
                    plan.urn,
                    f"report plan {_label(plan)} ({template}) delivers its reports to no bucket: set "
                    "reportDeliveryChannel.s3BucketName to the reports bucket",
                )
            )
            continue
        if isinstance(template, str):
            covered.add(template)
    missing = [f"{what} ({template})" for template, what in REQUIRED_REPORTS.items() if template not in covered]
    if missing and not uncertain:
        findings.append(
            Finding(
                "",
                f"this backup account holds {TESTED_TIER} vaults but no report plan (aws.backup.ReportPlan) of "
                f"{', '.join(missing)} delivered to a bucket: auditors have no record of them {fix}",
            )
        )
    return findings
