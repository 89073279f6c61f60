"""Tests of the exports package (Glue Data Catalog and the export store)."""
