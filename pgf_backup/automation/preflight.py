"""Checks before any stack runs: the Pulumi CLI, every stack's config, and the AWS accounts.

Everything here fails early and says what to do; nothing here changes anything anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from pulumi.automation import InvalidVersionError, PulumiCommand
from semver import VersionInfo

from pgf_backup.config import ConfigError, RegionResourceTypes, StackConfig, VaultStack, partition
from pgf_backup.constants import PROJECT, ROLE_WORKLOAD, STACK_BACKUP, STACK_MANAGEMENT
from pgf_backup.management import prerequisite_commands
from pgf_backup.project import Project

# The oldest CLI this driver is tested against: the floor of the `pulumi` SDK in pyproject.toml.
MIN_CLI_VERSION = "3.200.0"
INSTALL_HINT = (
    f"Install the Pulumi CLI (version {MIN_CLI_VERSION} or newer) and make sure `pulumi` is on PATH:\n"
    "  Linux/macOS:  curl -fsSL https://get.pulumi.com | sh   (or: brew install pulumi/tap/pulumi)\n"
    "  Windows:      choco install pulumi   (or: winget install pulumi)\n"
    "  details:      https://www.pulumi.com/docs/iac/download-install/\n"
    "then check with `pulumi version`. Without the CLI, `pgf-backup plan` (or `pgf-backup preview "
    "--offline`) evaluates the stacks offline."
)
PREFLIGHT_SESSION = f"{PROJECT}-preflight"
# Short-lived: preflight credentials only call sts:GetCallerIdentity, kms:GetKeyPolicy,
# backup:DescribeRegionSettings, config:DescribeConfigurationRecorders and config:DescribeConfigurationRecorderStatus.
PREFLIGHT_SESSION_SECONDS = 900
# The operations that would deploy (or show) the plan: the live checks of database keys, region
# settings and AWS Config recording run for them only.
LIVE_CHECKED_OPERATIONS = ("preview", "up")


@dataclass(frozen=True)
class Problem:
    """Something that must be fixed before the rollout can start."""

    message: str
    stack: str | None = None

    def __str__(self) -> str:
        return f"stack {self.stack}: {self.message}" if self.stack else self.message


class PreflightError(Exception):
    """Preflight found problems; nothing was run."""

    def __init__(self, problems: Sequence[Problem], warnings: Sequence[Problem] = ()) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)
        self.warnings = list(warnings)


# ---------------------------------------------------------------------------------------------
# The Pulumi CLI

CommandFactory = Callable[..., PulumiCommand]


def find_cli(factory: CommandFactory = PulumiCommand, minimum: str = MIN_CLI_VERSION) -> PulumiCommand:
    """The Pulumi CLI on PATH, at least `minimum`; PreflightError with the install hint otherwise."""
    try:
        return factory(version=VersionInfo.parse(minimum))
    except FileNotFoundError:
        reason = "the Pulumi CLI (`pulumi`) is not installed or not on PATH."
    except PermissionError as error:
        reason = f"the Pulumi CLI could not be started ({error})."
    except subprocess.CalledProcessError as error:
        reason = f"`pulumi version` failed with exit code {error.returncode}; the CLI installation looks broken."
    except InvalidVersionError as error:
        reason = f"the Pulumi CLI is not usable by this driver: {error}"
    raise PreflightError([Problem(f"{reason}\n{INSTALL_HINT}")])


# ---------------------------------------------------------------------------------------------
# Stack configuration


def load_configs(project: Project, stacks: Sequence[str]) -> dict[str, StackConfig]:
    """The validated config of `backup` and of each stack; every invalid stack file is reported."""
    configs: dict[str, StackConfig] = {}
    problems: list[Problem] = []
    for stack in dict.fromkeys([STACK_BACKUP, *stacks]):
        try:
            configs[stack] = project.load_config(stack)
        except ConfigError as error:
            problems.append(Problem(str(error), stack))
    if problems:
        raise PreflightError(problems)
    problems = consistency_problems(project, configs)
    if problems:
        raise PreflightError(problems)
    return configs


def consistency_problems(project: Project, configs: Mapping[str, StackConfig]) -> list[Problem]:
    """Across stack files: the same account ids and scheduling mode, and references to the stack the driver deploys."""
    problems: list[Problem] = []
    reference = configs.get(STACK_BACKUP)
    for stack, cfg in configs.items():
        if reference is not None and stack != STACK_BACKUP:
            # The backup stack writes the organization's policies or nothing: the modes cannot be mixed.
            if cfg.scheduling != reference.scheduling:
                problems.append(
                    Problem(
                        f"scheduling is {reference.scheduling!r} in {project.stack_file(STACK_BACKUP).name} but "
                        f"{cfg.scheduling!r} in {project.stack_file(stack).name}; switch every stack file together",
                        stack,
                    )
                )
            for name, account in cfg.accounts.items():
                expected = reference.accounts.get(name)
                if expected is not None and expected != account:
                    problems.append(
                        Problem(
                            f"accounts.{name} is {account} in {project.stack_file(stack).name} but {expected} in "
                            f"{project.stack_file(STACK_BACKUP).name}; every stack file must name the same accounts",
                            stack,
                        )
                    )
            # The management stack delegates to the backup account within this organization, and no other.
            org, expected_org = cfg.organization.id, reference.organization.id
            if org is not None and expected_org is not None and org != expected_org:
                problems.append(
                    Problem(
                        f"organization.id is {org} in {project.stack_file(stack).name} but {expected_org} in "
                        f"{project.stack_file(STACK_BACKUP).name}; every stack file must name the same organization",
                        stack,
                    )
                )
        if cfg.role == ROLE_WORKLOAD:
            _, project_name, stack_name = cfg.backup_stack.split("/")
            if (project_name, stack_name) != (project.name, STACK_BACKUP):
                problems.append(
                    Problem(
                        f"pgf-backup:backup_stack is {cfg.backup_stack!r}, but the driver deploys the backup "
                        f"account's stack as '<org>/{project.name}/{STACK_BACKUP}' (self-managed backends: "
                        f"'organization/{project.name}/{STACK_BACKUP}')",
                        stack,
                    )
                )
    return problems


def compliance_locked_vaults(cfg: StackConfig) -> list[str]:
    """Keys of the vaults whose config asks for a Vault Lock in compliance mode."""
    if not isinstance(cfg, VaultStack):
        return []
    return [key for key, vault in cfg.vaults.items() if vault.lock is not None and vault.lock.mode == "compliance"]


def destroy_refusal(cfg: StackConfig) -> str | None:
    """Why `destroy` is refused for this stack (a compliance-locked vault), or None."""
    locked = compliance_locked_vaults(cfg)
    if not locked or not isinstance(cfg, VaultStack):
        return None
    names = ", ".join(f"{key!r} ({cfg.vault_name(key)})" for key in locked)
    return (
        f"destroy refused: vault {names} holds a Vault Lock in compliance mode. Once its grace time "
        "(changeable_for_days after the lock was set) has passed, nobody - not the deploy role, not the "
        "account root, not AWS - can delete the vault or its recovery points before their retention ends, "
        "so a destroy would fail half-way. Within the grace time, change the lock to governance (or remove "
        "it) and run `pgf-backup up` first; after it, keep the vault: remove it from the configuration "
        "and from the stack's state (`pulumi state delete`), and let its recovery points expire."
    )


def destroy_problems(configs: Mapping[str, StackConfig], stacks: Sequence[str]) -> list[Problem]:
    """A problem for each chosen stack that `destroy` must not touch."""
    return [Problem(reason, stack) for stack in stacks if (reason := destroy_refusal(configs[stack]))]


def secrets_problems(
    backend_url: str, project: Project, stacks: Sequence[str], env: Mapping[str, str]
) -> list[Problem]:
    """Self-managed backends encrypt config secrets with a passphrase unless a stack names a provider."""
    if backend_url.startswith(("https://", "http://")):
        return []  # Pulumi Cloud manages the secrets
    if env.get("PULUMI_CONFIG_PASSPHRASE") is not None or env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return []
    without = [stack for stack in stacks if not _secrets_provider(project, stack)]
    if not without:
        return []
    files = ", ".join(project.stack_file(stack).name for stack in without)
    return [
        Problem(
            f"the backend {backend_url} encrypts each stack's secrets with a passphrase: set "
            f"PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE), or set secretsprovider "
            f"(e.g. awskms://...) in {files}"
        )
    ]


def _secrets_provider(project: Project, stack: str) -> str | None:
    try:
        settings = project.stack_settings(stack)
    except ConfigError:
        return None  # load_configs has already reported an unreadable stack file
    value = settings.get("secretsprovider")
    return str(value) if value else None


# ---------------------------------------------------------------------------------------------
# AWS accounts


class StsClient(Protocol):
    """The two STS calls preflight makes (a boto3 STS client has them)."""

    def assume_role(self, **kwargs: Any) -> Mapping[str, Any]:
        """sts:AssumeRole."""
        ...

    def get_caller_identity(self, **kwargs: Any) -> Mapping[str, Any]:
        """sts:GetCallerIdentity."""
        ...


# (region, credentials or None for the ambient ones) -> an STS client
StsFactory = Callable[[str, Mapping[str, str] | None], StsClient]


def _session(credentials: Mapping[str, str] | None) -> Any:
    """A boto3 session with `credentials` (from sts:AssumeRole), or with the ambient ones."""
    import boto3

    if credentials is None:
        return boto3.session.Session()
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _client_config() -> Any:
    """Standard retries and short timeouts."""
    from botocore.config import Config

    return Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=20)


def sts_client(region: str, credentials: Mapping[str, str] | None = None) -> StsClient:
    """A boto3 STS client for `region`, with standard retries and short timeouts."""
    return cast(StsClient, _session(credentials).client("sts", region_name=region, config=_client_config()))


class KmsClient(Protocol):
    """The KMS call preflight makes (a boto3 KMS client has it)."""

    def get_key_policy(self, **kwargs: Any) -> Mapping[str, Any]:
        """kms:GetKeyPolicy."""
        ...


# (region, credentials of the key's account) -> a KMS client
KmsFactory = Callable[[str, Mapping[str, str] | None], KmsClient]


def kms_client(region: str, credentials: Mapping[str, str] | None = None) -> KmsClient:
    """A boto3 KMS client for `region`, with standard retries and short timeouts."""
    return cast(KmsClient, _session(credentials).client("kms", region_name=region, config=_client_config()))


@dataclass(frozen=True)
class DeployTarget:
    """An account a stack deploys into, and the role its providers assume there."""

    stacks: tuple[str, ...]
    account_id: str
    role_arn: str
    region: str


def deploy_targets(configs: Mapping[str, StackConfig], stacks: Sequence[str]) -> list[DeployTarget]:
    """One target per (account, deploy role) of the chosen stacks."""
    found: dict[tuple[str, str], DeployTarget] = {}
    for stack in stacks:
        cfg = configs[stack]
        role_arn = cfg.role_arn(cfg.account_id, cfg.iam.deploy_role)
        key = (cfg.account_id, role_arn)
        previous = found.get(key)
        found[key] = DeployTarget(
            stacks=(*previous.stacks, stack) if previous else (stack,),
            account_id=cfg.account_id,
            role_arn=role_arn,
            region=cfg.regions.primary,
        )
    return list(found.values())


def verify_target(target: DeployTarget, sts: StsFactory) -> Problem | None:
    """Assume the deploy role and check that STS reports the configured account.

    NoCredentialsError propagates: it is the same answer for every account.
    """
    return _assume_target(target, sts)[0]


def _assume_target(target: DeployTarget, sts: StsFactory) -> tuple[Problem | None, Mapping[str, str] | None]:
    """verify_target, and the deploy role's credentials when the account is the configured one."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = ", ".join(target.stacks)
    try:
        assumed = sts(target.region, None).assume_role(
            RoleArn=target.role_arn,
            RoleSessionName=PREFLIGHT_SESSION,
            DurationSeconds=PREFLIGHT_SESSION_SECONDS,
        )
        identity = sts(target.region, assumed["Credentials"]).get_caller_identity()
    except NoCredentialsError:
        raise
    except ClientError as error:
        info = error.response.get("Error", {})
        return (
            Problem(
                f"cannot assume the deploy role {target.role_arn}: {info.get('Code', 'error')}: "
                f"{info.get('Message', error)}. The role must exist in account {target.account_id} and trust the "
                "identity running the rollout (docs/operations.md, 'Prerequisites')",
                where,
            ),
            None,
        )
    except BotoCoreError as error:
        return Problem(f"cannot reach AWS STS in {target.region}: {error}", where), None
    actual = identity.get("Account")
    if actual != target.account_id:
        return (
            Problem(
                f"the deploy role {target.role_arn} lands in account {actual}, but the configuration says "
                f"{target.account_id}: refusing to run anything (check the accounts map and the credentials)",
                where,
            ),
            None,
        )
    return None, assumed["Credentials"]


