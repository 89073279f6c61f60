"""The `pgf-backup` command line: `main(argv) -> ExitStatus`, no side effects at import."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from pgf_backup.automation import (
    drill_command,
    driver,
    exports_command,
    plan_command,
    restore_command,
    runbook_command,
    verify_command,
)
from pgf_backup.automation.arguments import Parser, UsageError, VersionAction
from pgf_backup.automation.status import ExitStatus
from pgf_backup.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand.

    The global options (`--project-dir`) are accepted before or after the command: every `Parser` adds them
    (arguments.add_global_options); only the top level gives their defaults.
    """
    parser = Parser(prog="pgf-backup", description="PGF's multi-account AWS Backup rollout.")
    parser.set_defaults(project_dir=None)
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    # Every command registers the same way: its module adds its parser and sets its handler.
    for module in (
        plan_command,
        driver,
        exports_command,
        verify_command,
        drill_command,
        restore_command,
        runbook_command,
    ):
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> ExitStatus:
    """Run one command; user errors become a message and an exit status, never a traceback."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except UsageError:
        return ExitStatus.USAGE
    except SystemExit as exit_:  # --help
        return ExitStatus.OK if not exit_.code else ExitStatus.USAGE
    try:
        # Every subcommand carries its handler (set by its module's add_commands).
        handler = getattr(args, "handler", None)
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
    """Console script entry point, behind `pgf_backup.entry` (which makes SIGTERM interrupt as Ctrl-C does)."""
    status = int(ExitStatus.INTERRUPTED)
    try:
        try:
            status = int(main())
            sys.stdout.flush()  # while an interrupt still ends as one
            sys.stderr.flush()
        finally:
            _exit_on_signals()
    except KeyboardInterrupt:  # outside the command's own handling (parsing arguments, flushing its output)
        _exit_on_signals()
        status = int(ExitStatus.INTERRUPTED)
        print("interrupted", file=sys.stderr)
    except BrokenPipeError:  # output piped into `head` and closed early
        status = int(ExitStatus.OK)
    sys.exit(status)


def _exit_on_signals() -> None:
    """From here on (interpreter shutdown), SIGINT and SIGTERM end the process at once with the interrupted status:
    every child has been stopped, and a KeyboardInterrupt in a shutdown hook would print a traceback."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM))
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) not in (signal.SIG_IGN, None):
                signal.signal(sig, _exit_interrupted)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _exit_interrupted(_signum: int, _frame: object) -> None:
    os._exit(ExitStatus.INTERRUPTED)
