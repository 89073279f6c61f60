"""The ordered multi-account rollout, independent of Pulumi: order, parallelism, failures, summary.

A `Runner` does one operation on one stack (the live runner on the Automation API, the offline
runner on the mock engine, a recording runner in tests); `Rollout` decides which stack runs when.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

from pgf_backup import backup_outputs
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import StackConfig
from pgf_backup.constants import STACK_BACKUP, STACK_MANAGEMENT

Operation = Literal["preview", "up", "refresh", "destroy", "drift"]
OPERATIONS: tuple[Operation, ...] = ("preview", "up", "refresh", "destroy", "drift")

# Kinds of change shown as columns of the summary, in this order; others follow alphabetically.
CHANGE_KINDS = ("create", "update", "replace", "delete", "same")
# Steps of a refresh preview that mean "the cloud still matches the state".
NO_DRIFT_KINDS = frozenset({"same", "refresh", "read"})
# How often the scheduler wakes up while stacks run, so that Ctrl-C is handled promptly.
_POLL_SECONDS = 0.2


class Outcome(StrEnum):
    """What happened to one stack."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    POLICY = "policy-violation"
    DRIFT = "drift"
    DECLINED = "declined"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"

    @property
    def stops_rollout(self) -> bool:
        """Whether this outcome keeps the stacks after it from starting."""
        return self not in (Outcome.SUCCEEDED, Outcome.DRIFT, Outcome.SKIPPED)


@dataclass(frozen=True)
class OpResult:
    """A runner's answer for one operation on one stack."""

    outcome: Outcome
    changes: Mapping[str, int] = field(default_factory=dict)
    message: str = ""
    log_file: Path | None = None


class Runner(Protocol):
    """Does one operation on one stack; one method per operation, plus `cancel` for Ctrl-C."""

    def preview(self, stack: str) -> OpResult:
        """Preview the stack's changes (policy-gated)."""
        ...

    def up(self, stack: str) -> OpResult:
        """Deploy the stack (policy-gated)."""
        ...

    def refresh(self, stack: str) -> OpResult:
        """Adopt the cloud's state of the stack's resources into its state."""
        ...

    def destroy(self, stack: str) -> OpResult:
        """Delete every resource of the stack."""
        ...

    def drift(self, stack: str) -> OpResult:
        """Compare the cloud with the stack's state without changing either."""
        ...

    def cancel(self) -> None:
        """Ask the running operations to stop cleanly (called again: stop now)."""
        ...