def account_problems(
    configs: Mapping[str, StackConfig], stacks: Sequence[str], sts: StsFactory = sts_client
) -> list[Problem]:
    """For each target account: the deploy role can be assumed and STS names that account."""
    return _verify_accounts(configs, stacks, sts)[0]


def _verify_accounts(
    configs: Mapping[str, StackConfig], stacks: Sequence[str], sts: StsFactory
) -> tuple[list[Problem], dict[str, Mapping[str, str]]]:
    """account_problems, and the deploy role credentials of each verified account (by account id)."""
    from botocore.exceptions import NoCredentialsError

    problems: list[Problem] = []
    credentials: dict[str, Mapping[str, str]] = {}
    for target in deploy_targets(configs, stacks):
        try:
            problem, assumed = _assume_target(target, sts)
        except NoCredentialsError:
            return [
                Problem(
                    "no AWS credentials found (environment, profile, SSO or instance role): sign in as an "
                    "identity that may assume the deploy roles, e.g. `aws sso login` and AWS_PROFILE"
                )
            ], {}
        if problem is not None:
            problems.append(problem)
        elif assumed is not None:
            credentials.setdefault(target.account_id, assumed)
    return problems, credentials


# ---------------------------------------------------------------------------------------------
# Database keys: their policies must admit the accounts that copy the snapshots
#
# RDS snapshots, and so AWS Backup's RDS and Aurora recovery points, keep the database's key; a copy into
# another account needs that key's policy to admit the account
# (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ShareSnapshot.html#USER_ShareSnapshot.Encrypted.KeyPolicy).
# The keys belong to the application stacks: preflight reads their policies and says what is missing.

