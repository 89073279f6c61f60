"""The offline engine: evaluate the real program for a stack under Pulumi's mock runtime.

Each stack runs in its own process (`python -m pgf_backup.automation.offline`), because the
Pulumi runtime is process-global state. The parent reads the worker's JSON result.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import runpy
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgf_backup.automation import processes
from pgf_backup.config import ConfigError
from pgf_backup.project import Project

EXIT_CONFIG_ERROR = 2
EXIT_PROGRAM_ERROR = 1


@dataclass
class StackPlan:
    """What the offline engine recorded for one stack."""

    stack: str
    role: str
    account: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] | None = None
    # What the program logged with pulumi.log.warn (shown to the operator, not in the JSON).
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The `--json` shape of a stack."""
        data: dict[str, Any] = {
            "stack": self.stack,
            "role": self.role,
            "account": self.account,
            "resources": self.resources,
            "outputs": self.outputs,
        }
        if self.policy is not None:
            data["policy"] = self.policy
        return data


class StackError(Exception):
    """The program failed for a stack; the message says why (config error or program error)."""

    def __init__(self, stack: str, message: str, exit_code: int, warnings: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.stack = stack
        self.exit_code = exit_code
        self.warnings = list(warnings)


# ---------------------------------------------------------------------------------------------
# In the worker process


def evaluate(project: Project, stack: str, stack_outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run `__main__.py` for `stack` under the mock runtime in this process; the recorded plan."""
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from pgf_backup.automation.mocks import AwsMocks, RecordingMonitor, plain

    project.require_program()
    flat, secret_keys = project.stack_config(stack)
    os.environ["PULUMI_CONFIG"] = json.dumps(flat)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    mocks = AwsMocks(stack_outputs=stack_outputs)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=project.name, stack=stack, preview=False, monitor=monitor, logger=_program_logger()
    )
    if str(project.root) not in sys.path:
        sys.path.insert(0, str(project.root))

    def program() -> None:
        runpy.run_path(str(project.program), run_name="__main__")

    # What is alive now (the SDK's modules, the config models' schemas) outlives the run: frozen, it is left out of
    # the cycle collector's full collections during the run, which scan only what the run makes (each scanned some
    # 150,000 objects more, 0.1 s, two or three times per stack). Unfrozen after: what was garbage is collected again.
    # https://docs.python.org/3/library/gc.html#gc.freeze
    gc.freeze()
    try:
        _sync_await(run_pulumi_func(program))
        root = settings.get_root_resource()
        exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
        outputs = _sync_await(pulumi.Output.from_input(exported).future()) if exported else {}
        return {"resources": [r.to_json() for r in monitor.recorded], "outputs": plain(outputs or {})}
    finally:
        gc.unfreeze()


class _StderrHandler(logging.Handler):
    """Prints `<level>: <message>` to the current stderr, as the Pulumi SDK does without an engine."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


def _program_logger() -> logging.Logger:
    """Where the mock engine sends the program's `pulumi.log` messages (the parent tells warnings from errors)."""
    logger = logging.getLogger(f"{__name__}.program")
    if not logger.handlers:
        logger.addHandler(_StderrHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def worker_main(argv: list[str] | None = None) -> int:
    """`python -m pgf_backup.automation.offline`: evaluate one stack, write its JSON result."""
    parser = argparse.ArgumentParser(prog="pgf_backup.automation.offline")
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--stack-outputs", type=Path, help="JSON: stack reference name -> outputs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    refs = json.loads(args.stack_outputs.read_text()) if args.stack_outputs else {}
    try:
        project = Project.find(args.project_dir)
        result = evaluate(project, args.stack, refs)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except SystemExit as exit_:  # the program exits 2 on a config error, message already printed
        return int(exit_.code) if isinstance(exit_.code, int) else EXIT_PROGRAM_ERROR
    args.out.write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# In the parent process


def plan_stack(project: Project, stack: str, stack_outputs: dict[str, dict[str, Any]] | None = None) -> StackPlan:
    """Evaluate one stack in its own process; raises StackError with the worker's error and warnings."""
    cfg = project.load_config(stack)
    if not project.program.is_file():
        raise StackError(stack, f"{project.program} is missing", EXIT_CONFIG_ERROR)
    with tempfile.TemporaryDirectory(prefix="pgf-plan-") as tmp:
        refs_path = Path(tmp) / "refs.json"
        out_path = Path(tmp) / "plan.json"
        refs_path.write_text(json.dumps(stack_outputs or {}))
        command = [
            sys.executable,
            "-m",
            "pgf_backup.automation.offline",
            "--project-dir",
            str(project.root),
            "--stack",
            stack,
            "--stack-outputs",
            str(refs_path),
            "--out",
            str(out_path),
        ]
        returncode, stdout, stderr = _run_worker(command, project.root)
        warnings, error = split_stderr(stderr)
        if returncode != 0 or not out_path.is_file():
            message = error or stdout.strip() or f"exit code {returncode}"
            code = EXIT_CONFIG_ERROR if returncode == EXIT_CONFIG_ERROR else EXIT_PROGRAM_ERROR
            raise StackError(stack, message, code, warnings)
        result = json.loads(out_path.read_text())
    return StackPlan(
        stack=stack,
        role=cfg.role,
        account=cfg.account_id,
        resources=result["resources"],
        outputs=result["outputs"],
        warnings=warnings,
    )


_workers: set[subprocess.Popen[str]] = set()
_workers_lock = threading.Lock()


def _run_worker(command: Sequence[str], cwd: Path) -> tuple[int, str, str]:
    """Run a worker to its end: (exit code, stdout, stderr). Interrupted, it is killed before this returns.

    Ctrl-C on a terminal reaches the worker too, SIGTERM (a cancelled CI job) often only this process: either way
    the KeyboardInterrupt here kills the worker (it holds nothing worth a graceful end), never leaves it running.
    """
    process: subprocess.Popen[str] | None = None
    try:
        with processes.signals_held():  # started and recorded with no interrupt in between
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
            with _workers_lock:
                _workers.add(process)
        stdout, stderr = process.communicate()
        return process.returncode, stdout, stderr
    finally:
        if process is not None:
            with _workers_lock:
                _workers.discard(process)
            processes.stop(process, first=None)  # no-op once it has ended
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


def stop_workers() -> int:
    """Kill every running worker (the rollout's Ctrl-C, from another thread than theirs); how many were running."""
    with _workers_lock:
        running = [process for process in _workers if process.poll() is None]
    for process in running:
        try:
            process.kill()
        except ProcessLookupError:  # it ended meanwhile
            continue
    return len(running)


# How the Pulumi SDK prints log messages without an engine (pulumi.log), and how Python prints a crash.
_LEVELS = ("debug: ", "info: ", "warning: ", "error: ")
_TRACEBACK = "Traceback (most recent call last):"


def split_stderr(text: str) -> tuple[list[str], str]:
    """A worker's stderr as (warnings, error): the error runs from its `error:` line (or traceback) on."""
    blocks: list[list[str]] = []
    for line in text.strip().splitlines():
        # A message continues on the lines that do not start a new one.
        if not blocks or line.startswith((*_LEVELS, _TRACEBACK)):
            blocks.append([line])
        else:
            blocks[-1].append(line)
    warnings: list[str] = []
    rest: list[str] = []
    for index, block in enumerate(blocks):
        first = block[0]
        if first.startswith(("error: ", _TRACEBACK)):
            rest = ["\n".join(b) for b in blocks[index:]]
            break
        if first.startswith("warning: "):
            warnings.append("\n".join(block).removeprefix("warning: "))
        elif not first.startswith(_LEVELS):
            rest.append("\n".join(block))
    return warnings, "\n".join(rest).strip().removeprefix("error: ")


if __name__ == "__main__":
    sys.exit(worker_main())
