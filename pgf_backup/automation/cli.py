"""The `pgf-backup` command line: `main(argv) -> ExitStatus`, no side effects at import."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import TextIO

from pgf_backup.automation.offline import Project
from pgf_backup.automation.planner import (
    known_stacks,
    plan_all,
    rollout_order,
    run_path_checks,
    summarize,
    summarize_paths,
    write_json,
)
from pgf_backup.config import ConfigError
from pgf_backup.constants import STACK_BACKUP
from pgf_backup.paths.checks import broken


class ExitStatus(IntEnum):
    """Exit codes of every `pgf-backup` command (documented in the README)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    DRIFT = 3
    POLICY = 4
    INTERRUPTED = 130


def _writable_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{folder} is not a folder; choose another path")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"folder {folder} is not writable")


def output_file(text: str) -> Path:
    """argparse type of a file to write: its folder must exist, so a run never fails at its end."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name (e.g. {path / 'plan.json'})")
    _writable_folder(path.parent)
    return path


def output_folder(text: str) -> Path:
    """argparse type of a folder to write files in: writable, or creatable in a writable folder."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder; give a folder (created if missing)")
    _writable_folder(path if path.is_dir() else path.parent)
    return path


def project_folder(text: str) -> Path:
    """argparse type of `--project-dir`: an existing folder holding Pulumi.yaml (no search above it)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"folder {text} does not exist; give the folder that holds Pulumi.yaml")
    if not (path / "Pulumi.yaml").is_file():
        raise argparse.ArgumentTypeError(
            f"folder {text} has no Pulumi.yaml; give the project's folder (the one with Pulumi.yaml)"
        )
    return path


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as exit status 2 without exiting the interpreter."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise _UsageError


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="pgf-backup", description="PGF's multi-account AWS Backup rollout.")
    parser.add_argument(
        "--project-dir",
        type=project_folder,
        default=None,
        help="folder holding Pulumi.yaml (default: found at or above the current folder)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = sub.add_parser("plan", help="offline plan of the rollout under Pulumi's mock runtime, policy-gated")
    which = plan.add_mutually_exclusive_group()
    which.add_argument("--stack", action="append", dest="stacks", metavar="NAME", help="plan this stack (repeatable)")
    which.add_argument("--all", action="store_true", help="plan every stack (the default)")
    plan.add_argument("--json", type=output_file, metavar="FILE", help="write the plan as JSON to FILE")
    from pgf_backup.automation.driver import add_commands  # the driver imports this module

    add_commands(sub)
    return parser


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup plan`: evaluate each stack in its own process, summarise it, gate it with the policy pack."""
    from pgf_backup.automation.gate import POLICY_DIR, GateError, PolicyGate
    from pgf_backup.automation.offline import StackPlan
    from pgf_backup.automation.planner import summarize_policy
    from pgf_backup.automation.preflight import consistency_problems

    project = Project.find(args.project_dir)
    stacks = rollout_order(args.stacks, known_stacks(project))
    # Every stack file validates, and agrees with the others, before anything is evaluated.
    configs = {stack: project.load_config(stack) for stack in dict.fromkeys([STACK_BACKUP, *stacks])}
    problems = consistency_problems(project, configs)
    for problem in problems:
        print(f"error: {problem}", file=err)
    if problems:
        return ExitStatus.USAGE
    project.require_program()

    def warn(stack: str, warnings: Sequence[str]) -> None:
        for warning in warnings:
            print(f"warning: stack {stack}: {warning}", file=err)

    try:
        gate = PolicyGate(project.root / POLICY_DIR, warn=lambda message: print(f"warning: {message}", file=err))
        with gate:  # the pack starts while the first stack evaluates

            def on_stack(plan: StackPlan) -> None:
                warn(plan.stack, plan.warnings)
                summarize(plan, out)
                plan.policy = gate.check(plan, project.name, configs[plan.stack]).to_json()
                summarize_policy(plan, out)

            result = plan_all(project, stacks, on_stack=on_stack)
    except GateError as error:
        print(f"error: policy gate: {error}", file=err)
        return ExitStatus.FAILED
    if not result.failures:
        summarize_paths(run_path_checks(project, result), out)
    if args.json:
        write_json(result, args.json)
        print(f"plan written to {args.json}", file=out)
    for failure in result.failures:
        warn(failure.stack, failure.warnings)
        print(f"error: stack {failure.stack}: {failure}", file=err)
        return ExitStatus.USAGE if failure.exit_code == ExitStatus.USAGE else ExitStatus.FAILED
    status = ExitStatus.OK
    refused = [plan.stack for plan in result.plans if plan.policy is not None and not plan.policy["passed"]]
    if refused:
        print(f"error: the policy pack refuses stack(s) {', '.join(refused)}: see the mandatory violations", file=err)
        status = ExitStatus.FAILED
    for path in broken(result.paths):
        print(
            f"error: broken {path.kind} path in stack {path.stack}: {path.source} -> {path.target}: "
            f"{path.request}: {path.reason}",
            file=err,
        )
        status = ExitStatus.FAILED
    return status


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> ExitStatus:
    """Run one command; user errors become a message and an exit status, never a traceback."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except _UsageError:
        return ExitStatus.USAGE
    except SystemExit as exit_:  # --help
        return ExitStatus.OK if not exit_.code else ExitStatus.USAGE
    try:
        # Subcommands registered from other modules carry their handler (see driver.add_commands).
        handler = cmd_plan if args.command == "plan" else getattr(args, "handler", None)
        if handler is not None:
            return ExitStatus(handler(args, out, err))
    except ConfigError as error:
        print(f"error: {error}", file=err)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return ExitStatus.INTERRUPTED
    return ExitStatus.USAGE


def entry() -> None:
    """Console script entry point."""
    try:
        status = int(main())
    except BrokenPipeError:  # output piped into `head` and closed early
        status = int(ExitStatus.OK)
    sys.exit(status)