# The IAM actions behind the statement's wildcards: each GenerateDataKey* operation of botocore's KMS model
# is authorized by the action of its name, and ReEncrypt by kms:ReEncryptFrom on the source key and
# kms:ReEncryptTo on the destination key (botocore's KMS model, ReEncrypt, "Required permissions").
KMS_ACTIONS_OF_WILDCARDS: Mapping[str, tuple[str, ...]] = {
    "kms:ReEncrypt*": ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
    "kms:GenerateDataKey*": (
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyPairWithoutPlaintext",
        "kms:GenerateDataKeyWithoutPlaintext",
    ),
}
# botocore's error codes for GetKeyPolicy (its model's `errors`), and the common one for a refusal
# (https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html: AccessDeniedException).
ACCESS_DENIED = "AccessDeniedException"
KEY_NOT_FOUND = "NotFoundException"
INVALID_ARN = "InvalidArnException"


def copy_actions() -> list[str]:
    """The concrete IAM actions the documented statement allows (its wildcards expanded)."""
    # Imported here: the components pull in pulumi_aws, which the CLI's other commands do not need.
    from components.rds_protection import COPY_KEY_POLICY_ACTIONS

    actions: list[str] = []
    for action in COPY_KEY_POLICY_ACTIONS:
        actions.extend(KMS_ACTIONS_OF_WILDCARDS.get(action, (action,)))
    return actions


