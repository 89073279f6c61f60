"""BackupSettings: AWS Backup's settings of one account and region (region opt-in, or global settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class BackupSettingsArgs:
    """Region settings sent whole (opt-in and management maps), and/or the organization's global settings."""

    region_opt_in: Mapping[str, bool] = field(default_factory=dict)
    region_management: Mapping[str, bool] = field(default_factory=dict)
    # Only the organization's management account may set them (UpdateGlobalSettings).
    global_settings: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse an empty component and a management map without opt-in."""
        if not self.region_opt_in and not self.global_settings:
            raise ValueError("BackupSettings needs region opt-in preferences or global settings")
        if self.region_management and not self.region_opt_in:
            raise ValueError("BackupSettings: region management preferences go with the region's opt-in map")


class BackupSettings(pulumi.ComponentResource):
    """AWS Backup's account settings in the region of its provider."""

    def __init__(self, name: str, args: BackupSettingsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__("pgf:backup:BackupSettings", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # First created at the stack's top level under these names: the aliases keep them.
        if args.region_opt_in:
            # Whole maps (see pgf_backup.stacks): the provider reads back every type AWS lists.
            aws.backup.RegionSettings(
                f"{name}-region",
                resource_type_opt_in_preference=dict(args.region_opt_in),
                resource_type_management_preference=dict(args.region_management),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(aliases=[pulumi.Alias(name=name, parent=pulumi.ROOT_STACK_RESOURCE)])
                ),
            )
        if args.global_settings:
            aws.backup.GlobalSettings(
                f"{name}-global",
                global_settings=dict(args.global_settings),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(aliases=[pulumi.Alias(name=name, parent=pulumi.ROOT_STACK_RESOURCE)])
                ),
            )
        self.register_outputs({})
