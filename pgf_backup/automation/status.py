"""Exit statuses of every `pgf-backup` command (documented in the README's exit code tables)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Exit codes of every `pgf-backup` command (documented in the README)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    DRIFT = 3
    POLICY = 4
    INTERRUPTED = 130