@dataclass(frozen=True)
class DatabaseKey:
    """A database key whose policy must admit the accounts that copy the database's snapshots."""

    stack: str
    database: str
    key_arn: str
    destination_account_ids: tuple[str, ...]

    @property
    def account_id(self) -> str:
        """The account that owns the key (GetKeyPolicy works only there)."""
        return self.key_arn.split(":")[4]

    @property
    def region(self) -> str:
        """The key's region: KMS keys are regional."""
        return self.key_arn.split(":")[3]

    @property
    def partition(self) -> str:
        """The key's partition."""
        return self.key_arn.split(":")[1]


def database_keys(configs: Mapping[str, StackConfig], stacks: Sequence[str]) -> list[DatabaseKey]:
    """The customer-managed database keys of the chosen stacks whose snapshots are copied to the backup account."""
    keys: list[DatabaseKey] = []
    for stack in stacks:
        cfg = configs[stack]
        if cfg.role != ROLE_WORKLOAD:
            continue
        for name, database in cfg.databases.items():
            destinations = tuple(cfg.database_copy_accounts(name))
            if destinations and database.encryption == "customer" and database.kms_key_arn is not None:
                keys.append(DatabaseKey(stack, name, database.kms_key_arn, destinations))
    return keys


@dataclass(frozen=True)
class KeyPolicyVerdict:
    """What a key policy refuses (or may refuse) the destination accounts, by account."""

    missing: dict[str, list[str]] = field(default_factory=dict)
    uncertain: dict[str, list[str]] = field(default_factory=dict)


def key_policy_verdict(policy: str, key_arn: str, destination_account_ids: Iterable[str]) -> KeyPolicyVerdict:
    """Evaluate a key policy for each destination account and each action of the documented statement.

    An explicit Deny wins over any Allow; an action is allowed when an Allow without conditions covers
    it. Statements with conditions depend on the request, which preflight cannot know: an action only
    they allow, or that a conditional Deny may refuse, is uncertain rather than missing. Which statements
    cover a request is the offline evaluator's reading of IAM's rules (`pgf_backup.paths.evaluator`).
    """
    from pgf_backup.paths.evaluator import Principal, Request, covers

    try:
        document = json.loads(policy)
    except json.JSONDecodeError:
        document = {}
    found = document.get("Statement", []) if isinstance(document, Mapping) else []
    statements = [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, Mapping)]
    partition_ = key_arn.split(":")[1]
    verdict = KeyPolicyVerdict()
    for account in dict.fromkeys(destination_account_ids):
        # The destination account itself: the documented statement admits its root.
        principal = Principal(arn=f"arn:{partition_}:iam::{account}:root")
        for action in copy_actions():
            request = Request(principal, action, key_arn)
            try:
                applying = [s for s in statements if covers(s, request)]
            except ValueError as error:  # a policy AWS would not hold as written: say so, do not guess
                verdict.uncertain.setdefault(account, []).append(f"{action} (the policy cannot be read: {error})")
                continue
            denies = [s for s in applying if s.get("Effect") == "Deny"]
            allows = [s for s in applying if s.get("Effect") == "Allow"]
            if any(not s.get("Condition") for s in denies):
                verdict.missing.setdefault(account, []).append(action)
            elif any(not s.get("Condition") for s in allows):
                if denies:
                    verdict.uncertain.setdefault(account, []).append(f"{action} (a conditional Deny may refuse it)")
            elif allows:
                verdict.uncertain.setdefault(account, []).append(f"{action} (allowed only under a condition)")
            else:
                verdict.missing.setdefault(account, []).append(action)
    return verdict


