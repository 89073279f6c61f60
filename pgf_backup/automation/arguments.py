"""The command line's argparse pieces: the parser class every command uses, and argument types (files and
folders checked before any work starts)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path


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
    """argparse that reports usage errors as exit status 2 without exiting the interpreter."""

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
