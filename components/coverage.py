"""CoverageRule: AWS Config's managed rules that report the resources tagged for backup but not protected by a
backup plan, in one account and region, and an EventBridge rule that alerts when one becomes NON_COMPLIANT.

AWS Config has no single managed rule for every resource type: `BACKUP_RESOURCES_PROTECTED_BY_BACKUP_PLAN` is
the name of an AWS Backup Audit Manager *control* ("Choosing your controls",
https://docs.aws.amazon.com/aws-backup/latest/devguide/choosing-controls.html), not a Config rule identifier. The
Config managed rules are one per resource type, `<TYPE>_RESOURCES_PROTECTED_BY_BACKUP_PLAN`, each with the optional
parameters `resourceTags` ("Tags for [...] for the rule to check, in JSON format {"tagkey" : "tagValue"}"),
`resourceId`, `crossRegionList`, `crossAccountList`, `maxRetentionDays`, `minRetentionDays` and
`backupVaultLockCheck`; periodic trigger. Pages, one per type (the same parameters each):
https://docs.aws.amazon.com/config/latest/developerguide/s3-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/rds-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/aurora-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/dynamodb-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/efs-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/ebs-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/ec2-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/fsx-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/storagegateway-resources-protected-by-backup-plan.html
https://docs.aws.amazon.com/config/latest/developerguide/virtualmachine-resources-protected-by-backup-plan.html
(the same data as moto's `config/resources/aws_managed_rules.json.gz`; tests/components/test_coverage.py compares).

Only the copy-free parameter `resourceTags` is set: copies, retention and Vault Lock are the Audit Manager
framework's controls. AWS Config must be recording the resource types in the account (README, prerequisites).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# AWS Backup resource type (config `services`) -> (managed rule identifier, the Config resource type it evaluates).
COVERAGE_RULES: dict[str, tuple[str, str]] = {
    "Aurora": ("AURORA_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::RDS::DBCluster"),
    "DynamoDB": ("DYNAMODB_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::DynamoDB::Table"),
    "EBS": ("EBS_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::EC2::Volume"),
    "EC2": ("EC2_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::EC2::Instance"),
    "EFS": ("EFS_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::EFS::FileSystem"),
    "FSx": ("FSX_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::FSx::FileSystem"),
    "RDS": ("RDS_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::RDS::DBInstance"),
    "S3": ("S3_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::S3::Bucket"),
    "Storage Gateway": ("STORAGEGATEWAY_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::StorageGateway::Volume"),
    "VirtualMachine": ("VIRTUALMACHINE_RESOURCES_PROTECTED_BY_BACKUP_PLAN", "AWS::BackupGateway::VirtualMachine"),
}

# "AWS Region: All supported AWS regions except [...]" on each rule's page, as region codes (the names are
# botocore's endpoint descriptions): New Zealand, Beijing, Thailand, Malaysia, Mexico (Central), Tel Aviv, Taipei,
# Canada West (Calgary), Ningxia.
_NOT_OFFERED = frozenset(
    {
        "ap-southeast-6",
        "cn-north-1",
        "ap-southeast-7",
        "ap-southeast-5",
        "mx-central-1",
        "il-central-1",
        "ap-east-2",
        "ca-west-1",
        "cn-northwest-1",
    }
)
# virtualmachine-resources-protected-by-backup-plan also excludes Jakarta, UAE, Hyderabad, Melbourne, Spain, Zurich.
NOT_OFFERED_IN: dict[str, frozenset[str]] = {
    identifier: _NOT_OFFERED
    | (
        {"ap-southeast-3", "me-central-1", "ap-south-2", "ap-southeast-4", "eu-south-2", "eu-central-2"}
        if identifier.startswith("VIRTUALMACHINE")
        else frozenset()
    )
    for identifier, _ in COVERAGE_RULES.values()
}
COVERAGE_RULE_PAGE = "https://docs.aws.amazon.com/config/latest/developerguide/{slug}.html"

# PutConfigRule: ConfigRuleName 1-128 characters; PutRule (EventBridge): Name [.\-_A-Za-z0-9]{1,64} (botocore).
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,40}")
_TAG_KEY = re.compile(r"[\w.:/=+@ -]{1,128}")


def rule_page(identifier: str) -> str:
    """The AWS Config documentation page of a managed rule."""
    return COVERAGE_RULE_PAGE.format(slug=identifier.lower().replace("_", "-"))


def rules_for(services: Sequence[str], region: str) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """(service -> (identifier, Config type)) of the rules that apply in `region`, and a note per service left out."""
    chosen: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    for service in services:
        rule = COVERAGE_RULES.get(service)
        if rule is None:
            notes.append(
                f"coverage: AWS Config has no managed rule checking that {service} resources are protected by a "
                "backup plan (https://docs.aws.amazon.com/config/latest/developerguide/managed-rules-by-aws-config.html);"
                " the AWS Backup Audit Manager framework covers them"
            )
        elif region in NOT_OFFERED_IN[rule[0]]:
            notes.append(f"coverage: {rule[0]} is not offered in {region} ({rule_page(rule[0])})")
        else:
            chosen[service] = rule
    return chosen, notes


@dataclass(frozen=True)
class CoverageRuleArgs:
    """The coverage rules of one account and region."""

    # Names: `<prefix>-coverage-<service>` (Config rules) and `<prefix>-coverage-non-compliant` (EventBridge).
    name_prefix: str
    # service (an AWS Backup resource type of COVERAGE_RULES) -> (identifier, Config resource type), from `rules_for`.
    rules: Mapping[str, tuple[str, str]]
    # The tags a resource carries to ask for backup: the rules evaluate those resources only.
    resource_tags: Mapping[str, str]
    # The topic NON_COMPLIANT changes are published to (the JobAlerts topic: its policies admit EventBridge of
    # this account).
    topic_arn: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse arguments AWS Config or EventBridge would refuse, before anything is registered."""
        if not _PREFIX.fullmatch(self.name_prefix):
            raise ValueError(f"coverage: name prefix {self.name_prefix!r} must be 1-40 letters, digits, '-' or '_'")
        if not self.rules:
            raise ValueError("coverage: no resource type to check (rules is empty)")
        for service, rule in self.rules.items():
            if COVERAGE_RULES.get(service) != rule:
                raise ValueError(f"coverage: {service!r} -> {rule} is not one of the managed rules {COVERAGE_RULES}")
        if not self.resource_tags:
            raise ValueError("coverage: resource_tags is empty: the rules would evaluate every resource")
        for key, value in self.resource_tags.items():
            if not _TAG_KEY.fullmatch(key) or not 0 < len(value) <= 256:
                raise ValueError(f"coverage: {key}={value!r} is not a tag AWS accepts")
        if len(self.input_parameters) > 1024:
            raise ValueError("coverage: the rules' input parameters exceed PutConfigRule's 1024 characters")

    @property
    def input_parameters(self) -> str:
        """The managed rules' InputParameters: `resourceTags`, a string holding the tags as a JSON object."""
        return json.dumps({"resourceTags": json.dumps(dict(self.resource_tags), separators=(",", ":"))})

    def rule_name(self, service: str) -> str:
        """The Config rule name of a service (lower case, spaces as '-')."""
        return f"{self.name_prefix}-coverage-{service.lower().replace(' ', '-')}"


