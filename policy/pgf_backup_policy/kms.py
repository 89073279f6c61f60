"""kms-key-hardening: rotation, deletion window, no open key policy, and prod keys guarded against deletion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pgf_backup_policy.documents import DocumentError, deny_gaps, principal_is_everyone, statements
from pgf_backup_policy.model import Context, as_bool, as_int, is_unknown
from pgf_backup_policy.vaults import KMS_KEY, KMS_REPLICA_KEY

KEY_TYPES: Final = frozenset({KMS_KEY, KMS_REPLICA_KEY})
DEFAULT_DELETION_WINDOW_DAYS: Final = 30  # what AWS applies when none is given
PROD_MIN_DELETION_WINDOW_DAYS: Final = 30
MIN_DELETION_WINDOW_DAYS: Final = 7
# Turning rotation off weakens a prod key as surely as disabling it: both are reserved to break-glass.
KEY_DELETION_ACTIONS: Final = ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation")
KEY_POLICY_ACTIONS: Final = ("kms:PutKeyPolicy",)


def _rotation(props: Mapping[str, Any]) -> list[str]:
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    usage = props.get("keyUsage") or "ENCRYPT_DECRYPT"
    rotation = props.get("enableKeyRotation")
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT" or is_unknown(rotation):
        return []  # AWS only rotates symmetric encryption keys
    if as_bool(rotation) is not True:
        return ["key rotation is off: set enableKeyRotation=True (AWS rotates the key material yearly)"]
    return []


def _deletion_window(props: Mapping[str, Any], prod: bool) -> list[str]:
    value = props.get("deletionWindowInDays")
    if is_unknown(value):
        return []
    days = DEFAULT_DELETION_WINDOW_DAYS if value is None else as_int(value)
    floor = PROD_MIN_DELETION_WINDOW_DAYS if prod else MIN_DELETION_WINDOW_DAYS
    if days is None or days < floor:
        return [
            f"deletionWindowInDays is {days}; {'prod' if prod else 'this tier'} needs at least {floor} days "
            "to notice and cancel a scheduled deletion"
        ]
    return []


def _policy(props: Mapping[str, Any], ctx: Context, prod: bool) -> list[str]:
    document = props.get("policy")
    if is_unknown(document):
        return []
    if not document:
        if prod:
            return [
                "no key policy: AWS's default policy lets every administrator of the account schedule deletion; "
                "prod keys need a policy that denies it to all but the break-glass role"
            ]
        return []
    try:
        found = statements(document)
        problems = [
            f"statement {s.get('Sid') or index} allows {s.get('Action')} to every principal ('*') with no condition"
            for index, s in enumerate(found)
            if s.get("Effect") == "Allow" and principal_is_everyone(s) and not s.get("Condition")
        ]
        if prod:
            settings = ctx.settings
            problems += deny_gaps(document, KEY_DELETION_ACTIONS, [settings.break_glass_role], ctx.account, "kms")
            problems += deny_gaps(
                document, KEY_POLICY_ACTIONS, [settings.deploy_role, settings.break_glass_role], ctx.account, "kms"
            )
    except DocumentError as error:
        return [f"key policy: {error}"]
    return [f"key policy: {problem}" for problem in problems]


def kms_key_hardening_violations(resource_type: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    """Rotation on, a long deletion window, no open policy; in prod, deletion and policy changes denied."""
    if resource_type not in KEY_TYPES:
        return []
    prod = ctx.tier_of(props) == "prod"
    # A replica shares its primary's key material and rotation: the primary is checked instead.
    rotation = _rotation(props) if resource_type == KMS_KEY else []
    return rotation + _deletion_window(props, prod) + _policy(props, ctx, prod)