def key_policy_findings(
    keys: Sequence[DatabaseKey], credentials: Mapping[str, Mapping[str, str]], kms: KmsFactory = kms_client
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings): each database key's policy must admit the accounts that copy its snapshots.

    A key that cannot be read (another account, access denied, KMS unavailable) is unverified: a warning.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from components.rds_protection import copy_key_policy_statement

    problems: list[Problem] = []
    warnings: list[Problem] = []
    for key in keys:
        where = f"databases.{key.database}: the key {key.key_arn}"
        accounts = ", ".join(key.destination_account_ids)
        unverified = f"{where} is unverified: preflight cannot tell whether its policy admits account {accounts}"
        owner = credentials.get(key.account_id)
        if owner is None:
            # GetKeyPolicy: "Cross-account use: No" (botocore's KMS model).
            warnings.append(
                Problem(
                    f"{unverified} (the key is in account {key.account_id}, where preflight has no deploy role; "
                    "kms:GetKeyPolicy only works in the key's own account)",
                    key.stack,
                )
            )
            continue
        try:
            policy = kms(key.region, owner).get_key_policy(KeyId=key.key_arn, PolicyName="default")["Policy"]
        except ClientError as error:
            info = error.response.get("Error", {})
            code = str(info.get("Code", "error"))
            if code in (KEY_NOT_FOUND, INVALID_ARN):
                problems.append(
                    Problem(
                        f"{where} was not found in account {key.account_id}, region {key.region} ({code}): "
                        f"check databases.{key.database}.kms_key_arn",
                        key.stack,
                    )
                )
            else:
                hint = (
                    "; let the deploy role call kms:GetKeyPolicy on it to have it checked"
                    if code == ACCESS_DENIED
                    else ""
                )
                warnings.append(Problem(f"{unverified} ({code}: {info.get('Message', error)}{hint})", key.stack))
            continue
        except BotoCoreError as error:
            warnings.append(Problem(f"{unverified} (cannot reach AWS KMS in {key.region}: {error})", key.stack))
            continue
        verdict = key_policy_verdict(policy, key.key_arn, key.destination_account_ids)
        if verdict.missing:
            missing = list(verdict.missing)
            statement = copy_key_policy_statement(key.partition, key.key_arn, missing)
            denied = sorted({a for actions in verdict.missing.values() for a in actions})
            problems.append(
                Problem(
                    f"{where} does not let account {', '.join(missing)} copy the database's snapshots "
                    f"(not allowed: {', '.join(denied)}), so every copy to the backup account would fail. "
                    "The application team owns the key: add this statement to its key policy (docs/configuration.md, "
                    "'Data protection', RDS):\n" + json.dumps(statement, indent=2),
                    key.stack,
                )
            )
        elif verdict.uncertain:
            details = "; ".join(f"account {a}: {', '.join(v)}" for a, v in verdict.uncertain.items())
            warnings.append(Problem(f"{unverified} ({details})", key.stack))
    return problems, warnings


# ---------------------------------------------------------------------------------------------
# Region settings: the resource types each workload stack lists are the ones AWS Backup offers
#
# The stacks send whole opt-in and management maps (pgf_backup/stacks.py, build_workload): UpdateRegionSettings
# refuses a type the region does not offer, and a type AWS offers that the map lacks shows a change on every
# preview. UpdateRegionSettings: "Use the DescribeRegionSettings API to determine the resource types that are
# supported" (botocore's Backup model).

# AccessDeniedException, the common error of AWS Backup's actions
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/CommonErrors.html); AccessDenied, STS's spelling, too.
REGION_SETTINGS_DENIED = (ACCESS_DENIED, "AccessDenied")


class BackupClient(Protocol):
    """The AWS Backup call preflight makes (a boto3 Backup client has it)."""

    def describe_region_settings(self, **kwargs: Any) -> Mapping[str, Any]:
        """backup:DescribeRegionSettings."""
        ...


