"""The live runner: each operation on the Automation API, with the local program and the policy pack."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pulumi.automation import (
    CommandError,
    CommandResult,
    ConcurrentUpdateError,
    EngineEvent,
    InvalidVersionError,
    LocalWorkspaceOptions,
    OnOutput,
    PulumiCommand,
    Stack,
    StackNotFoundError,
    StepEventMetadata,
    create_or_select_stack,
    select_stack,
)
from pulumi.automation.errors import create_command_error
from semver import VersionInfo

from pgf_backup.automation.gate import (
    GateError,
    PolicyGate,
    PolicyInfo,
    configs_for,
    pack_config,
    reconcile,
    write_pack_config,
)
from pgf_backup.automation.preflight import destroy_refusal
from pgf_backup.automation.processes import signals_held, stop
from pgf_backup.automation.rollout import (
    NO_DRIFT_KINDS,
    OpResult,
    Outcome,
    Progress,
    missing_backup_outputs,
    policy_message,
)
from pgf_backup.config import StackConfig
from pgf_backup.constants import PROJECT, ROLE_WORKLOAD
from pgf_backup.project import Project

# Relative to work_dir (the repo root), where the CLI runs: the pack in policy/ gates every preview and up.
POLICY_PACKS = ("policy",)
BACKEND_ENV = "PULUMI_BACKEND_URL"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|<\{%[a-z-]*%\}>")
_MESSAGE_LINES = 6
_STOP_SECONDS = 10.0  # a CLI command that is not an update ends soon after its SIGINT; past this it is killed


def default_backend(root: Path) -> str:
    """The local file backend of the repo: its state lives in the git-ignored `.pulumi/` (created)."""
    # A file backend at URL `file://X` keeps its state in `X/.pulumi/`, so the URL is the repo root.
    (root / ".pulumi").mkdir(parents=True, exist_ok=True)
    return root.resolve().as_uri()


def resolve_backend(cli_value: str | None, env: Mapping[str, str], root: Path) -> str:
    """`--backend-url`, else PULUMI_BACKEND_URL, else the local file backend under the repo."""
    for value in (cli_value, env.get(BACKEND_ENV)):
        if value and value.strip():
            return value.strip()
    return default_backend(root)


class TrackedPulumiCommand(PulumiCommand):
    """The Pulumi CLI, each run in its own session and tracked, so only the driver interrupts it.

    A terminal's Ctrl-C reaches the whole foreground process group; a CI job's cancel often only
    reaches the driver. Starting the CLI in its own session and forwarding exactly one SIGINT per
    Ctrl-C gives both the CLI's own graceful cancel (a second one forces it, as with `pulumi up`).
    """

    def __init__(
        self, root: str | None = None, version: VersionInfo | None = None, skip_version_check: bool = False
    ) -> None:
        super().__init__(root=root, version=version, skip_version_check=skip_version_check)
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> CommandResult:
        """Run one CLI command as `PulumiCommand.run` does, in a new session, tracked for `interrupt`."""
        separator = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:separator]:
            args.insert(0, "--non-interactive")  # never prompt: fail instead of hanging
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        if os.path.isabs(self.command):  # plugins bundled beside the binary come first
            env["PATH"] = os.pathsep.join([os.path.dirname(self.command), env.get("PATH", "")])
        stdout: list[str] = []
        stderr: list[str] = []
        process: subprocess.Popen[str] | None = None
        try:
            with signals_held():  # started and tracked with no interrupt in between
                process = subprocess.Popen(
                    [self.command, *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=cwd,
                    env=env,
                    encoding="utf-8",
                    start_new_session=True,
                )
                with self._lock:
                    self._running.add(process)
            readers = [
                threading.Thread(target=_consume, args=(process.stdout, on_output, stdout), daemon=True),
                threading.Thread(target=_consume, args=(process.stderr, on_error, stderr), daemon=True),
            ]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join()
            process.wait()
        finally:
            if process is not None:
                with self._lock:
                    self._running.discard(process)
                # Still running only when this thread was interrupted (Ctrl-C or SIGTERM reach the main thread; the
                # rollout's threads are cancelled through `interrupt`). In its own session, the CLI gets no signal
                # from the terminal: it is sent its graceful cancel, then killed with its plugins if it lingers.
                stop(process, first=signal.SIGINT, grace=_STOP_SECONDS)
        result = CommandResult(stdout="\n".join(stdout), stderr="\n".join(stderr), code=process.returncode)
        if result.code != 0:
            raise create_command_error(result)
        return result

    def interrupt(self) -> int:
        """Send SIGINT to every running CLI command; the number of commands signalled."""
        with self._lock:
            running = [p for p in self._running if p.poll() is None]
        for process in running:
            try:
                process.send_signal(signal.SIGINT)
            except ProcessLookupError:  # it ended meanwhile
                continue
        return len(running)


def _consume(stream: IO[str] | None, callback: OnOutput | None, lines: list[str]) -> None:
    if stream is None:
        return
    for line in iter(stream.readline, ""):
        stripped = line.rstrip()
        if callback:
            callback(stripped)
        lines.append(stripped)
    stream.close()


def plain(text: str) -> str:
    """Text without terminal colour codes."""
    return _ANSI.sub("", text).strip()


def _op_name(op: Any) -> str:
    return str(getattr(op, "value", op))


def _changes(op_map: Mapping[Any, int] | None) -> dict[str, int]:
    return {_op_name(kind): int(count) for kind, count in (op_map or {}).items()}


def _drifted(op: str, meta: StepEventMetadata) -> bool:
    # A refresh step reports the resource's keys that differ from the state, or no new state when
    # the resource is gone; other operations than "same" are drift by themselves.
    if op == "refresh":
        return bool(meta.diffs or meta.detailed_diff or (meta.old is not None and meta.new is None))
    return op not in NO_DRIFT_KINDS


class _Session:
    """One operation on one stack: its log file, its events, what went wrong."""

    def __init__(self, stack: str, operation: str, progress: Progress, log_file: Path, header: str) -> None:
        self.stack = stack
        self.operation = operation
        self.progress = progress
        self.log_file = log_file
        self.violations: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.stderr: list[str] = []
        self.drifted: dict[str, str] = {}  # urn -> what changed outside Pulumi
        self._lock = threading.Lock()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_file.open("w", encoding="utf-8")
        self.log(header)

    def __enter__(self) -> _Session:
        self.progress.stack_started(self.stack, self.operation)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.progress.stack_finished(self.stack)
        with self._lock:
            self._log.close()

    def log(self, line: str) -> None:
        """Append a line to the stack's log file."""
        with self._lock:
            if not self._log.closed:
                self._log.write(line + "\n")
                self._log.flush()

    def on_output(self, line: str) -> None:
        """The CLI's stdout."""
        self.log(line)

    def on_error(self, line: str) -> None:
        """The CLI's stderr."""
        self.log(f"stderr: {line}")
        if line.strip():
            self.stderr.append(plain(line))

    def on_event(self, event: EngineEvent) -> None:
        """Engine events: progress, policy findings, errors, drifted resources."""
        step = event.resource_pre_event or event.res_outputs_event or event.res_op_failed_event
        if step is not None:
            meta = step.metadata
            op = _op_name(meta.op)
            if self.operation == "drift" and _drifted(op, meta) and meta.urn not in self.drifted:
                self.drifted[meta.urn] = "deleted" if meta.new is None and meta.old is not None else op
            if event.resource_pre_event:
                self.progress.step_started(self.stack, meta.urn, op, meta.type)
            else:
                self.progress.step_finished(
                    self.stack, meta.urn, op, meta.type, failed=event.res_op_failed_event is not None
                )
        policy = event.policy_event
        if policy is not None:
            finding = f"{policy.policy_name} ({policy.enforcement_level}): {plain(policy.message)}"
            if policy.resource_urn:
                finding += f" [{policy.resource_urn}]"
            self.log(f"policy: {finding}")
            if policy.enforcement_level == "mandatory":
                self.violations.append((policy.policy_name, policy.resource_urn or ""))
            self.progress.message(f"{self.stack}: policy {finding}")
        diagnostic = event.diagnostic_event
        if diagnostic is not None and diagnostic.severity == "error" and plain(diagnostic.message):
            self.errors.append(plain(diagnostic.message))

    def callbacks(self) -> dict[str, Any]:
        """Keyword arguments of every Automation API operation."""
        return {"on_output": self.on_output, "on_error": self.on_error, "on_event": self.on_event, "color": "never"}

    def failure(self, error: CommandError) -> str:
        """A short reason for a failed command (the whole story is in the log file)."""
        # CommandError's text is "code: ... stdout: ... stderr: ..."; its stderr part says why.
        text = str(error)
        stderr = text.partition(" stderr: ")[2] or text
        lines = self.errors or self.stderr or [plain(line) for line in stderr.splitlines() if line.strip()]
        shown = lines[-_MESSAGE_LINES:] if not self.errors else lines[:_MESSAGE_LINES]
        return "; ".join(" ".join(line.split()) for line in shown)


