"""Config of AWS Backup restore testing (`pgf-backup:restore_testing`).

Each field maps to a parameter of CreateRestoreTestingPlan / CreateRestoreTestingSelection (botocore's backup
model, `RestoreTestingPlanForCreate`, `RestoreTestingRecoveryPointSelection`, `RestoreTestingSelectionForCreate`),
with AWS's ranges. The metadata overrides are limited to the keys AWS lists as overridable for each type
("Restore testing inferred metadata",
https://docs.aws.amazon.com/aws-backup/latest/devguide/restore-testing-inferred-metadata.html).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from pgf_backup.config.sections import LogRetentionDays
from pgf_backup.config.types import Model, Schedule, TimeZone
from pgf_backup.limits import LAMBDA_MAX_TIMEOUT_SECONDS, LAMBDA_MEMORY_MB

# The protected resource types of the strategy that restore testing accepts ("Supported resource types accepted
# include ... Aurora, DynamoDB, EBS, EFS, RDS, S3": botocore's RestoreTestingSelectionForCreate.ProtectedResourceType,
# pgf_backup.constants.RESTORE_TESTING_TYPES). "RDS" is an RDS DB instance, "Aurora" an Aurora DB cluster; an EBS
# volume is restored unattached (nothing reaches it).
RestoreTestingType = Literal["Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3"]
ALL_TYPES: tuple[RestoreTestingType, ...] = ("Aurora", "DynamoDB", "EBS", "EFS", "RDS", "S3")
# The types whose restore needs a network of this account (a DB subnet group and security groups): without them
# AWS Backup infers the default VPC ("if the default is not present ... the restore will not be successful", and
# the default VPC is not an isolated network).
NETWORK_TYPES: tuple[RestoreTestingType, ...] = ("Aurora", "RDS")

# Overridable metadata keys per type, as AWS lists them (keys are not case sensitive: compared in lower case).
OVERRIDABLE: dict[RestoreTestingType, frozenset[str]] = {
    "DynamoDB": frozenset({"encryptiontype", "kmsmasterkeyarn"}),
    "EBS": frozenset({"availabilityzone", "iops", "kmskeyid", "throughput", "volumesize", "volumetype"}),
    "EFS": frozenset({"kmskeyid", "performancemode"}),
    "Aurora": frozenset(
        {
            "availabilityzones",
            "databasename",
            "dbclusterparametergroupname",
            "dbsubnetgroupname",
            "enablecloudwatchlogsexports",
            "enableiamdatabaseauthentication",
            "engine",
            "enginemode",
            "engineversion",
            "kmskeyid",
            "port",
            "optiongroupname",
            "scalingconfiguration",
            "vpcsecuritygroupids",
        }
    ),
    "RDS": frozenset(
        {
            "allocatedstorage",
            "availabilityzones",
            "dbinstanceclass",
            "dbname",
            "dbparametergroupname",
            "dbsubnetgroupname",
            "domain",
            "domainiamrolename",
            "enablecloudwatchlogsexports",
            "enableiamdatabaseauthentication",
            "iops",
            "licensemodel",
            "multiaz",
            "optiongroupname",
            "port",
            "processorfeatures",
            "publiclyaccessible",
            "storagetype",
            "vpcsecuritygroupids",
        }
    ),
    "S3": frozenset({"encryptiontype", "kmskey", "restoreacls"}),
}
# Overrides the program sets itself (network isolation, the vault's key): config may not change them.
MANAGED_OVERRIDES: dict[RestoreTestingType, frozenset[str]] = {
    "Aurora": frozenset({"dbsubnetgroupname", "vpcsecuritygroupids", "kmskeyid"}),
    "RDS": frozenset({"dbsubnetgroupname", "vpcsecuritygroupids", "publiclyaccessible"}),
    "EFS": frozenset({"kmskeyid"}),
    "EBS": frozenset({"kmskeyid"}),
    "DynamoDB": frozenset(),
    "S3": frozenset(),
}


def _cron_only(value: str) -> str:
    # "A CRON expression in specified timezone when a restore testing plan is executed" (botocore's
    # RestoreTestingPlanForCreate.ScheduleExpression): a rate() is not documented there.
    if not value.startswith("cron("):
        raise ValueError(f"{value!r}: a restore testing plan takes a cron expression, e.g. 'cron(0 5 ? * SUN *)'")
    return value


RestoreSchedule = Annotated[Schedule, AfterValidator(_cron_only)]
# CreateDBSubnetGroup: "Must contain no more than 255 letters, numbers, periods, underscores, spaces, or hyphens.
# Must not be default." (botocore's rds model, DBSubnetGroupName).
SubnetGroupName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._ -]{1,255}$")]
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")]


class RestoreNetwork(Model):
    """Where restored databases land: an isolated DB subnet group and its security groups, in the testing account."""

    db_subnet_group_name: SubnetGroupName
    security_group_ids: Annotated[tuple[SecurityGroupId, ...], Field(min_length=1, max_length=5)]

    @model_validator(mode="after")
    def _not_default(self) -> RestoreNetwork:
        if self.db_subnet_group_name.lower() == "default":
            raise ValueError(
                "db_subnet_group_name: 'default' is the default VPC's subnet group, not an isolated network "
                "(and RDS refuses the name: 'Must not be default'); name a subnet group of private subnets"
            )
        if len(set(self.security_group_ids)) != len(self.security_group_ids):
            raise ValueError("security_group_ids: lists a security group more than once")
        return self


class RestoreValidation(Model):
    """The validation function: what it samples, how long it may run, its logs."""

    # Objects of a restored bucket whose checksum is recomputed (evenly spaced over the sorted keys).
    s3_sample_size: Annotated[int, Field(ge=1, le=1000)] = 20
    # Objects larger than this are counted, not downloaded for a checksum.
    s3_checksum_max_bytes: Annotated[int, Field(ge=1, le=5 * 1024**3)] = 64 * 1024**2
    # A restored bucket with fewer objects fails ("missing objects"); an empty restore proves nothing.
    s3_min_objects: Annotated[int, Field(ge=0)] = 1
    timeout_seconds: Annotated[int, Field(ge=60, le=LAMBDA_MAX_TIMEOUT_SECONDS)] = LAMBDA_MAX_TIMEOUT_SECONDS
    memory_mb: Annotated[int, Field(ge=LAMBDA_MEMORY_MB[0], le=LAMBDA_MEMORY_MB[1])] = 512
    log_retention_days: LogRetentionDays = 365


class RestoreTesting(Model):
    """AWS Backup restore testing of a tier's recovery points, with a validation function and RTO/RPO evidence."""

    enabled: bool = True
    # When the plan runs (AWS's default is daily at 05:00 UTC; weekly here: each run restores every protected
    # resource of the selected types once, a real and billed restore).
    schedule: RestoreSchedule = "cron(0 5 ? * SUN *)"
    timezone: TimeZone = "UTC"
    # Hours after the scheduled time before a job that has not started is cancelled (AWS: 1 to 168, default 24).
    start_window_hours: Annotated[int, Field(ge=1, le=168)] = 24
    # The latest recovery point created within this many days is restored (AWS: 1 to 365, default 30). "The
    # selection window is calculated from the actual job execution time, not the plan's scheduled start time":
    # keep it above the backup interval plus the start window.
    selection_window_days: Annotated[int, Field(ge=1, le=365)] = 7
    # Hours the restored resource is kept for the validation function; AWS deletes it when a validation result is
    # posted or the window ends (botocore: 0 to 168; 0 would leave no time to validate).
    validation_window_hours: Annotated[int, Field(ge=1, le=168)] = 24
    # Cross-account copies of continuous backups are snapshots ("When a cross-Region or cross-account copy of a
    # continuous backup is made, the copied recovery point (backup) becomes a snapshot (periodic) backup",
    # https://docs.aws.amazon.com/aws-backup/latest/devguide/recov-point-create-a-copy.html).
    recovery_point_types: Annotated[tuple[Literal["SNAPSHOT", "CONTINUOUS"], ...], Field(min_length=1)] = ("SNAPSHOT",)
    # None: every type below that this config can restore in isolation (RDS and Aurora only with `network`; the
    # others are skipped with a note). Listed explicitly, a type that cannot be restored in isolation is refused.
    resource_types: tuple[RestoreTestingType, ...] | None = None
    network: RestoreNetwork | None = None
    # Further RestoreMetadataOverrides per type (AWS's overridable keys only; list values as JSON-array text).
    metadata_overrides: dict[RestoreTestingType, dict[str, str]] = Field(default_factory=dict)
    validation: RestoreValidation = RestoreValidation()

    @model_validator(mode="after")
    def _checks(self) -> RestoreTesting:
        errors: list[str] = []
        if self.resource_types is not None:
            if not self.resource_types:
                errors.append("resource_types: empty; list at least one type, or set enabled: false")
            if len(set(self.resource_types)) != len(self.resource_types):
                errors.append("resource_types: lists a type more than once")
            if self.network is None:
                for kind in self.resource_types:
                    if kind in NETWORK_TYPES:
                        errors.append(
                            f"resource_types: {kind} needs network.db_subnet_group_name and network.security_group_ids "
                            "(the isolated subnet group and security groups the restored database gets; without them "
                            f"AWS Backup restores into the default VPC); set network, or remove {kind}"
                        )
        if len(set(self.recovery_point_types)) != len(self.recovery_point_types):
            errors.append("recovery_point_types: lists a type more than once")
        for kind, overrides in self.metadata_overrides.items():
            for key in overrides:
                lower = key.lower()
                if lower not in OVERRIDABLE[kind]:
                    allowed = ", ".join(sorted(OVERRIDABLE[kind]))
                    errors.append(
                        f"metadata_overrides.{kind}.{key}: not an overridable key of {kind} restores (AWS's list, not "
                        f"case sensitive: {allowed})"
                    )
                elif lower in MANAGED_OVERRIDES[kind]:
                    errors.append(
                        f"metadata_overrides.{kind}.{key}: set by pgf-backup (network isolation and the vault's key); "
                        "configure network instead"
                    )
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def types(self) -> tuple[tuple[RestoreTestingType, ...], list[str]]:
        """The types tested, and a note for each default type left out (and why)."""
        if self.resource_types is not None:
            return self.resource_types, []
        if self.network is not None:
            return ALL_TYPES, []
        kept = tuple(t for t in ALL_TYPES if t not in NETWORK_TYPES)
        skipped = [
            f"{kind}: not restore-tested: restore_testing.network (an isolated DB subnet group and security groups) "
            "is not set, and without it AWS Backup would restore into the default VPC"
            for kind in NETWORK_TYPES
        ]
        return kept, skipped


def selection_name(*parts: str) -> str:
    """A restore testing plan or selection name: letters, digits and underscores, at most 50 (AWS's rule)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))
    if len(name) > 50:
        raise ValueError(f"{name!r}: restore testing names are at most 50 characters")
    return name
