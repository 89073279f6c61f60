"""Exports to S3 of what AWS Backup does not cover (Glue Data Catalog, QuickSight): standard library and boto3 only."""
