"""The command line's argparse pieces: the parser class every command uses, the options every level of it accepts,
the stack selection of the multi-stack commands, and argument types (files and folders checked before any work
starts)."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgf_backup.config import ConfigError
from pgf_backup.constants import CONFIG_NAMESPACE, STACK_BACKUP

if TYPE_CHECKING:
    from pgf_backup.project import Project


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


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as exit status 2 without exiting the interpreter.

    Every parser of the command line (the top level, each command, each nested action) accepts the global options,
    so that `pgf-backup plan --project-dir DIR` and `pgf-backup --project-dir DIR plan` mean the same.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_global_options(self)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise UsageError


class UsageError(Exception):
    """A command line argparse refused (its message is already printed)."""


def role_name(text: str) -> str:
    """argparse type of `--role`: an IAM role name (the same pattern as `pgf-backup:iam`)."""
    if not re.fullmatch(r"[\w+=,.@-]{1,64}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IAM role name (1-64 of letters, digits, +=,.@_-)")
    return text


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """The options of every level of the command line.

    Their default is SUPPRESS: a command's parser sets them only when they are given, so a value given before the
    command is not reset by the command's defaults (argparse copies every attribute a subparser sets). The top-level
    parser gives their real defaults with `set_defaults`.
    """
    parser.add_argument(
        "--project-dir",
        type=project_folder,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="folder holding Pulumi.yaml (default: found at or above the current folder)",
    )


class VersionAction(argparse.Action):
    """`--version`: the installed distribution's version (importlib.metadata), read only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the version of pgf-backup and exit")
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        print(f"{parser.prog} {package_version()}", file=sys.stdout)
        parser.exit()


DISTRIBUTION = "pgf-backup"


def package_version() -> str:
    """The version of the installed `pgf-backup` distribution (pyproject.toml's `version`)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed (`pip install -e .`)
        return "unknown (not installed)"


# ---------------------------------------------------------------------------------------------
# Stack selection of the multi-stack commands (plan, preview, up, refresh, destroy, drift)

_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # what the Pulumi CLI allows in a stack name
STACK_OPTIONS = ("--stack", "--stacks")
STACK_METAVAR = "NAME[,NAME...]"


class StackList(argparse.Action):
    """`--stack a,b`, `--stack a --stack b`, `--stack a b`, and `--stacks` for each: one list, in the order given.

    Registered with `add_stack_option`; the names are checked against the project by `selected_stacks` (the
    project folder is known only once the whole command line is parsed).
    """

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        names: list[str] = list(getattr(namespace, self.dest, None) or [])
        for value in [values] if isinstance(values, str) else values:
            given = [name.strip() for name in value.split(",") if name.strip()]
            if not given:
                raise argparse.ArgumentError(self, f"{value!r} names no stack; give {STACK_METAVAR}")
            for name in given:
                if not _STACK_NAME.fullmatch(name):
                    raise argparse.ArgumentError(
                        self, f"{name!r} is not a stack name (letters, digits, '-', '_' and '.')"
                    )
            names.extend(given)
        setattr(namespace, self.dest, names)


def add_stack_option(parser: Any, what: str) -> argparse.Action:
    """Add `--stack`/`--stacks` (the same option) to a multi-stack command; `parser` may be a group."""
    action: argparse.Action = parser.add_argument(
        *STACK_OPTIONS,
        dest="stacks",
        action=StackList,
        nargs="+",
        metavar="NAME",
        help=f"{what}: comma-separated, space-separated or repeated (--stacks is the same option)",
    )
    return action


def selected_stacks(project: Project, names: Sequence[str] | None) -> list[str]:
    """The chosen stacks (default: every stack) in rollout order; ConfigError names an unknown one.

    The message lists the known stacks, and for a stack file that exists but is not rolled out, says where the
    rollout lists its stacks (`rollout_order` in the backup stack's file).
    """
    from pgf_backup.project import rollout_order

    known = project.known_stacks()
    unknown = [name for name in dict.fromkeys(names or ()) if name not in known]
    if unknown:
        raise ConfigError(unknown_stacks_message(project, unknown, known))
    return rollout_order(names, known)


def unknown_stacks_message(project: Project, unknown: Sequence[str], known: Sequence[str]) -> str:
    """`unknown stack(s) X; allowed: ...`, with a hint per unknown name: its file unlisted, or a likely typo."""
    hints: list[str] = []
    for name in unknown:
        if project.stack_file(name).is_file():
            hints.append(unlisted_hint(project, name))
        else:
            close = difflib.get_close_matches(name, known, n=1)
            if close:
                hints.append(f"did you mean {close[0]!r}?")
    message = f"unknown stack(s) {', '.join(unknown)}; allowed: {', '.join(known)}"
    return "; ".join([message, *hints])


def unlisted_hint(project: Project, stack: str) -> str:
    """Why a stack whose file exists is not part of the rollout, and the fix."""
    return (
        f"{project.stack_file(stack).name} exists but {stack!r} is not in {CONFIG_NAMESPACE}:rollout_order of "
        f"{project.stack_file(STACK_BACKUP).name}: add it there to plan and roll it out"
    )


def unlisted_stacks(project: Project) -> list[str]:
    """Stacks that have a file in the project but are not rolled out (not in `rollout_order`), sorted."""
    known = set(project.known_stacks())
    found = (path.name[len("Pulumi.") : -len(".yaml")] for path in project.root.glob("Pulumi.*.yaml"))
    return sorted(stack for stack in found if stack and stack not in known)
