"""The Pulumi program: everything happens in pgf_backup.stacks."""

from pgf_backup.stacks import run

run()