class CoverageRule(pulumi.ComponentResource):
    """AWS Config's `<TYPE>_RESOURCES_PROTECTED_BY_BACKUP_PLAN` rules over the tagged resources, alerted when one
    becomes NON_COMPLIANT."""

    rule_names: list[str]
    event_rule_name: str

    def __init__(self, name: str, args: CoverageRuleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:CoverageRule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rules = self._create_rules(name, args, child)
        self.rule_names = [args.rule_name(s) for s in args.rules]
        self.event_rule_name = f"{args.name_prefix}-coverage-non-compliant"
        self._create_alert(name, args, rules, child)
        self.register_outputs({"rule_names": self.rule_names, "event_rule_name": self.event_rule_name})

    @staticmethod
    def _create_rules(name: str, args: CoverageRuleArgs, opts: pulumi.ResourceOptions) -> list[aws.cfg.Rule]:
        created: list[aws.cfg.Rule] = []
        for service, (identifier, config_type) in args.rules.items():
            created.append(
                aws.cfg.Rule(
                    f"{name}-{service.lower().replace(' ', '-')}",
                    name=args.rule_name(service),
                    description=(
                        f"pgf-backup: {service} resources tagged "
                        + ", ".join(f"{k}={v}" for k, v in args.resource_tags.items())
                        + " must be protected by a backup plan"
                    ),
                    source=aws.cfg.RuleSourceArgs(owner="AWS", source_identifier=identifier),
                    scope=aws.cfg.RuleScopeArgs(compliance_resource_types=[config_type]),
                    input_parameters=args.input_parameters,
                    # Periodic rules; "By default, rules with a periodic trigger are evaluated every 24 hours"
                    # (PutConfigRule, https://docs.aws.amazon.com/config/latest/APIReference/API_ConfigRule.html):
                    # said explicitly, the dashboards describe it.
                    maximum_execution_frequency="TwentyFour_Hours",
                    tags=args.tags,
                    opts=opts,
                )
            )
        return created

    def _create_alert(
        self, name: str, args: CoverageRuleArgs, rules: list[aws.cfg.Rule], opts: pulumi.ResourceOptions
    ) -> None:
        """A resource found unprotected publishes to the topic; the rule's `TriggeredRules` metric feeds the dashboards.

        AWS Config sends "Config Rules Compliance Change" events with `configRuleName` and
        `newEvaluationResult.complianceType` (https://docs.aws.amazon.com/config/latest/developerguide/monitor-config-with-cloudwatchevents.html).
        """
        rule = aws.cloudwatch.EventRule(
            f"{name}-non-compliant",
            name=self.event_rule_name,
            description="A resource tagged for backup is not protected by a backup plan (pgf-backup coverage)",
            event_pattern=json.dumps(
                {
                    "source": ["aws.config"],
                    "detail-type": ["Config Rules Compliance Change"],
                    "detail": {
                        "configRuleName": self.rule_names,
                        "newEvaluationResult": {"complianceType": ["NON_COMPLIANT"]},
                    },
                }
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(rules))),
        )
        aws.cloudwatch.EventTarget(f"{name}-non-compliant-topic", rule=rule.name, arn=args.topic_arn, opts=opts)
