"""Rules of the pgf-backup CrossGuard pack: pure functions, with thin pulumi_policy validators in `registry`."""
