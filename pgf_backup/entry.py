"""The `pgf-backup` console script and `python -m pgf_backup`: signal handling first, then the CLI.

Importing the CLI takes about a second (pulumi, pydantic, boto3); Ctrl-C or SIGTERM during it ends the
command like any interrupted one (exit 130, no traceback), so this module imports nothing heavy before
it has set that up. Run without the project's virtualenv, it says which package is missing and how to
get it instead of a ModuleNotFoundError traceback.
"""

from __future__ import annotations

import os
import signal
import sys

TYPE_CHECKING = False  # typing itself costs milliseconds before the signal handlers are in place
if TYPE_CHECKING:
    from typing import NoReturn

INTERRUPTED = 130  # ExitStatus.INTERRUPTED (pgf_backup.automation.status), before anything is imported
USAGE = 2  # ExitStatus.USAGE
# The runtime dependencies (pyproject.toml's [project] dependencies) by import name -> distribution name.
DEPENDENCIES = {
    "pulumi": "pulumi",
    "pulumi_aws": "pulumi-aws",
    "pulumi_policy": "pulumi-policy",
    "boto3": "boto3",
    "botocore": "botocore",
    "pydantic": "pydantic",
    "yaml": "PyYAML",
    "grpc": "grpcio",
    "google.protobuf": "protobuf",
    "rich": "rich",
}
OWN_PACKAGES = ("pgf_backup", "components")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def quiet_grpc() -> None:
    """gRPC's C core logs at INFO level on stderr when the policy pack goes away (as it does on Ctrl-C, which reaches
    it too): keep its errors only, unless the operator asked for more (GRPC_VERBOSITY, read when gRPC starts)."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def install_signal_handlers() -> None:
    """SIGTERM (a cancelled CI job, `kill`) interrupts like Ctrl-C: KeyboardInterrupt, exit 130.

    A SIGTERM the caller set to be ignored stays ignored.
    """
    # SIGINT already raises KeyboardInterrupt: Python's default handler, installed before any of this runs.
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _interrupt)


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package ("google" for google.protobuf)
        return False


def missing_dependencies_message(error: ModuleNotFoundError) -> str:
    """What to tell the operator when a dependency cannot be imported: which one, and how to get it."""
    missing = [dist for module, dist in DEPENDENCIES.items() if not _installed(module)]
    name = (error.name or "").partition(".")[0]
    if not missing:  # not one of ours: name what Python could not find
        missing = [name or str(error)]
    return (
        f"error: {sys.executable} lacks the package(s) pgf-backup needs: {', '.join(missing)}.\n"
        "Use the project's virtualenv: `make plan` creates .venv and installs them (once); then "
        "`.venv/bin/pgf-backup <command>` (or `.venv/bin/python -m pgf_backup <command>`) runs any command."
    )


def _fail_on_missing(error: ModuleNotFoundError) -> NoReturn:
    name = error.name or ""
    if name.partition(".")[0] in OWN_PACKAGES:  # a broken checkout or a bug, not a missing dependency
        raise error
    print(missing_dependencies_message(error), file=sys.stderr)
    sys.exit(USAGE)


def _interrupted() -> NoReturn:
    # Nothing was started yet; another signal while Python shuts down ends it at once, without a traceback.
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _exit_interrupted)
    print("interrupted", file=sys.stderr)
    sys.exit(INTERRUPTED)


def _exit_interrupted(_signum: int, _frame: object) -> None:
    os._exit(INTERRUPTED)


def main() -> NoReturn:
    """Console script entry point: signal handling, then the CLI (`pgf_backup.automation.cli.entry`)."""
    try:
        install_signal_handlers()
        quiet_grpc()
        from pgf_backup.automation import cli

        cli.entry()  # exits with the command's status
    except KeyboardInterrupt:  # while importing the CLI (a command's own interrupt is handled by cli.main)
        _interrupted()
    except ModuleNotFoundError as error:  # importing the CLI, or a dependency only a command imports (grpc, ...)
        _fail_on_missing(error)
    sys.exit(0)  # not reached: cli.entry exits