# (region, credentials of the stack's account) -> an AWS Backup client
BackupFactory = Callable[[str, Mapping[str, str] | None], BackupClient]


def backup_client(region: str, credentials: Mapping[str, str] | None = None) -> BackupClient:
    """A boto3 AWS Backup client for `region`, with standard retries and short timeouts."""
    return cast(BackupClient, _session(credentials).client("backup", region_name=region, config=_client_config()))


def region_settings_differences(region: str, listed: RegionResourceTypes, described: Mapping[str, Any]) -> list[str]:
    """Where a region's configured resource types and DescribeRegionSettings' answer disagree (one line each)."""
    differences: list[str] = []
    for key, configured, answer in (
        ("opt_in", list(listed.opt_in), "ResourceTypeOptInPreference"),
        ("management", list(listed.management), "ResourceTypeManagementPreference"),
    ):
        offered = list(described.get(answer) or {})
        unknown = [t for t in configured if t not in offered]
        missing = [t for t in offered if t not in configured]
        where = f"region_resource_types.{region}.{key}"
        if unknown:
            differences.append(
                f"{where}: {', '.join(unknown)} not offered by AWS Backup in {region} (DescribeRegionSettings' "
                f"{answer} does not list it): remove it, or AWS refuses the region settings"
            )
        if missing:
            differences.append(
                f"{where}: AWS Backup in {region} also lists {', '.join(missing)} ({answer}): add it: it would "
                "show a diff on every preview"
            )
    return differences


