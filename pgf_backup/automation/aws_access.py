"""What the operators' commands (exports, verify, drill, restore, runbook) share: their user error, boto3 sessions
(the operator's credentials, or a role assumed with them), clients with adaptive retries, a progress bar on a
terminal, and AWS errors turned into one line and exit 1.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any, TextIO

from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import StackConfig, WorkloadStack
from pgf_backup.project import Project


class CommandError(Exception):
    """A user error of an operator command: printed as `error: ...`, with its exit status."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.USAGE) -> None:
        super().__init__(message)
        self.status = status


def stack_config(project: Project, stack: str) -> StackConfig:
    """A stack's validated config, or a CommandError naming the stacks there are."""
    if stack not in project.known_stacks():
        raise CommandError(f"unknown stack {stack!r}; stacks: {', '.join(project.known_stacks())}")
    return project.load_config(stack)


def workload_config(project: Project, stack: str, what: str) -> WorkloadStack:
    """A workload stack's config; `what` says why another role will not do (e.g. "verify checks a workload stack")."""
    cfg = stack_config(project, stack)
    if not isinstance(cfg, WorkloadStack):
        raise CommandError(f"stack {stack!r} is the {cfg.role} stack; {what}")
    return cfg


def session(region: str | None, role_arn: str | None = None, name: str = "pgf-backup") -> Any:
    """A boto3 session: the operator's credentials, or a role assumed with them (session name `name`)."""
    import boto3

    base = boto3.session.Session(region_name=region)
    if role_arn is None:
        return base
    from pgf_backup.exports.store import RETRY_CONFIG

    credentials = base.client("sts", config=RETRY_CONFIG).assume_role(RoleArn=role_arn, RoleSessionName=name)[
        "Credentials"
    ]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def client_factory(boto_session: Any) -> Callable[[str, str], Any]:
    """`client(service, region)`, one per pair, with adaptive retries: throttling slows a command down."""
    from pgf_backup.exports.store import RETRY_CONFIG

    made: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in made:
            made[service, region] = boto_session.client(service, region_name=region, config=RETRY_CONFIG)
        return made[service, region]

    return client


def assume(account: str, role_arn: str, region: str, what: str, name: str = "pgf-backup") -> Any:
    """A session in `account` through `role_arn`, checked to be that account's; failures name the role and `what`."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pgf_backup.exports.store import RETRY_CONFIG

    try:
        assumed = session(region, role_arn, name)
        actual = assumed.client("sts", config=RETRY_CONFIG).get_caller_identity()["Account"]
    except ClientError as error:
        info = error.response.get("Error", {})
        raise CommandError(
            f"cannot assume {role_arn} ({what}): {info.get('Code')}: {info.get('Message')}", ExitStatus.FAILED
        ) from None
    except BotoCoreError as error:
        raise CommandError(f"cannot assume {role_arn} ({what}): {error}", ExitStatus.FAILED) from None
    if actual != account:
        raise CommandError(f"{role_arn} gave credentials for account {actual}, not {account} ({what})")
    return assumed


class ProgressBar:
    """A one-line progress bar on a terminal; nothing otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._shown = False

    def __call__(self, done: int, total: int, what: str) -> None:
        if not self._live:
            return
        width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 40))
        filled = width * done // total if total else width
        self._stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}\x1b[K")
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


def aws_error_status(error: Exception, err: TextIO) -> ExitStatus:
    """A ClientError or BotoCoreError as one line on `err` (the operation, AWS's code and message), and exit 1."""
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "an AWS call")
        hint = " (after adaptive retries)" if info.get("Code") in ("Throttling", "ThrottlingException") else ""
        print(f"error: AWS refused {operation}{hint}: {info.get('Code')}: {info.get('Message')}", file=err)
    else:
        print(f"error: {error}", file=err)
    return ExitStatus.FAILED
