"""`python -m pgf_backup`: the same as the `pgf-backup` command."""

from pgf_backup.entry import main

main()