def region_settings_findings(
    configs: Mapping[str, StackConfig],
    stacks: Sequence[str],
    credentials: Mapping[str, Mapping[str, str]],
    backup: BackupFactory = backup_client,
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings): each workload stack's region_resource_types against DescribeRegionSettings.

    Asked with the deploy role of the stack's account, once per account and region. A refusal or an
    unreachable endpoint leaves the lists unverified: a warning.
    """
    problems: list[Problem] = []
    warnings: list[Problem] = []
    answers: dict[tuple[str, str], Mapping[str, Any] | str] = {}
    for stack in stacks:
        cfg = configs[stack]
        if cfg.role != ROLE_WORKLOAD:
            continue
        for region in cfg.regions.all:
            listed = cfg.region_resource_types.get(region)
            if listed is None:
                continue  # config validation has refused the stack already
            account = cfg.account_id
            unverified = f"region_resource_types.{region}: unverified in account {account}"
            if (account, region) not in answers:
                answers[account, region] = _describe_region_settings(region, credentials.get(account), backup)
            answer = answers[account, region]
            if isinstance(answer, str):
                warnings.append(Problem(f"{unverified} ({answer})", stack))
                continue
            problems.extend(Problem(line, stack) for line in region_settings_differences(region, listed, answer))
    return problems, warnings


def _describe_region_settings(
    region: str, owner: Mapping[str, str] | None, backup: BackupFactory
) -> Mapping[str, Any] | str:
    """DescribeRegionSettings' answer with the account's deploy role, or why there is none."""
    from botocore.exceptions import BotoCoreError, ClientError

    if owner is None:
        return "preflight holds no deploy role credentials for this account"
    try:
        return backup(region, owner).describe_region_settings()
    except BotoCoreError as error:
        return f"cannot reach AWS Backup in {region}: {error}"
    except ClientError as error:
        info = error.response.get("Error", {})
        code = str(info.get("Code", "error"))
        hint = (
            "; let the deploy role call backup:DescribeRegionSettings to have it checked"
            if code in REGION_SETTINGS_DENIED
            else ""
        )
        return f"DescribeRegionSettings: {code}: {info.get('Message', error)}{hint}"


# ---------------------------------------------------------------------------------------------
# AWS Config recording, which AWS Backup Audit Manager's frameworks need

# "Before you create your first compliance-related framework, you must turn on resource tracking", recording
# "AWS Backup: backup plans, backup vaults, recovery points, backup selection"
# (https://docs.aws.amazon.com/aws-backup/latest/devguide/turning-on-resource-tracking.html); the AWS Config types
# of botocore's config model (ResourceType).
AUDIT_RECORDED_TYPES = (
    "AWS::Backup::BackupPlan",
    "AWS::Backup::BackupSelection",
    "AWS::Backup::BackupVault",
    "AWS::Backup::RecoveryPoint",
)


class ConfigClient(Protocol):
    """The AWS Config calls preflight makes (a boto3 `config` client has them)."""

    def describe_configuration_recorders(self, **kwargs: Any) -> Mapping[str, Any]:
        """config:DescribeConfigurationRecorders."""
        ...

    def describe_configuration_recorder_status(self, **kwargs: Any) -> Mapping[str, Any]:
        """config:DescribeConfigurationRecorderStatus."""
        ...


# (region, credentials of the stack's account) -> an AWS Config client
ConfigFactory = Callable[[str, Mapping[str, str] | None], ConfigClient]


def config_client(region: str, credentials: Mapping[str, str] | None = None) -> ConfigClient:
    """A boto3 AWS Config client for `region`, with standard retries and short timeouts."""
    return cast(ConfigClient, _session(credentials).client("config", region_name=region, config=_client_config()))


def missing_recorded_types(recorders: Mapping[str, Any], statuses: Mapping[str, Any]) -> list[str]:
    """AUDIT_RECORDED_TYPES that no running recorder records, from AWS Config's two answers.

    RecordingGroup: `allSupported` (or `recordingStrategy.useOnly` ALL_SUPPORTED_RESOURCE_TYPES) records every
    supported type; INCLUSION_BY_RESOURCE_TYPES records `resourceTypes`; EXCLUSION_BY_RESOURCE_TYPES every type but
    `exclusionByResourceTypes.resourceTypes` (https://docs.aws.amazon.com/config/latest/APIReference/API_RecordingGroup.html).
    Only a recorder whose DescribeConfigurationRecorderStatus says `recording` counts.
    """
    running = {s.get("name") for s in statuses.get("ConfigurationRecordersStatus", []) if s.get("recording")}
    covered: set[str] = set()
    for recorder in recorders.get("ConfigurationRecorders", []):
        if recorder.get("name") not in running:
            continue
        group = recorder.get("recordingGroup") or {}
        strategy = (group.get("recordingStrategy") or {}).get("useOnly")
        if strategy == "EXCLUSION_BY_RESOURCE_TYPES":
            excluded = set((group.get("exclusionByResourceTypes") or {}).get("resourceTypes", []))
            covered |= {t for t in AUDIT_RECORDED_TYPES if t not in excluded}
        elif group.get("allSupported") or strategy == "ALL_SUPPORTED_RESOURCE_TYPES":
            covered |= set(AUDIT_RECORDED_TYPES)
        else:
            covered |= set(group.get("resourceTypes", []))
    return [t for t in AUDIT_RECORDED_TYPES if t not in covered]


def config_recording_warnings(
    configs: Mapping[str, StackConfig],
    stacks: Sequence[str],
    credentials: Mapping[str, Mapping[str, str]],
    config: ConfigFactory = config_client,
) -> list[Problem]:
    """Warnings: where a stack creates frameworks, AWS Config does not record the backup types (or cannot be asked).

    Frameworks are created in each stack's primary region (`audit.enabled`), except where AWS Config does not offer
    AWS Backup's managed rules (pgf_backup.builders.audit.FRAMEWORKS_UNAVAILABLE). Not recording them does not stop
    the rollout: AWS creates the frameworks anyway and shows them INACTIVE ("recording is turned off for all
    resources governed by the framework") or PARTIALLY_ACTIVE, evaluating nothing until recording is turned on
    (botocore's backup model, DescribeFrameworkOutput.FrameworkStatus;
    https://docs.aws.amazon.com/aws-backup/latest/devguide/viewing-frameworks.html, "To correct a Partially active
    or Inactive status"). The backups themselves do not depend on it, so the rollout goes on, with the warning.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from pgf_backup.builders.audit import FRAMEWORKS_UNAVAILABLE

    warnings: list[Problem] = []
    answers: dict[tuple[str, str], list[str] | str] = {}
    for stack in stacks:
        cfg = configs[stack]
        if not isinstance(cfg, VaultStack) or not cfg.audit.enabled:
            continue
        account, region = cfg.account_id, cfg.regions.primary
        if region in FRAMEWORKS_UNAVAILABLE:
            continue  # the audit builder creates no framework there
        where = f"AWS Config in account {account}, {region}"
        owner = credentials.get(account)
        if owner is None:
            warnings.append(Problem(f"{where}: unverified (preflight holds no deploy role credentials)", stack))
            continue
        if (account, region) not in answers:
            try:
                client = config(region, owner)
                answers[account, region] = missing_recorded_types(
                    client.describe_configuration_recorders(), client.describe_configuration_recorder_status()
                )
            except (BotoCoreError, ClientError) as error:
                answers[account, region] = str(error)
        answer = answers[account, region]
        if isinstance(answer, str):
            warnings.append(
                Problem(
                    f"{where}: recording unverified ({answer}); let the deploy role call "
                    "config:DescribeConfigurationRecorders and config:DescribeConfigurationRecorderStatus",
                    stack,
                )
            )
        elif answer:
            warnings.append(
                Problem(
                    f"{where} does not record {', '.join(answer)}: AWS Backup Audit Manager's frameworks are "
                    "created but evaluate nothing without them (framework status INACTIVE or PARTIALLY_ACTIVE, "
                    "no compliance reports). Turn on a recorder that records them (or all supported types) and "
                    "start it: https://docs.aws.amazon.com/aws-backup/latest/devguide/turning-on-resource-tracking.html",
                    stack,
                )
            )
    return warnings


# ---------------------------------------------------------------------------------------------
# The management account's part, when no management stack does it


def management_warnings(
    project: Project, configs: Mapping[str, StackConfig], stacks: Sequence[str], operation: str
) -> list[Problem]:
    """Without a management stack: what the management account must have done, and the commands that do it.

    Said when the backup stack is previewed or deployed (the rollout's first stack, and in organization mode the
    one that needs the delegation). A warning, not a problem: nothing preflight may call from the deploy roles
    tells whether it was done (the global settings belong to the management account, which has no deploy role
    without a management stack).
    """
    backup = configs.get(STACK_BACKUP)
    if (
        operation not in ("preview", "up")
        or STACK_BACKUP not in stacks
        or backup is None
        or project.stack_file(STACK_MANAGEMENT).is_file()
    ):
        return []
    organization = backup.organization
    commands = prerequisite_commands(
        backup.scheduling,
        partition=partition(backup.regions.primary),
        backup_account_id=backup.backup_account_id,
        management_account_id=backup.accounts.get(STACK_MANAGEMENT),
        organization_id=organization.id,
        root_id=organization.root_id,
    )
    if backup.scheduling == "organization":
        need = (
            "organization mode needs, from the organization's management account, cross-account backup enabled in "
            f"AWS Backup's global settings, the backup account {backup.backup_account_id} registered as AWS "
            "Backup's delegated administrator (with AWS Backup's trusted access to Organizations enabled, from "
            "AWS Backup's console: Settings, cross-account management), and an Organizations resource policy "
            "letting it manage BACKUP_POLICY documents"
        )
    else:
        need = (
            "the copies to the backup account need cross-account backup enabled in AWS Backup's global settings "
            "of the organization's management account"
        )
    return [
        Problem(
            f"no management stack ({project.stack_file(STACK_MANAGEMENT).name}): {need}. Preflight cannot check "
            "it from the deploy roles. Once per organization, in the management account, run:\n"
            f"{commands}\nor add the management stack (docs/architecture.md, 'Management account (optional)')"
        )
    ]


# ---------------------------------------------------------------------------------------------
# All of it


@dataclass(frozen=True)
class Checked:
    """What preflight hands to the live runner."""

    command: PulumiCommand
    configs: dict[str, StackConfig]
    # What preflight could not verify (e.g. a database key it may not read): print, do not stop.
    warnings: list[Problem] = field(default_factory=list)


def run(
    project: Project,
    stacks: Sequence[str],
    operation: str,
    *,
    backend_url: str,
    cli_factory: CommandFactory = PulumiCommand,
    sts: StsFactory = sts_client,
    kms: KmsFactory = kms_client,
    backup: BackupFactory = backup_client,
    config: ConfigFactory = config_client,
    env: Mapping[str, str] | None = None,
) -> Checked:
    """Every check, cheapest first; AWS is only asked once the rest is sound. PreflightError if not."""
    env = os.environ if env is None else env
    problems: list[Problem] = []
    command: PulumiCommand | None = None
    try:
        command = find_cli(cli_factory)
    except PreflightError as error:
        problems.extend(error.problems)
    configs: dict[str, StackConfig] = {}
    try:
        configs = load_configs(project, stacks)
    except PreflightError as error:
        problems.extend(error.problems)
    if configs and operation == "destroy":
        problems.extend(destroy_problems(configs, stacks))
    problems.extend(secrets_problems(backend_url, project, stacks, env))
    if problems:
        raise PreflightError(problems)
    problems, credentials = _verify_accounts(configs, stacks, sts)
    if problems or command is None:
        raise PreflightError(problems)
    warnings: list[Problem] = []
    if operation in LIVE_CHECKED_OPERATIONS:
        problems, warnings = key_policy_findings(database_keys(configs, stacks), credentials, kms)
    if operation in LIVE_CHECKED_OPERATIONS:
        region_problems, region_warnings = region_settings_findings(configs, stacks, credentials, backup)
        problems.extend(region_problems)
        warnings.extend(region_warnings)
        warnings.extend(config_recording_warnings(configs, stacks, credentials, config))
    warnings.extend(management_warnings(project, configs, stacks, operation))
    if problems:
        raise PreflightError(problems, warnings)
    return Checked(command=command, configs=configs, warnings=warnings)
