"""The evidence schema: the function's own checker agrees with `jsonschema`, and the key and measures are AWS's."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from pgf_backup.restore_testing import evidence

RECORD: dict[str, Any] = {
    "schema_version": 1,
    "restore_job_id": "A1B2C3D4-5678-90AB-CDEF-EXAMPLE11111",
    "restore_testing_plan_arn": "arn:aws:backup:ca-central-1:100000000010:restore-testing-plan:pgf_prod_restore_tests",
    "tier": "prod",
    "resource_type": "S3",
    "account_id": "100000000010",
    "region": "ca-central-1",
    "source_resource_arn": "arn:aws:s3:::pgf-prod-data",
    "created_resource_arn": "arn:aws:s3:::awsbackup-restore-test-abc",
    "recovery_point_arn": "arn:aws:backup:ca-central-1:100000000010:recovery-point:abc",
    "recovery_point_created_at": "2026-03-01T03:00:00Z",
    "restore_started_at": "2026-03-01T05:00:00Z",
    "restore_completed_at": "2026-03-01T05:12:30Z",
    "restore_duration_seconds": 750.0,
    "recovery_point_age_seconds": 7200.0,
    "validation": {
        "status": "SUCCESSFUL",
        "message": "3 checks passed, 0 skipped",
        "reported": True,
        "checks": [{"name": "s3:object_count", "status": "passed", "detail": "25 objects"}],
    },
    "validated_at": "2026-03-01T05:13:00.123456Z",
}


def _changed(path: str, value: Any) -> dict[str, Any]:
    record = copy.deepcopy(RECORD)
    *parents, last = path.split(".")
    target: Any = record
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return record


BAD = [
    ("restore_duration_seconds", -1),
    ("restore_duration_seconds", "750"),
    ("recovery_point_age_seconds", True),
    ("tier", "staging"),
    ("account_id", "12345"),
    ("restore_started_at", "2026-03-01 05:00:00"),
    ("validation.status", "TIMED_OUT"),
    ("validation.checks.0.status", "ok"),
    ("validation.checks.0.extra", "x"),
    ("validation.message", "x" * 1001),
    ("restore_job_id", KeyError),
    ("unexpected", 1),
    ("schema_version", 2),
]


def test_a_good_record_passes_both() -> None:
    assert evidence.schema_errors(RECORD, evidence.load_schema()) == []
    jsonschema.validate(RECORD, evidence.load_schema())
    jsonschema.Draft202012Validator.check_schema(evidence.load_schema())


@pytest.mark.parametrize(("path", "value"), BAD)
def test_each_bad_record_is_refused_by_both(path: str, value: Any) -> None:
    record = _changed(path, value)
    assert evidence.schema_errors(record, evidence.load_schema()), (path, value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, evidence.load_schema())
    with pytest.raises(ValueError, match="does not conform"):
        evidence.validate(record)


def test_an_unsupported_keyword_is_an_error_not_ignored() -> None:
    assert evidence.schema_errors("x", {"type": "string", "format": "date-time"})


def test_key_layout() -> None:
    completed = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    assert (
        evidence.evidence_key("100000000010", "ca-central-1", completed, "JOB-1")
        == "restore-tests/100000000010/ca-central-1/2026/03/JOB-1.json"
    )
    with pytest.raises(ValueError, match="cannot be part of an evidence key"):
        evidence.evidence_key("100000000010", "ca-central-1", completed, "../x")


def test_measures_are_rto_and_rpo() -> None:
    job = {
        "RestoreJobId": "J",
        "RecoveryPointCreationDate": datetime(2026, 3, 1, 3, tzinfo=UTC),
        "CreationDate": datetime(2026, 3, 1, 5, tzinfo=UTC),
        "CompletionDate": datetime(2026, 3, 1, 6, 30, tzinfo=UTC),
    }
    assert evidence.measures(job) == (5400.0, 7200.0)
    job["CompletionDate"] = datetime(2026, 3, 1, 4, tzinfo=UTC)
    with pytest.raises(ValueError, match="out of order"):
        evidence.measures(job)


def test_iso_is_utc_z() -> None:
    assert evidence.iso(datetime(2026, 3, 1, 5, tzinfo=UTC)) == "2026-03-01T05:00:00Z"