@dataclass(frozen=True)
class StackResult:
    """One row of the summary."""

    stack: str
    operation: Operation
    outcome: Outcome
    changes: Mapping[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    message: str = ""
    log_file: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """The row in the `--json` summary."""
        return {
            "stack": self.stack,
            "result": str(self.outcome),
            "changes": dict(self.changes),
            "duration_seconds": round(self.duration_seconds, 3),
            "message": self.message,
            "log": str(self.log_file) if self.log_file else None,
        }


@dataclass
class RolloutResult:
    """Every selected stack's result, in the order the operation walks them."""

    operation: Operation
    results: list[StackResult]
    interrupted: bool = False

    @property
    def exit_status(self) -> ExitStatus:
        """130 if interrupted, else 1 if a stack failed, 4 on a policy violation, 3 on drift, 0."""
        outcomes = {r.outcome for r in self.results}
        if self.interrupted or Outcome.INTERRUPTED in outcomes:
            return ExitStatus.INTERRUPTED
        if outcomes & {Outcome.FAILED, Outcome.DECLINED, Outcome.REFUSED}:
            return ExitStatus.FAILED
        if Outcome.POLICY in outcomes:
            return ExitStatus.POLICY
        if Outcome.DRIFT in outcomes:
            return ExitStatus.DRIFT
        return ExitStatus.OK

    def to_json(self) -> dict[str, Any]:
        """The `--json` document: the same summary as the table."""
        status = self.exit_status
        return {
            "operation": self.operation,
            "exit_code": int(status),
            "exit_status": status.name.lower(),
            "interrupted": self.interrupted,
            "stacks": [r.to_json() for r in self.results],
        }


def walk_order(operation: Operation, stacks: Sequence[str]) -> list[str]:
    """Stacks in the order the operation visits them: rollout order, reversed for `destroy`."""
    return list(reversed(stacks)) if operation == "destroy" else list(stacks)


# Stacks the others depend on: each runs alone, before (after, for destroy) the workload stacks.
SOLO_STACKS = (STACK_MANAGEMENT, STACK_BACKUP)


def phases(order: Sequence[str]) -> list[list[str]]:
    """Consecutive groups that may run together: `management` and `backup` each alone, workload stacks together."""
    groups: list[list[str]] = []
    for stack in order:
        if stack in SOLO_STACKS or not groups or groups[-1][0] in SOLO_STACKS:
            groups.append([stack])
        else:
            groups[-1].append(stack)
    return groups


Confirm = Callable[[str, str], bool]


@dataclass
class Rollout:
    """Runs one operation over the ordered stacks with a runner; see `run`."""

    runner: Runner
    operation: Operation
    parallel: int = 1
    # (stack) -> the question to ask before it starts, or None when no confirmation is needed.
    question: Callable[[str], str | None] = lambda _stack: None
    confirm: Confirm = lambda _stack, _question: False
    on_start: Callable[[str], None] = lambda _stack: None
    on_result: Callable[[StackResult], None] = lambda _result: None
    on_interrupt: Callable[[int], None] = lambda _count: None
    clock: Callable[[], float] = time.monotonic
    _stop_reason: str | None = field(default=None, init=False)
    _interrupts: int = field(default=0, init=False)
    _signals: int = field(default=0, init=False)
    _signals_taken: int = field(default=0, init=False)
    _prompting: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def run(self, stacks: Sequence[str]) -> RolloutResult:
        """Run the operation: `backup` alone, then up to `parallel` workload stacks at once.

        A stack that fails (or is declined, refused, interrupted) stops the rollout: running
        stacks finish, no new one starts, and the ones left are reported as skipped. Ctrl-C
        (SIGINT, or SIGTERM from a cancelled CI job) cancels the running stacks through the runner.
        """
        if self.parallel < 1:
            raise ValueError(f"parallel must be >= 1, not {self.parallel}")
        order = walk_order(self.operation, stacks)
        results: dict[str, StackResult] = {}
        with self._signals_counted(), ThreadPoolExecutor(self.parallel, thread_name_prefix="pgf-rollout") as pool:
            for group in phases(order):
                if self._stop_reason is not None:
                    break
                width = 1 if group[0] in SOLO_STACKS else self.parallel
                self._run_group(pool, group, width, results)
        for stack in order:
            if stack not in results:
                reason = self._stop_reason or "not started"
                results[stack] = StackResult(stack, self.operation, Outcome.SKIPPED, message=f"not started: {reason}")
        return RolloutResult(self.operation, [results[s] for s in order], interrupted=self._interrupts > 0)

    @contextmanager
    def _signals_counted(self) -> Iterator[None]:
        # A KeyboardInterrupt raised between two bytecodes could lose track of a started stack, so
        # signals are only counted here and acted upon by the scheduler loop (except at a prompt).
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def count(_signum: int, _frame: object) -> None:
            self._signals += 1
            if self._prompting:
                raise KeyboardInterrupt

        previous = {sig: signal.signal(sig, count) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def _take_signals(self) -> int:
        taken = 0
        while self._signals_taken < self._signals:
            self._signals_taken += 1
            taken += 1
            self._interrupt()
        return taken

    def _run_group(
        self, pool: ThreadPoolExecutor, group: list[str], width: int, results: dict[str, StackResult]
    ) -> None:
        pending = deque(group)
        running: dict[Future[StackResult], str] = {}
        while running or (pending and self._stop_reason is None):
            try:
                self._take_signals()
                while pending and len(running) < width and self._stop_reason is None:
                    stack = pending[0]
                    if not self._confirmed(stack):
                        pending.popleft()
                        question = self.question(stack) or ""
                        self._record(results, StackResult(stack, self.operation, Outcome.DECLINED, message=question))
                        break
                    pending.popleft()
                    self.on_start(stack)
                    running[pool.submit(self._timed, stack)] = stack
                if not running:
                    continue
                done, _ = wait(running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    self._record(results, future.result())
                    del running[future]
            except KeyboardInterrupt:  # at a prompt, or when not on the main thread
                if not self._take_signals():
                    self._interrupt()

    def _confirmed(self, stack: str) -> bool:
        question = self.question(stack)
        if question is None:
            return True
        self._prompting = True
        try:
            return self.confirm(stack, question)
        finally:
            self._prompting = False

    def _record(self, results: dict[str, StackResult], result: StackResult) -> None:
        results[result.stack] = result
        if result.outcome == Outcome.DECLINED:
            self._stop(f"{result.stack} was not confirmed")
        elif result.outcome.stops_rollout:
            self._stop(f"{result.stack} {result.outcome}")
        self.on_result(result)

    def _stop(self, reason: str) -> None:
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason

    def _interrupt(self) -> None:
        with self._lock:
            self._interrupts += 1
            count = self._interrupts
            if self._stop_reason is None or count == 1:
                self._stop_reason = "interrupted"
        self.on_interrupt(count)
        self.runner.cancel()

    def _timed(self, stack: str) -> StackResult:
        start = self.clock()
        method: Callable[[str], OpResult] = getattr(self.runner, self.operation)
        try:
            op = method(stack)
        except KeyboardInterrupt:
            self._interrupt()
            op = OpResult(Outcome.INTERRUPTED, message="interrupted")
        except Exception as error:  # a runner bug must not take the other stacks down with it
            op = OpResult(Outcome.FAILED, message=f"unexpected {type(error).__name__}: {error}")
        return StackResult(
            stack=stack,
            operation=self.operation,
            outcome=op.outcome,
            changes=dict(op.changes),
            duration_seconds=self.clock() - start,
            message=op.message,
            log_file=op.log_file,
        )


# ---------------------------------------------------------------------------------------------
# What a workload stack needs from the backup stack


def missing_backup_outputs(cfg: StackConfig, outputs: Mapping[str, Any]) -> list[str]:
    """What keeps a workload stack from using `backup`'s outputs (empty: all good).

    The program's own check (`pgf_backup.backup_outputs`): the vaults it copies into exist, every
    copy lifecycle fits their locks, the backup account is the configured one.
    """
    return backup_outputs.problems(cfg, outputs)


def policy_message(findings: Sequence[tuple[str, str]]) -> str:
    """One line for a stack's mandatory findings `(policy, urn)`: each policy once, with a count."""
    by_policy: dict[str, list[str]] = {}
    for policy, urn in findings:
        by_policy.setdefault(policy, []).append(urn)
    parts = []
    for policy, urns in by_policy.items():
        where = resource_label(urns[0]) if urns[0] else "the stack"
        parts.append(f"{policy} on {where}" + (f" and {len(urns) - 1} more" if len(urns) > 1 else ""))
    return "policy violation: " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Display


@dataclass
class _Running:
    operation: str
    total: int = 0
    done: int = 0
    current: str = ""


def resource_label(urn: str, type_: str | None = None) -> str:
    """`type name` of a resource from its URN (short, for the progress line)."""
    name = urn.rsplit("::", 1)[-1]
    kind = type_ or (urn.rsplit("::", 2)[-2] if urn.count("::") >= 2 else "")
    return f"{kind.rsplit('$', 1)[-1]} {name}".strip()


class Progress:
    """Live progress of the running stacks: a status line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO, *, live: bool | None = None, columns: Callable[[], int] | None = None) -> None:
        self._stream = stream
        self._live = stream.isatty() if live is None else live
        self._columns = columns or (lambda: shutil.get_terminal_size((120, 20)).columns)
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._status_shown = False

    def stack_started(self, stack: str, operation: str) -> None:
        """A stack's operation began."""
        with self._lock:
            self._running[stack] = _Running(operation)
            self._render()

    def step_started(self, stack: str, urn: str, op: str, type_: str | None = None) -> None:
        """The engine announced a resource step (this grows the total)."""
        with self._lock:
            state = self._running.setdefault(stack, _Running("?"))
            state.total += 1
            state.current = f"{op} {resource_label(urn, type_)}"
            self._render()

    def step_finished(self, stack: str, urn: str, op: str, type_: str | None = None, *, failed: bool = False) -> None:
        """A resource step completed (or failed)."""
        with self._lock:
            state = self._running.setdefault(stack, _Running("?"))
            state.done += 1
            if failed:
                self._print(f"{stack}: FAILED {op} {resource_label(urn, type_)}")
            elif not self._live and op not in NO_DRIFT_KINDS:
                self._print(f"{stack}: [{state.done}/{state.total}] {op} {resource_label(urn, type_)}")
            else:
                self._render()

    def message(self, text: str) -> None:
        """A line that stays (policy findings, results, warnings)."""
        with self._lock:
            self._print(text)

    def stack_finished(self, stack: str) -> None:
        """A stack's operation ended."""
        with self._lock:
            self._running.pop(stack, None)
            self._render()

    def _print(self, text: str) -> None:
        self._clear()
        print(text, file=self._stream, flush=True)
        self._render()

    def _clear(self) -> None:
        if self._live and self._status_shown:
            self._stream.write("\r\x1b[K")
            self._status_shown = False

    def _render(self) -> None:
        if not self._live:
            return
        self._clear()
        if not self._running:
            self._stream.flush()
            return
        parts = [f"{s} {r.operation} {r.done}/{r.total} {r.current}".rstrip() for s, r in self._running.items()]
        # One character short of the width: a full line would wrap and break the redraw.
        self._stream.write(" | ".join(parts)[: self._columns() - 1])
        self._stream.flush()
        self._status_shown = True


# ---------------------------------------------------------------------------------------------
# Summary


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def change_kinds(results: Sequence[StackResult]) -> list[str]:
    """Columns of the summary: the usual kinds, then any other kind some stack reported."""
    seen = {kind for r in results for kind, count in r.changes.items() if count}
    return [*CHANGE_KINDS, *sorted(seen - set(CHANGE_KINDS))]


def summary_table(result: RolloutResult) -> str:
    """The summary table: stack, result, changes by kind, duration; then the messages."""
    kinds = change_kinds(result.results)
    header = ["STACK", "RESULT", *(k.upper() for k in kinds), "DURATION"]
    rows = [
        [
            r.stack,
            str(r.outcome),
            *(str(r.changes.get(k, 0)) if r.outcome != Outcome.SKIPPED else "-" for k in kinds),
            _duration(r.duration_seconds) if r.outcome != Outcome.SKIPPED else "-",
        ]
        for r in result.results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"{result.operation}: " + ", ".join(f"{r.stack} {r.outcome}" for r in result.results)]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for r in result.results:
        if r.message and r.outcome != Outcome.SUCCEEDED:
            lines.append(f"{r.stack}: {r.message}")
        if r.log_file and r.outcome not in (Outcome.SUCCEEDED, Outcome.SKIPPED):
            lines.append(f"{r.stack}: log in {r.log_file}")
    status = result.exit_status
    lines.append(f"exit {int(status)} ({status.name.lower()})")
    return "\n".join(lines)


def write_summary_json(result: RolloutResult, path: Path) -> None:
    """Write the `--json` summary."""
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
