"""The `pgf-backup plan` command: the offline plan of the rollout, policy-gated and path-checked.

On a terminal it shows its progress per stack (on stderr) while it runs; it ends with a summary table per stack.
Without `--verbose` it prints, before the table, only the notes and what is not ok (policy violations, paths broken or
unproven); `--verbose` adds every stack's resources and outputs, its policy verdict and the path checks per kind.
Output that is not a terminal is plain text (no colour, no progress).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from pgf_backup.automation.arguments import (
    add_stack_option,
    output_file,
    selected_stacks,
    unlisted_hint,
    unlisted_stacks,
)
from pgf_backup.automation.planner import (
    evaluation_order,
    plan_all,
    policy_verdict,
    resource_counts,
    run_path_checks,
    summarize,
    summarize_notes,
    summarize_paths,
    summarize_problems,
    summary_table,
    write_json,
)
from pgf_backup.automation.status import ExitStatus
from pgf_backup.paths.checks import broken
from pgf_backup.project import Project

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress, TaskID

    from pgf_backup.automation.offline import StackPlan
    from pgf_backup.automation.planner import PlanResult


def add_commands(sub: Any) -> None:
    """Register `plan` on the `pgf-backup` subparsers (its handler is `cmd_plan`)."""
    summary = "offline plan of the rollout under Pulumi's mock runtime, policy-gated"
    plan = sub.add_parser("plan", help=summary, description=summary)
    which = plan.add_mutually_exclusive_group()
    add_stack_option(which, "plan these stacks (default: all; every stack file is still validated)")
    which.add_argument("--all", action="store_true", help="plan every stack (the default)")
    plan.add_argument("--json", type=output_file, metavar="FILE", help="write the plan as JSON to FILE")
    plan.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print each stack's resources and outputs, its policy verdict, and the path checks per kind",
    )
    plan.set_defaults(handler=cmd_plan)


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> ExitStatus:
    """`pgf-backup plan`: evaluate each stack in its own process, summarise it, gate it with the policy pack."""
    from pgf_backup.automation.gate import POLICY_DIR, GateError, PolicyGate, configs_for
    from pgf_backup.automation.planner import summarize_policy
    from pgf_backup.automation.preflight import consistency_problems

    project = Project.find(args.project_dir)
    stacks = selected_stacks(project, args.stacks)
    # Every stack file validates, and agrees with the others, before anything is evaluated: the files of the stacks
    # not chosen too, so that `plan --stack lab` refuses what `plan --all` (and the rollout) would.
    configs = {stack: project.load_config(stack) for stack in project.known_stacks()}
    problems = consistency_problems(project, configs)
    for problem in problems:
        print(f"error: {problem}", file=err)
    if problems:
        return ExitStatus.USAGE
    project.require_program()
    for stack in unlisted_stacks(project):
        print(f"warning: {unlisted_hint(project, stack)}", file=err)

    # One step per evaluation (backup's too when it only feeds the others), one for the path checks.
    with PlanProgress(err, steps=len(evaluation_order(stacks)) + 1) as progress:
        # The full listing streams as before, except under the progress display, which it would garble.
        buffer = io.StringIO() if progress.live else None
        listing: TextIO = buffer or out

        def warn(stack: str, warnings: Sequence[str]) -> None:
            for warning in warnings:
                progress.message(f"warning: stack {stack}: {warning}")

        try:
            gate = PolicyGate(project.root / POLICY_DIR, warn=lambda message: progress.message(f"warning: {message}"))
            with gate:  # the pack starts while the first stack evaluates

                def on_stack(plan: StackPlan) -> None:
                    warn(plan.stack, plan.warnings)
                    if args.verbose:
                        summarize(plan, listing)
                    progress.step(f"policy pack: stack {plan.stack}", advance=False)
                    cfg = configs[plan.stack]
                    plan.policy = gate.check(plan, project.name, cfg, configs_for(project, cfg, configs)).to_json()
                    if args.verbose:
                        summarize_policy(plan, listing)
                    progress.stack_done(plan)

                result = plan_all(
                    project, stacks, on_stack=on_stack, on_start=lambda stack: progress.step(f"evaluating {stack}")
                )
        except GateError as error:
            progress.close()
            print(f"error: policy gate: {error}", file=err)
            return ExitStatus.FAILED
        if not result.failures:
            progress.step("path checks")
            run_path_checks(project, result)

    if args.verbose:
        if buffer is not None:
            out.write(buffer.getvalue())
        if not result.failures:
            summarize_paths(result.paths, out)
    else:
        summarize_notes(result.plans, out)
        summarize_problems(result, out)
    if result.plans:
        print(f"== summary: {len(result.plans)} stack(s)", file=out)
        print_summary(result, out)
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


# ---------------------------------------------------------------------------------------------
# Terminal output


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal (a closed or odd stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def console_for(stream: TextIO) -> Console:
    """A rich console on `stream`: colour on a terminal only, whatever FORCE_COLOR or TTY_COMPATIBLE say."""
    from rich.console import Console

    tty = is_terminal(stream)
    return Console(
        file=stream,
        force_terminal=tty,
        color_system="auto" if tty else None,
        # Off a terminal rich would assume 80 columns: a table keeps its natural width instead.
        width=None if tty else 1000,
        highlight=False,
        markup=False,
        emoji=False,
    )


def print_summary(result: PlanResult, out: TextIO) -> None:
    """The summary table: a row per stack; on a terminal too narrow for it, a column per stack."""
    checked = not result.failures
    table = summary_table(result, paths_checked=checked)
    console = console_for(out)
    # Its natural width, measured as if the terminal had no edge (a measure within it is capped at its width).
    if (
        console.is_terminal
        and console.measure(table, options=console.options.update_width(10_000)).maximum > console.width
    ):
        table = summary_table(result, paths_checked=checked, transposed=True)
    print_rich(table, out)


def print_rich(renderable: RenderableType, out: TextIO) -> None:
    """Print a rich renderable: styled on a terminal; elsewhere plain text without trailing blanks."""
    console = console_for(out)
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


class PlanProgress:
    """The plan's progress on a terminal: a bar over its steps and a line per planned stack; nothing elsewhere.

    `message` prints a warning above the bar while it runs (printing to the stream directly would garble it), and
    straight to the stream when there is no bar.
    """

    def __init__(self, stream: TextIO, steps: int) -> None:
        self._stream = stream
        self._steps = steps
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._began = 0
        self._stack_started = time.monotonic()

    @property
    def live(self) -> bool:
        """Whether the progress display is on (the stream is a terminal)."""
        return self._progress is not None

    def __enter__(self) -> PlanProgress:
        if is_terminal(self._stream):
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console_for(self._stream),
                transient=True,  # the summary table replaces it
            )
            self._progress.start()
            self._task = self._progress.add_task("planning", total=self._steps)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the progress display (idempotent)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def step(self, description: str, *, advance: bool = True) -> None:
        """Show what runs now; with `advance`, it starts the next step (the one before it is done)."""
        if advance:
            self._stack_started = time.monotonic()
            self._began += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description, completed=max(0, self._began - 1))

    def stack_done(self, plan: StackPlan) -> None:
        """A line for a planned stack, kept above the bar: its resources and the policy pack's verdict."""
        if self._progress is None:
            return
        resources, protected = resource_counts(plan)
        verdict, _ = policy_verdict(plan)
        seconds = time.monotonic() - self._stack_started
        self.message(f"{plan.stack}: {resources} resources ({protected} protected), policy {verdict} ({seconds:.1f}s)")

    def message(self, text: str) -> None:
        """Print a line to the stream, above the progress display while it runs."""
        if self._progress is not None:
            from rich.text import Text

            self._progress.console.print(Text(text))
        else:
            print(text, file=self._stream)
