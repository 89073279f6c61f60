"""The `pgf-backup plan` command: the offline plan of the rollout, policy-gated and path-checked."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

from pgf_backup.automation.arguments import output_file
from pgf_backup.automation.planner import plan_all, run_path_checks, summarize, summarize_paths, write_json
from pgf_backup.automation.status import ExitStatus
from pgf_backup.constants import STACK_BACKUP
from pgf_backup.paths.checks import broken
from pgf_backup.project import Project, rollout_order


def add_commands(sub: Any) -> None:
    """Register `plan` on the `pgf-backup` subparsers (its handler is `cmd_plan`)."""
    plan = sub.add_parser("plan", help="offline plan of the rollout under Pulumi's mock runtime, policy-gated")
    which = plan.add_mutually_exclusive_group()
    which.add_argument("--stack", action="append", dest="stacks", metavar="NAME", help="plan this stack (repeatable)")
    which.add_argument("--all", action="store_true", help="plan every stack (the default)")
    plan.add_argument("--json", type=output_file, metavar="FILE", help="write the plan as JSON to FILE")
    plan.set_defaults(handler=cmd_plan)


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup plan`: evaluate each stack in its own process, summarise it, gate it with the policy pack."""
    from pgf_backup.automation.gate import POLICY_DIR, GateError, PolicyGate, configs_for
    from pgf_backup.automation.offline import StackPlan
    from pgf_backup.automation.planner import summarize_policy
    from pgf_backup.automation.preflight import consistency_problems

    project = Project.find(args.project_dir)
    stacks = rollout_order(args.stacks, project.known_stacks())
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
                cfg = configs[plan.stack]
                plan.policy = gate.check(plan, project.name, cfg, configs_for(project, cfg, configs)).to_json()
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
