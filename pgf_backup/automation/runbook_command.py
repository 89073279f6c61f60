"""`pgf-backup runbook --stack S`: the restore runbooks of a stack, from its config and its outputs.

The outputs come from the offline engine by default (`--from plan`: the program evaluated under the mock runtime, as
`pgf-backup plan` does, the backup stack's outputs feeding a workload stack's references), or from the deployed stack
through the Automation API (`--from stack`: `pulumi stack output` of the stack and of the backup stack it reads).

Exit statuses: 0 rendered; 1 the outputs could not be read (the program failed, the stack is not deployed, the CLI
failed); 2 bad arguments, an unknown stack, the management stack, an invalid stack file, no Pulumi CLI for
`--from stack`; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from pgf_backup.automation.arguments import output_file
from pgf_backup.automation.aws_access import CommandError, stack_config
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import BackupAccountStack, StackConfig, WorkloadStack
from pgf_backup.constants import STACK_BACKUP
from pgf_backup.ops import runbook
from pgf_backup.project import Project

PLAN_SOURCE = "the offline plan (the program under Pulumi's mock runtime, as `pgf-backup plan` evaluates it)"


def add_commands(sub: Any) -> None:
    """Register `runbook` on the `pgf-backup` subparsers."""
    parser = sub.add_parser(
        "runbook",
        help="render the restore runbooks of a stack: its vaults, keys, roles and restore commands, and the contacts",
    )
    parser.add_argument("--stack", required=True, help="the backup or workload stack whose runbooks to render")
    parser.add_argument("--format", choices=runbook.FORMATS, default="md", help="default: md")
    parser.add_argument("--out", type=output_file, metavar="FILE", help="write the runbook to FILE (default: stdout)")
    parser.add_argument(
        "--from",
        dest="source",
        choices=("plan", "stack"),
        default="plan",
        help="the outputs of the offline plan (default, no CLI or AWS), or of the deployed stack (the Pulumi CLI)",
    )
    parser.add_argument(
        "--backend-url",
        metavar="URL",
        help="with --from stack: Pulumi backend (default: $PULUMI_BACKEND_URL, else the repo's .pulumi/)",
    )
    parser.set_defaults(handler=cmd_runbook)


def _now() -> datetime:
    return datetime.now(UTC)


def plan_outputs(project: Project, stacks: Sequence[str], err: TextIO) -> dict[str, runbook.Outputs]:
    """Each stack's outputs as the offline engine computes them, the backup stack evaluated first (once)."""
    from pgf_backup.automation.planner import plan_all

    result = plan_all(project, stacks)
    for plan in result.plans:
        for warning in plan.warnings:
            print(f"warning: stack {plan.stack}: {warning}", file=err)
    for failure in result.failures:
        status = ExitStatus.USAGE if failure.exit_code == ExitStatus.USAGE else ExitStatus.FAILED
        raise CommandError(f"stack {failure.stack}: the offline plan failed: {failure}", status)
    assert result.backup is not None  # plan_all evaluates it first whatever the stacks
    backup = result.backup.outputs
    return {plan.stack: runbook.Outputs(plan.outputs, backup, PLAN_SOURCE, mocked=True) for plan in result.plans}


def _find_cli() -> Any:
    from pgf_backup.automation.preflight import find_cli

    return find_cli()


def _select_stack(name: str, project: Project, backend: str, command: Any) -> Any:
    from pulumi.automation import LocalWorkspaceOptions, select_stack

    from pgf_backup.automation.live import BACKEND_ENV

    options = LocalWorkspaceOptions(
        env_vars={BACKEND_ENV: backend, "PULUMI_SKIP_UPDATE_CHECK": "true"}, pulumi_command=command
    )
    return select_stack(stack_name=name, work_dir=str(project.root), opts=options)


def deployed_outputs(project: Project, stack: str, cfg: StackConfig, backend_url: str | None) -> runbook.Outputs:
    """The deployed outputs of `stack` (and of the backup stack it reads), read with the Pulumi CLI."""
    from pulumi.automation import CommandError as PulumiCommandError
    from pulumi.automation import StackNotFoundError

    from pgf_backup.automation.live import resolve_backend
    from pgf_backup.automation.preflight import PreflightError

    try:
        command = _find_cli()
    except PreflightError as error:
        raise CommandError(
            f"--from stack reads the deployed outputs with the Pulumi CLI: {error}\n"
            f"(`pgf-backup runbook --stack {stack}` renders from the offline plan without it)"
        ) from None
    backend = resolve_backend(backend_url, os.environ, project.root)

    def read(name: str) -> dict[str, Any]:
        try:
            found: Mapping[str, Any] = _select_stack(name, project, backend, command).outputs()
        except StackNotFoundError:
            raise CommandError(
                f"stack {name} is not deployed in {backend}: nothing to read (`--from plan` renders from the config)",
                ExitStatus.FAILED,
            ) from None
        except (PulumiCommandError, OSError) as error:
            reason = " ".join(str(error).split())
            raise CommandError(f"cannot read the outputs of stack {name}: {reason}", ExitStatus.FAILED) from None
        # A secret output stays out of a document that is printed and shared.
        return {key: runbook.SECRET_PLACEHOLDER if value.secret else value.value for key, value in found.items()}

    outputs = read(stack)
    backup = read(cfg.backup_stack) if isinstance(cfg, WorkloadStack) else outputs
    return runbook.Outputs(outputs, backup, f"the outputs of the deployed stack in {backend}", mocked=False)


# Module names the tests replace with fakes.
_plan_outputs = plan_outputs
_deployed_outputs = deployed_outputs


def cmd_runbook(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup runbook`: read the outputs, build the runbook, write it."""
    try:
        project = Project.find(args.project_dir)
        cfg = stack_config(project, args.stack)
        if not isinstance(cfg, (BackupAccountStack, WorkloadStack)):
            raise CommandError(
                f"stack {args.stack!r} is the {cfg.role} stack: it holds no vault or data to restore; runbooks cover "
                f"the {STACK_BACKUP} stack and the workload stacks"
            )
        backup_cfg = project.backup_config()
        workloads = {
            name: found
            for name in project.known_stacks()
            if isinstance(found := project.load_config(name), WorkloadStack)
        }
        if args.source == "plan":
            outputs = _plan_outputs(project, [args.stack], err)[args.stack]
        else:
            outputs = _deployed_outputs(project, args.stack, cfg, args.backend_url)
    except CommandError as error:
        print(f"error: {error}", file=err)
        return error.status
    doc = runbook.build(
        args.stack, cfg, backup_cfg=backup_cfg, workloads=workloads, outputs=outputs, generated_at=_now()
    )
    text = runbook.RENDERERS[args.format](doc)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"runbook written to {args.out}", file=err)
    else:
        out.write(text)
    return ExitStatus.OK
