"""The rollout subcommands of `pgf-backup`: preview, up, refresh, destroy, drift.

`cli.build_parser` registers them with `add_commands`; each carries `run_command` as its handler.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, TextIO, cast

from pgf_backup.automation import preflight
from pgf_backup.automation.arguments import add_stack_option, output_file, output_folder, selected_stacks
from pgf_backup.automation.offline import StackError, StackPlan, plan_stack, stop_workers
from pgf_backup.automation.rollout import (
    Operation,
    OpResult,
    Outcome,
    Progress,
    Rollout,
    Runner,
    StackResult,
    missing_backup_outputs,
    policy_message,
    summary_table,
    write_summary_json,
)
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import StackConfig
from pgf_backup.constants import ROLE_WORKLOAD, STACK_BACKUP
from pgf_backup.project import Project

COMMANDS: Mapping[Operation, str] = {
    "preview": "preview the ordered stacks' changes, gated by the policy pack (--offline: on the mock engine)",
    "up": "deploy the ordered stacks: backup first, then the workload stacks (prod asks unless --yes)",
    "refresh": "adopt the cloud's state into each stack's state, in rollout order",
    "destroy": "destroy the stacks in reverse rollout order (asks unless --yes; refused for compliance locks)",
    "drift": "report where the cloud differs from each stack's state (exit 3 on drift); changes nothing",
}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; use 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; use 1 (one stack at a time, the default) or more")
    return value


def add_commands(sub: Any) -> None:
    """Register the rollout subcommands on the `pgf-backup` subparsers."""
    for operation, summary in COMMANDS.items():
        parser = sub.add_parser(operation, help=summary, description=summary)
        add_stack_option(parser, "stacks to run (default: all), always in rollout order")
        parser.add_argument(
            "--parallel",
            type=_positive,
            default=1,
            metavar="N",
            help="run up to N workload stacks at once after backup (default 1: one at a time)",
        )
        parser.add_argument("--yes", action="store_true", help="answer yes to confirmations (prod up, destroy)")
        parser.add_argument(
            "--backend-url",
            metavar="URL",
            help="Pulumi backend (default: $PULUMI_BACKEND_URL, else the repo's .pulumi/)",
        )
        parser.add_argument("--json", type=output_file, metavar="FILE", help="write the summary as JSON to FILE")
        parser.add_argument(
            "--log-dir",
            type=output_folder,
            metavar="DIR",
            help="folder for the per-stack logs (default: .pulumi/logs/<run>)",
        )
        parser.set_defaults(handler=run_command)
        parser.add_argument(
            "--offline",
            action="store_true",
            help="preview only: run the orchestration over the offline engine (mock runtime; no CLI, no AWS)",
        )


def run_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """Preflight, then the rollout of one operation; prints progress, the summary, optional JSON."""
    operation = cast(Operation, args.command)
    project = Project.find(args.project_dir)
    stacks = selected_stacks(project, args.stacks)
    if args.offline and operation != "preview":
        print(
            f"error: --offline: only preview runs offline; {operation} needs the Pulumi CLI and a backend "
            "(the offline engine has no state to change or compare)",
            file=err,
        )
        return ExitStatus.USAGE
    progress = Progress(err)
    with ExitStack() as resources:
        try:
            if args.offline:
                configs = preflight.load_configs(project, stacks)
                project.require_program()
                runner: Runner = offline_runner(project, configs, progress, resources)
            else:
                runner, configs = live_runner(project, stacks, operation, args, progress)
        except preflight.PreflightError as error:
            print("preflight failed; nothing was run:", file=err)
            for problem in error.problems:
                print("  - " + str(problem).replace("\n", "\n    "), file=err)
            return ExitStatus.USAGE
        result = _rollout(runner, operation, args, configs=configs, progress=progress, err=err).run(stacks)
    print(summary_table(result), file=out)
    if args.json:
        write_summary_json(result, args.json)
        print(f"summary written to {args.json}", file=out)
    return result.exit_status


def _rollout(
    runner: Runner,
    operation: Operation,
    args: argparse.Namespace,
    *,
    configs: Mapping[str, StackConfig],
    progress: Progress,
    err: TextIO,
) -> Rollout:
    return Rollout(
        runner=runner,
        operation=operation,
        parallel=args.parallel,
        question=lambda stack: confirmation_question(operation, stack, configs[stack]),
        confirm=lambda stack, question: confirm(question, yes=args.yes, err=err),
        on_start=lambda stack: progress.message(f"== {stack}: {operation}"),
        on_result=lambda result: progress.message(result_line(result)),
        on_interrupt=lambda count: progress.message(
            "interrupted: stopping the running operations cleanly, starting nothing new (Ctrl-C again to force)"
            if count == 1
            else "interrupted again: forcing the running operations to stop"
        ),
    )


def live_runner(
    project: Project, stacks: Sequence[str], operation: Operation, args: argparse.Namespace, progress: Progress
) -> tuple[Runner, dict[str, StackConfig]]:
    """Preflight, then the Automation API runner (PreflightError when something is wrong)."""
    from pgf_backup.automation.gate import POLICY_DIR, missing_tier_config
    from pgf_backup.automation.live import LiveRunner, TrackedPulumiCommand, resolve_backend

    backend = resolve_backend(args.backend_url, os.environ, project.root)
    checked = preflight.run(project, stacks, operation, backend_url=backend, cli_factory=TrackedPulumiCommand)
    for warning in checked.warnings:
        progress.message(f"warning: {warning}")
    if operation in ("preview", "up"):
        for stack in stacks:
            missing = missing_tier_config(project.root / POLICY_DIR, checked.configs[stack].stack_tier)
            if missing is not None:
                progress.message(f"warning: stack {stack}: {missing}")
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = args.log_dir or project.root / ".pulumi" / "logs" / f"{run_id}-{operation}"
    progress.message(f"backend {backend}; logs in {log_dir}")
    runner = LiveRunner(
        project, checked.configs, backend_url=backend, command=checked.command, progress=progress, log_dir=log_dir
    )
    return runner, checked.configs


def offline_runner(
    project: Project, configs: Mapping[str, StackConfig], progress: Progress, resources: ExitStack
) -> Runner:
    """The offline runner, gated by the real policy pack (the gate `pgf-backup plan` uses)."""
    from pgf_backup.automation.gate import POLICY_DIR, GateError, PolicyGate, configs_for

    try:
        gate = resources.enter_context(
            PolicyGate(project.root / POLICY_DIR, warn=lambda message: progress.message(f"warning: {message}"))
        )
    except GateError as error:
        raise preflight.PreflightError([preflight.Problem(f"policy gate: {error}")]) from None

    def verdict(plan: StackPlan, cfg: StackConfig) -> dict[str, Any]:
        try:
            return gate.check(plan, project.name, cfg, configs_for(project, cfg, configs)).to_json()
        except GateError as error:
            raise StackError(plan.stack, f"policy gate: {error}", ExitStatus.FAILED) from None

    return OfflineRunner(project, configs, progress, verdict)


def confirmation_question(operation: Operation, stack: str, cfg: StackConfig) -> str | None:
    """The question asked before a stack starts: `up` of a prod stack and every `destroy`."""
    tier = cfg.stack_tier
    where = f"stack {stack} (account {cfg.account_id}{', tier ' + tier if tier else ''})"
    if operation == "up" and cfg.hardened:
        return f"up will change {where}. Continue?"
    if operation == "destroy":
        return f"destroy will delete every resource of {where}. Continue?"
    return None


def confirm(question: str, *, yes: bool, err: TextIO, stdin: TextIO | None = None) -> bool:
    """Ask on the terminal; --yes answers yes; with no terminal (CI) the answer is no."""
    if yes:
        return True
    stream = stdin or sys.stdin
    if stream is None or not stream.isatty():
        print(f"{question} No terminal to ask on: treated as no (pass --yes to confirm).", file=err)
        return False
    print(f"{question} [y/N] ", end="", file=err, flush=True)
    answer = stream.readline()
    return answer.strip().lower() in ("y", "yes")


def result_line(result: StackResult) -> str:
    """One line per finished stack, printed as the rollout goes."""
    changes = ", ".join(f"{kind} {n}" for kind, n in result.changes.items() if n and kind != "same")
    line = f"== {result.stack}: {result.operation} {result.outcome} in {result.duration_seconds:.1f}s"
    if changes:
        line += f" ({changes})"
    if result.message and result.outcome != Outcome.SUCCEEDED:
        line += f": {result.message}"
    return line


class OfflineRunner:
    """The `Runner` over the offline engine: `preview` only (no state, so nothing to change or compare)."""

    def __init__(
        self,
        project: Project,
        configs: Mapping[str, StackConfig],
        progress: Progress,
        policy: Callable[[StackPlan, StackConfig], dict[str, Any]],
    ) -> None:
        self._project = project
        self._configs = configs
        self._progress = progress
        self._policy = policy
        self._outputs: dict[str, Any] | None = None
        self._lock = threading.Lock()
        # The gate configures its pack for one stack at a time: stacks previewed in parallel take turns.
        self._gate_lock = threading.Lock()
        self._cancelled = threading.Event()

    def preview(self, stack: str) -> OpResult:
        """Evaluate the stack under the mock runtime with the backup stack's offline outputs."""
        cfg = self._configs[stack]
        try:
            references: dict[str, dict[str, Any]] = {}
            if cfg.role == ROLE_WORKLOAD:
                outputs = self._backup_outputs()
                missing = missing_backup_outputs(cfg, outputs)
                if missing:
                    return OpResult(Outcome.FAILED, message=f"the backup stack's outputs lack {'; '.join(missing)}")
                references = {cfg.backup_stack: outputs, self._project.stack_reference_name(STACK_BACKUP): outputs}
            plan = plan_stack(self._project, stack, references)
            self._warn(stack, plan.warnings)
            with self._gate_lock:
                plan.policy = self._policy(plan, cfg)
        except StackError as error:
            if self._cancelled.is_set():  # Ctrl-C reached the evaluation's process too
                return OpResult(Outcome.INTERRUPTED, message="interrupted")
            self._warn(error.stack, error.warnings)
            return OpResult(Outcome.FAILED, message=str(error))
        if stack == STACK_BACKUP:
            with self._lock:
                self._outputs = plan.outputs
        return self._result(plan)

    def _warn(self, stack: str, warnings: Sequence[str]) -> None:
        for warning in warnings:
            self._progress.message(f"warning: stack {stack}: {warning}")

    def _backup_outputs(self) -> dict[str, Any]:
        with self._lock:
            if self._outputs is None:
                # A workload stack previewed without `backup` in the selection still needs its outputs.
                self._outputs = plan_stack(self._project, STACK_BACKUP).outputs
            return self._outputs

    def _result(self, plan: StackPlan) -> OpResult:
        # Offline there is no state: every resource of the program would be created.
        created = sum(1 for r in plan.resources if r.get("custom", True))
        violations = (plan.policy or {}).get("violations", [])
        for violation in violations:
            self._progress.message(
                f"{plan.stack}: policy {violation['policy']} ({violation['enforcement']}): "
                f"{' '.join(violation['message'].split())} [{violation['urn'] or 'stack'}]"
            )
        mandatory = [(v["policy"], v["urn"]) for v in violations if v["enforcement"] == "mandatory"]
        if mandatory:
            return OpResult(Outcome.POLICY, changes={"create": created}, message=policy_message(mandatory))
        return OpResult(Outcome.SUCCEEDED, changes={"create": created})

    def _not_offline(self, operation: str) -> OpResult:
        return OpResult(
            Outcome.FAILED, message=f"{operation} needs the Pulumi CLI and a backend; --offline only previews"
        )

    def up(self, stack: str) -> OpResult:
        """Refused: the offline engine has no state to deploy to."""
        return self._not_offline("up")

    def refresh(self, stack: str) -> OpResult:
        """Refused: the offline engine has no state to refresh."""
        return self._not_offline("refresh")

    def destroy(self, stack: str) -> OpResult:
        """Refused: the offline engine has no state to destroy."""
        return self._not_offline("destroy")

    def drift(self, stack: str) -> OpResult:
        """Refused: the offline engine has no state to compare with the cloud."""
        return self._not_offline("drift")

    def cancel(self) -> None:
        """Remember the interrupt and stop the evaluations' processes (SIGTERM may not have reached them)."""
        self._cancelled.set()
        stop_workers()
