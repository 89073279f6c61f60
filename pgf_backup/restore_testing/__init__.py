"""The restore testing validation function: checks a restored resource, reports to AWS Backup, writes evidence."""
