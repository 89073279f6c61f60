"""Restore test evidence: the record (RTO and RPO of one restore test), its JSON Schema, where it is written.

The record's schema is `evidence.schema.json` beside this module (JSON Schema 2020-12). The function runs with the
standard library and boto3 only, so `schema_errors` checks a record against the schema's own keywords (the subset
the schema uses: type, enum, pattern, minimum, maxLength, required, properties, additionalProperties, items); the
tests check that it agrees with the `jsonschema` package on the same schema.

- restore duration (RTO): the restore job's CompletionDate minus its CreationDate (DescribeRestoreJob);
- recovery point age at the restore's start (RPO): the job's CreationDate minus its RecoveryPointCreationDate.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("evidence.schema.json")
SCHEMA_VERSION = 1
# pgf_backup.constants.RESTORE_EVIDENCE_PREFIX (repeated: the function's package holds this package only; a test
# checks they agree).
EVIDENCE_PREFIX = "restore-tests"
_KEY_PART = re.compile(r"^[A-Za-z0-9-]+$")


def load_schema() -> dict[str, Any]:
    """The evidence JSON Schema."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def iso(moment: datetime) -> str:
    """A UTC time stamp as the schema writes it (`2026-01-31T05:00:00Z`, microseconds kept when present)."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def evidence_key(account_id: str, region: str, completed: datetime, restore_job_id: str) -> str:
    """`restore-tests/<account>/<region>/<YYYY>/<MM>/<restore job id>.json` (month of the restore's completion)."""
    for part in (account_id, region, restore_job_id):
        if not _KEY_PART.fullmatch(part):
            raise ValueError(f"{part!r} cannot be part of an evidence key (letters, digits and '-' only)")
    when = completed.astimezone(UTC)
    return f"{EVIDENCE_PREFIX}/{account_id}/{region}/{when:%Y}/{when:%m}/{restore_job_id}.json"


def measures(job: dict[str, Any]) -> tuple[float, float]:
    """(restore duration seconds, recovery point age seconds at the restore's start) of a DescribeRestoreJob answer."""
    started, completed, point = job["CreationDate"], job["CompletionDate"], job["RecoveryPointCreationDate"]
    duration = (completed - started).total_seconds()
    age = (started - point).total_seconds()
    if duration < 0 or age < 0:
        raise ValueError(
            f"restore job {job.get('RestoreJobId')}: times out of order (recovery point {iso(point)}, "
            f"started {iso(started)}, completed {iso(completed)})"
        )
    return duration, age


# ---------------------------------------------------------------------------------------------
# The schema's keywords, checked without a third-party package

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_KNOWN = frozenset(
    {"$schema", "$id", "title", "description", "type", "enum", "pattern", "minimum", "maxLength", "required"}
    | {"properties", "additionalProperties", "items"}
)


def _type_ok(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON booleans are not numbers
    return isinstance(value, _TYPES[name])


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """What makes `value` invalid against `schema` (empty when valid); an unsupported keyword is an error."""
    unknown = set(schema) - _KNOWN
    if unknown:
        return [f"{path}: schema keyword(s) {sorted(unknown)} not supported by this checker"]
    if "type" in schema and not _type_ok(value, schema["type"]):
        return [f"{path}: {type(value).__name__} is not of type {schema['type']}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is below {schema['minimum']}")
    if isinstance(value, dict):
        errors.extend(f"{path}: '{key}' is required" for key in schema.get("required", ()) if key not in value)
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                errors.extend(schema_errors(item, properties[key], f"{path}.{key}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: '{key}' is not allowed")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors.extend(schema_errors(item, schema["items"], f"{path}[{index}]"))
    return errors


def validate(record: dict[str, Any]) -> None:
    """Raise ValueError naming every problem when `record` does not conform to the evidence schema."""
    errors = schema_errors(record, load_schema())
    if errors:
        raise ValueError("evidence does not conform to its schema: " + "; ".join(errors))


# ---------------------------------------------------------------------------------------------
# CRC-64/NVME: the checksum S3 computes by default (x-amz-checksum-crc64nvme); not in the standard library.
# Parameters of the CRC RevEng catalogue's CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5, initial value and
# final XOR all ones (check value of b"123456789": 0xae8b14860a799888, verified by the tests).

_CRC64_POLY = 0x9A6C9329AC4BC9B5
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _crc64_table()


class Crc64Nvme:
    """Incremental CRC-64/NVME (digest: 8 bytes, big-endian, as S3's base64 checksum encodes it)."""

    def __init__(self) -> None:
        self._crc = _MASK64

    def update(self, data: bytes) -> None:
        """Add bytes."""
        crc, table = self._crc, _CRC64_TABLE
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self._crc = crc

    def digest(self) -> bytes:
        """The checksum of the bytes so far."""
        return (self._crc ^ _MASK64).to_bytes(8, "big")
