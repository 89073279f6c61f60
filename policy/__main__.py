"""The pgf-backup policy pack (`pulumi preview --policy-pack policy`): builds the PolicyPack, nothing else."""

from pgf_backup_policy.registry import PACK_DESCRIPTION, PACK_NAME, policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description=PACK_DESCRIPTION,
)
