"""Checks before any stack runs: the Pulumi CLI, every stack's config, and the AWS accounts.

Everything here fails early and says what to do; nothing here changes anything anywhere.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from pulumi.automation import InvalidVersionError, PulumiCommand
from semver import VersionInfo

from pgf_backup.automation.offline import Project
from pgf_backup.config import ConfigError, StackConfig
from pgf_backup.constants import PROJECT, ROLE_WORKLOAD, STACK_BACKUP

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
# Short-lived: preflight credentials only call sts:GetCallerIdentity.
PREFLIGHT_SESSION_SECONDS = 900


@dataclass(frozen=True)
class Problem:
    """Something that must be fixed before the rollout can start."""

    message: str
    stack: str | None = None

    def __str__(self) -> str:
        return f"stack {self.stack}: {self.message}" if self.stack else self.message


class PreflightError(Exception):
    """Preflight found problems; nothing was run."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


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
    return [key for key, vault in cfg.vaults.items() if vault.lock is not None and vault.lock.mode == "compliance"]


def destroy_refusal(cfg: StackConfig) -> str | None:
    """Why `destroy` is refused for this stack (a compliance-locked vault), or None."""
    locked = compliance_locked_vaults(cfg)
    if not locked:
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


def sts_client(region: str, credentials: Mapping[str, str] | None = None) -> StsClient:
    """A boto3 STS client for `region`, with standard retries and short timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=20)
    if credentials is None:
        session = boto3.session.Session()
    else:
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
    return cast(StsClient, session.client("sts", region_name=region, config=config))


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
        return Problem(
            f"cannot assume the deploy role {target.role_arn}: {info.get('Code', 'error')}: "
            f"{info.get('Message', error)}. The role must exist in account {target.account_id} and trust the "
            "identity running the rollout (README.md, 'Operations: the multi-account rollout', 'Prerequisites')",
            where,
        )
    except BotoCoreError as error:
        return Problem(f"cannot reach AWS STS in {target.region}: {error}", where)
    actual = identity.get("Account")
    if actual != target.account_id:
        return Problem(
            f"the deploy role {target.role_arn} lands in account {actual}, but the configuration says "
            f"{target.account_id}: refusing to run anything (check the accounts map and the credentials)",
            where,
        )
    return None


def account_problems(
    configs: Mapping[str, StackConfig], stacks: Sequence[str], sts: StsFactory = sts_client
) -> list[Problem]:
    """For each target account: the deploy role can be assumed and STS names that account."""
    from botocore.exceptions import NoCredentialsError

    problems: list[Problem] = []
    for target in deploy_targets(configs, stacks):
        try:
            problem = verify_target(target, sts)
        except NoCredentialsError:
            return [
                Problem(
                    "no AWS credentials found (environment, profile, SSO or instance role): sign in as an "
                    "identity that may assume the deploy roles, e.g. `aws sso login` and AWS_PROFILE"
                )
            ]
        if problem is not None:
            problems.append(problem)
    return problems


# ---------------------------------------------------------------------------------------------
# All of it


@dataclass(frozen=True)
class Checked:
    """What preflight hands to the live runner."""

    command: PulumiCommand
    configs: dict[str, StackConfig]


def run(
    project: Project,
    stacks: Sequence[str],
    operation: str,
    *,
    backend_url: str,
    cli_factory: CommandFactory = PulumiCommand,
    sts: StsFactory = sts_client,
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
    problems = account_problems(configs, stacks, sts)
    if problems or command is None:
        raise PreflightError(problems)
    return Checked(command=command, configs=configs)
