"""pgf-backup: PGF's multi-account AWS Backup strategy as a Pulumi program, with its tooling."""

__version__ = "0.1.0"