class LiveRunner:
    """The `Runner` on the Automation API: local program in the repo root, stack files as they are."""

    def __init__(
        self,
        project: Project,
        configs: Mapping[str, StackConfig],
        *,
        backend_url: str,
        command: PulumiCommand,
        progress: Progress,
        log_dir: Path,
        policies: Sequence[PolicyInfo] | None = None,
    ) -> None:
        self._project = project
        self._configs = configs
        self._backend = backend_url
        self._command = command
        self._progress = progress
        self._log_dir = log_dir
        self._cancelled = threading.Event()
        # The pack's policies and config schemas, which say where each stack setting goes; asked once if not given.
        self._policies = tuple(policies) if policies is not None else None
        self._policies_lock = threading.Lock()

    # -- the Runner protocol ---------------------------------------------------------------------

    def preview(self, stack: str) -> OpResult:
        """`pulumi preview` with the policy pack, after checking the backup stack's outputs."""
        return self._run(stack, "preview", self._preview)

    def up(self, stack: str) -> OpResult:
        """`pulumi up` with the policy pack, after checking the backup stack's outputs."""
        return self._run(stack, "up", self._up)

    def refresh(self, stack: str) -> OpResult:
        """`pulumi refresh` of a deployed stack."""
        return self._run(stack, "refresh", self._refresh)

    def destroy(self, stack: str) -> OpResult:
        """`pulumi destroy`, refused for a stack with a compliance-locked vault."""
        return self._run(stack, "destroy", self._destroy)

    def drift(self, stack: str) -> OpResult:
        """A refresh preview: what differs between the cloud and the state, changing neither."""
        return self._run(stack, "drift", self._drift)

    def cancel(self) -> None:
        """Forward Ctrl-C to the running CLI commands (a second call forces them to stop)."""
        self._cancelled.set()
        if isinstance(self._command, TrackedPulumiCommand):
            self._command.interrupt()

    # -- operations --------------------------------------------------------------------------------

    def _preview(self, session: _Session) -> OpResult:
        return self._gated(session, "preview", lambda result: result.change_summary)

    def _up(self, session: _Session) -> OpResult:
        return self._gated(session, "up", lambda result: result.summary.resource_changes)

    def _gated(
        self, session: _Session, operation: str, changes_of: Callable[[Any], Mapping[Any, int] | None]
    ) -> OpResult:
        """`preview` or `up`: the backup stack's outputs checked first, then the operation under the policy pack."""
        blocked = self._backup_outputs_problem(session)
        if blocked:
            return OpResult(Outcome.FAILED, message=blocked)
        run = getattr(self._stack(session.stack, create=True), operation)
        result = run(
            policy_packs=list(POLICY_PACKS),
            policy_pack_configs=self._policy_pack_configs(session),
            message=f"{PROJECT} {operation}",
            **session.callbacks(),
        )
        return OpResult(Outcome.SUCCEEDED, changes=_changes(changes_of(result)))

    def _policy_pack_configs(self, session: _Session) -> list[str]:
        """The stack's pack config, built as the offline gate builds it, written beside the stack's log."""
        policies = self._pack_policies()
        cfg = self._configs[session.stack]
        config = pack_config(
            self._project.root / POLICY_PACKS[0],
            policies,
            cfg,
            lambda message: session.log(f"warning: {message}"),
            configs_for(self._project, cfg, self._configs),
        )
        reconcile(policies, config)  # a config the offline gate refuses stops here, naming the problem
        path = write_pack_config(session.log_file.with_suffix(".policy-config.json"), config)
        session.log(f"# policy pack config: {path}")
        return [str(path)]

    def _pack_policies(self) -> tuple[PolicyInfo, ...]:
        with self._policies_lock:
            if self._policies is None:
                with PolicyGate(self._project.root / POLICY_PACKS[0]) as gate:
                    self._policies = tuple(gate.policies)
            return self._policies

    def _refresh(self, session: _Session) -> OpResult:
        result = self._stack(session.stack, create=False).refresh(message=f"{PROJECT} refresh", **session.callbacks())
        return OpResult(Outcome.SUCCEEDED, changes=_changes(result.summary.resource_changes))

    def _destroy(self, session: _Session) -> OpResult:
        refusal = destroy_refusal(self._configs[session.stack])
        if refusal:
            return OpResult(Outcome.REFUSED, message=refusal)
        try:
            stack = self._stack(session.stack, create=False)
        except StackNotFoundError:
            return OpResult(Outcome.SUCCEEDED, message=f"not deployed in {self._backend}: nothing to destroy")
        result = stack.destroy(message=f"{PROJECT} destroy", **session.callbacks())
        return OpResult(Outcome.SUCCEEDED, changes=_changes(result.summary.resource_changes))

    def _drift(self, session: _Session) -> OpResult:
        result = self._stack(session.stack, create=False).preview_refresh(**session.callbacks())
        changes = _changes(result.change_summary)
        drifted = {kind: n for kind, n in changes.items() if n and kind not in NO_DRIFT_KINDS}
        if not drifted and not session.drifted:
            return OpResult(Outcome.SUCCEEDED, changes=changes)
        resources = [f"{what} {urn}" for urn, what in session.drifted.items()]
        detail = "; ".join(resources[:_MESSAGE_LINES]) or ", ".join(f"{k} {n}" for k, n in drifted.items())
        more = len(resources) - _MESSAGE_LINES
        return OpResult(
            Outcome.DRIFT,
            changes=changes,
            message=f"the cloud differs from the state: {detail}" + (f" (+{more} more)" if more > 0 else ""),
        )

    # -- plumbing --------------------------------------------------------------------------------

    def _options(self) -> LocalWorkspaceOptions:
        return LocalWorkspaceOptions(
            env_vars={BACKEND_ENV: self._backend, "PULUMI_SKIP_UPDATE_CHECK": "true"},
            pulumi_command=self._command,
        )

    def _stack(self, name: str, *, create: bool) -> Stack:
        factory: Callable[..., Stack] = create_or_select_stack if create else select_stack
        return factory(stack_name=name, work_dir=str(self._project.root), opts=self._options())

    def _backup_outputs_problem(self, session: _Session) -> str | None:
        cfg = self._configs[session.stack]
        if cfg.role != ROLE_WORKLOAD:
            return None
        try:
            outputs = self._stack(cfg.backup_stack, create=False).outputs()
        except StackNotFoundError:
            problem = (
                f"it reads the backup account's outputs from {cfg.backup_stack!r} (pgf-backup:backup_stack), "
                f"which does not exist in {self._backend}: deploy it first (`pgf-backup up --stacks backup`)"
            )
        else:
            missing = missing_backup_outputs(cfg, {key: out.value for key, out in outputs.items()})
            if not missing:
                return None
            problem = (
                f"the outputs of {cfg.backup_stack} lack what it needs ({'; '.join(missing)}): "
                "run `pgf-backup up --stacks backup` first"
            )
        session.log(f"pgf-backup: {problem}")
        return problem

    def _log_path(self, stack: str, operation: str) -> Path:
        return self._log_dir / f"{stack}.{operation}.log"

    def _run(self, stack: str, operation: str, body: Callable[[_Session], OpResult]) -> OpResult:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        header = f"# {PROJECT} {operation} {stack} - {started} - backend {self._backend}"
        with _Session(stack, operation, self._progress, self._log_path(stack, operation), header) as session:
            try:
                result = body(session)
            except StackNotFoundError:
                result = OpResult(
                    Outcome.FAILED, message=f"not deployed in {self._backend}: run `pgf-backup up --stacks {stack}`"
                )
            except ConcurrentUpdateError:
                result = OpResult(Outcome.FAILED, message=locked_message(stack, self._backend))
            except CommandError as error:
                if session.violations:
                    result = OpResult(Outcome.POLICY, message=policy_message(session.violations))
                elif self._cancelled.is_set():
                    result = OpResult(
                        Outcome.INTERRUPTED,
                        message="cancelled: the engine stopped after its in-flight operations and saved the state",
                    )
                else:
                    result = OpResult(Outcome.FAILED, message=session.failure(error))
            except (OSError, InvalidVersionError) as error:
                result = OpResult(Outcome.FAILED, message=f"could not run the Pulumi CLI: {error}")
            except GateError as error:
                result = OpResult(Outcome.FAILED, message=f"policy pack config: {error}")
            if result.outcome == Outcome.SUCCEEDED and session.violations:
                result = replace(result, outcome=Outcome.POLICY, message=policy_message(session.violations))
            session.log(f"# result: {result.outcome}{': ' + result.message if result.message else ''}")
        return replace(result, log_file=session.log_file)


def locked_message(stack: str, backend: str) -> str:
    """What to do when another update holds the stack's lock."""
    if backend.startswith(("https://", "http://")):
        unlock = f"if none is running, `pulumi cancel --stack {stack}` releases it"
    else:
        unlock = (
            "if none is running (a crashed run left its lock), delete the lock file under "
            f"{backend.rstrip('/')}/.pulumi/locks/organization/{PROJECT}/{stack}/"
        )
    return (
        f"stack {stack} is locked: another update is in progress (another operator or CI job). "
        f"Wait for it to finish and run again; {unlock}"
    )
