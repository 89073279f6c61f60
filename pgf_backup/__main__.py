"""`python -m pgf_backup`: the same as the `pgf-backup` command."""

from pgf_backup.automation.cli import entry

entry()
