"""The export store against moto's S3: NDJSON objects rolled and uploaded in parts, the manifest last, verification."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pgf_backup.exports import store
from pgf_backup.exports.store import (
    MANIFEST,
    ExportWriter,
    InvalidExport,
    iter_ndjson,
    parse_s3_url,
    read_manifest,
    verify,
)

BUCKET = "pgf-exports"
PREFIX = "catalog/111122223333/ca-central-1/20250102T030405Z/"
MiB = 1024 * 1024


@pytest.fixture
def s3(fake_credentials: None) -> Iterator[Any]:
    """moto's S3 with the export bucket; the client records every call (operation, parameters)."""
    with mock_aws():
        client = boto3.client("s3", region_name="ca-central-1", config=store.RETRY_CONFIG)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ca-central-1"})
        client.calls = []  # type: ignore[attr-defined]

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            body = params.get("Body")
            size = len(body) if isinstance(body, (bytes, bytearray)) else None
            client.calls.append((model.name, {k: v for k, v in params.items() if k != "Body"}, size))

        # Before botocore wraps bodies in file objects: the parameters as the caller gave them.
        client.meta.events.register("provide-client-params.s3", record)
        yield client


def ops(s3: Any) -> list[str]:
    return [name for name, _, _ in s3.calls]


def noise(n: int, seed: int) -> str:
    """Text that gzip shrinks by a quarter only (base64 of random bytes), to reach part sizes quickly."""
    return base64.b64encode(os.urandom(n)).decode() + str(seed)


def stored(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


# -- URLs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://pgf-exports/a/b/", ("pgf-exports", "a/b/")),
        ("s3://pgf-exports/a/b", ("pgf-exports", "a/b/")),
        ("s3://pgf-exports/", ("pgf-exports", "")),
        ("s3://pgf-exports", ("pgf-exports", "")),
    ],
)
def test_an_s3_url_gives_its_bucket_and_a_prefix_ending_with_a_slash(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://pgf-exports/a", "not an S3 URL"),
        ("pgf-exports/a", "not an S3 URL"),
        ("s3:///a", "is not a bucket name"),
        ("s3://Bad_Bucket/a", "is not a bucket name"),
        ("s3://pgf-exports//a", "empty path segment"),
        ("s3://pgf-exports/a//b", "empty path segment"),
    ],
)
def test_a_malformed_s3_url_is_refused_with_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_s3_url(url)


# -- writing ---------------------------------------------------------------------------------------------


def test_records_roll_over_into_numbered_objects_that_read_back_in_order(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX, max_records_per_object=3)
    records = [{"Name": f"db{i}", "n": i} for i in range(7)]
    with writer.ndjson("databases") as out:
        for record in records:
            out.write(record)
    with writer.ndjson("functions"):
        pass
    manifest = writer.finish(account_id="111122223333")

    keys = [entry["key"] for entry in manifest["objects"]]
    assert keys == ["databases-00000.ndjson.gz", "databases-00001.ndjson.gz", "databases-00002.ndjson.gz"]
    assert [entry["records"] for entry in manifest["objects"]] == [3, 3, 1]
    # A kind without records stores no object but is counted.
    assert manifest["counts"] == {"databases": 7, "functions": 0}
    assert manifest["account_id"] == "111122223333"
    read = [r for key in keys for r in iter_ndjson(s3, BUCKET, PREFIX + key)]
    assert read == records
    for entry in manifest["objects"]:
        body = stored(s3, PREFIX + entry["key"])
        assert len(body) == entry["bytes"]
        assert store.hashlib.sha256(body).hexdigest() == entry["sha256"]
        # Each object is a whole gzip member of JSON lines.
        assert gzip.decompress(body).decode().count("\n") == entry["records"]


def test_an_object_smaller_than_a_part_is_one_put_object(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX)
    with writer.ndjson("tables") as out:
        out.write({"Name": "t"})
    writer.finish()
    assert ops(s3) == ["PutObject", "PutObject"]
    assert [params["Key"] for _, params, _ in s3.calls] == [PREFIX + "tables-00000.ndjson.gz", PREFIX + MANIFEST]


def test_a_large_object_goes_up_in_parts_of_part_bytes_and_reads_back(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX, part_bytes=5 * MiB)
    records = [{"Values": [str(i)], "blob": noise(1536, i)} for i in range(8000)]  # about 12 MiB of gzip
    with writer.ndjson("partitions") as out:
        for record in records:
            out.write(record)
    manifest = writer.finish()

    parts = [size for name, _, size in s3.calls if name == "UploadPart"]
    assert ops(s3)[0] == "CreateMultipartUpload"
    assert "CompleteMultipartUpload" in ops(s3)
    assert len(parts) == 3
    # Every part but the last is exactly part_bytes: the writer buffers one part, about, never the object.
    assert parts[:-1] == [5 * MiB, 5 * MiB]
    assert 0 < parts[-1] <= 5 * MiB
    (entry,) = manifest["objects"]
    assert entry["bytes"] == sum(parts)
    assert list(iter_ndjson(s3, BUCKET, PREFIX + entry["key"])) == records
    assert verify(s3, BUCKET, PREFIX) == manifest


def test_an_error_while_writing_aborts_the_multipart_upload_and_propagates(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX, part_bytes=5 * MiB)
    with pytest.raises(RuntimeError, match="listing failed"), writer.ndjson("partitions") as out:
        for i in range(6000):
            out.write({"blob": noise(1536, i)})
            if i == 5000:
                raise RuntimeError("listing failed")
    assert "UploadPart" in ops(s3)
    assert ops(s3)[-1] == "AbortMultipartUpload"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0  # the object being written was never stored
    # The writer of the failed kind is closed; finishing writes a manifest without it.
    assert writer.finish()["objects"] == []


class Trickle(io.RawIOBase):
    """A stream that returns at most `step` bytes per read, as an HTTP body may."""

    def __init__(self, data: bytes, step: int, fail_after: int | None = None) -> None:
        self._data, self._step, self._at, self._fail_after = data, step, 0, fail_after

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self._at >= self._fail_after:
            raise ConnectionError("download interrupted")
        n = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._at : self._at + n]
        self._at += len(chunk)
        return chunk


def test_put_stream_uploads_a_stream_in_parts_and_lists_it(s3: Any) -> None:
    data = os.urandom(11 * MiB + 123)
    writer = ExportWriter(s3, BUCKET, PREFIX, part_bytes=5 * MiB)
    entry = writer.put_stream("bundles", "bundle-1.qs", Trickle(data, 700_000), content_type="application/zip")
    manifest = writer.finish()

    assert [size for name, _, size in s3.calls if name == "UploadPart"] == [5 * MiB, 5 * MiB, MiB + 123]
    assert entry == store.ObjectEntry("bundle-1.qs", "bundles", 1, len(data), store.hashlib.sha256(data).hexdigest())
    assert manifest["objects"] == [entry.to_json()]
    assert manifest["counts"] == {"bundles": 1}
    assert stored(s3, PREFIX + "bundle-1.qs") == data
    head = s3.head_object(Bucket=BUCKET, Key=PREFIX + "bundle-1.qs")
    assert head["ContentType"] == "application/zip"


def test_put_stream_of_a_small_stream_is_one_put_object(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX)
    entry = writer.put_stream("bundles", "small.qs", io.BytesIO(b"zip bytes"))
    assert ops(s3) == ["PutObject"]
    assert entry.bytes == 9


def test_a_failing_stream_aborts_its_upload_and_propagates(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX, part_bytes=5 * MiB)
    with pytest.raises(ConnectionError, match="download interrupted"):
        writer.put_stream("bundles", "b.qs", Trickle(os.urandom(8 * MiB), MiB, fail_after=6 * MiB))
    assert ops(s3) == ["CreateMultipartUpload", "UploadPart", "AbortMultipartUpload"]
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert writer.objects == []


def test_the_manifest_is_written_last_and_lists_every_object(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX, max_records_per_object=2)
    with writer.ndjson("tables") as tables, writer.ndjson("partitions") as partitions:
        for i in range(5):
            tables.write({"Name": f"t{i}"})
            partitions.write({"Values": [str(i)]})
        with pytest.raises(RuntimeError, match=r"writers still open: \['partitions', 'tables'\]"):
            writer.finish()
    manifest = writer.finish(region="ca-central-1")

    puts = [params["Key"] for name, params, _ in s3.calls if name == "PutObject"]
    assert puts[-1] == PREFIX + MANIFEST
    assert len(puts) == 7  # 3 + 3 objects, then the manifest
    assert sorted(PREFIX + e["key"] for e in manifest["objects"]) == sorted(puts[:-1])
    assert manifest["format"] == 1
    assert manifest["complete"] is True
    assert manifest["prefix"] == PREFIX
    assert manifest["created"].endswith("Z")
    assert manifest["counts"] == {"tables": 5, "partitions": 5}
    assert json.loads(stored(s3, PREFIX + MANIFEST)) == manifest
    with pytest.raises(RuntimeError, match="is finished"):
        writer.ndjson("more")


def test_summary_fields_cannot_replace_the_manifest_own(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX)
    with pytest.raises(ValueError, match=r"\['complete', 'counts'\] are the manifest's own"):
        writer.finish(complete=False, counts={})
    assert ops(s3) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"part_bytes": 5 * MiB - 1}, "5 MiB"),
        ({"part_bytes": 6 * 1024 * MiB}, "5 GiB"),
        ({"max_records_per_object": 0}, "at least 1"),
    ],
)
def test_writer_options_outside_s3_limits_are_refused(s3: Any, options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExportWriter(s3, BUCKET, PREFIX, **options)


@pytest.mark.parametrize("name", ["", "/abs", "../up", "a/../b", MANIFEST])
def test_put_stream_names_stay_inside_the_export(s3: Any, name: str) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX)
    with pytest.raises(ValueError, match="not a new relative name"):
        writer.put_stream("bundles", name, io.BytesIO(b"x"))


def test_every_write_is_encrypted_with_the_key_given(s3: Any) -> None:
    key_id = boto3.client("kms", region_name="ca-central-1").create_key()["KeyMetadata"]["Arn"]
    writer = ExportWriter(s3, BUCKET, PREFIX, kms_key_id=key_id, part_bytes=5 * MiB)
    with writer.ndjson("tables") as out:
        out.write({"Name": "t"})
    writer.put_stream("bundles", "big.qs", io.BytesIO(os.urandom(6 * MiB)))
    writer.finish()

    creating = [params for name, params, _ in s3.calls if name in ("PutObject", "CreateMultipartUpload")]
    assert len(creating) == 3
    for params in creating:
        assert params["ServerSideEncryption"] == "aws:kms"
        assert params["SSEKMSKeyId"] == key_id
    for key in ("tables-00000.ndjson.gz", "big.qs", MANIFEST):
        head = s3.head_object(Bucket=BUCKET, Key=PREFIX + key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == key_id


def test_without_a_key_the_bucket_default_encryption_applies(s3: Any) -> None:
    writer = ExportWriter(s3, BUCKET, PREFIX)
    with writer.ndjson("tables") as out:
        out.write({"Name": "t"})
    writer.finish()
    assert all("SSEKMSKeyId" not in params and "ServerSideEncryption" not in params for _, params, _ in s3.calls)


def test_abort_keeps_what_was_stored_and_writes_no_manifest(s3: Any) -> None:
    """The export functions may not delete (no s3:DeleteObject on the backup bucket): a failed run's objects stay,
    and with no manifest no reader takes them for an export."""
    writer = ExportWriter(s3, BUCKET, PREFIX, max_records_per_object=1)
    with writer.ndjson("tables") as out:
        for i in range(3):
            out.write({"Name": f"t{i}"})
    writer.abort()
    assert "DeleteObjects" not in ops(s3) and "DeleteObject" not in ops(s3)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert len(keys) == 3 and PREFIX + MANIFEST not in keys
    with pytest.raises(InvalidExport, match="manifest missing"):
        verify(s3, BUCKET, PREFIX)


# -- reading and verifying -------------------------------------------------------------------------------


@pytest.fixture
def export(s3: Any) -> dict[str, Any]:
    """A finished export of three objects."""
    writer = ExportWriter(s3, BUCKET, PREFIX, max_records_per_object=2)
    with writer.ndjson("tables") as out:
        for i in range(5):
            out.write({"Name": f"t{i}"})
    return writer.finish()


def test_verify_returns_the_manifest_of_an_intact_export(s3: Any, export: dict[str, Any]) -> None:
    assert verify(s3, BUCKET, PREFIX) == export
    assert verify(s3, BUCKET, PREFIX.rstrip("/")) == export


def test_verify_refuses_an_object_overwritten_with_other_bytes_of_the_same_size(
    s3: Any, export: dict[str, Any]
) -> None:
    key = PREFIX + "tables-00001.ndjson.gz"
    body = bytearray(stored(s3, key))
    body[-12] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    with pytest.raises(InvalidExport, match=rf"s3://{BUCKET}/{key}: sha256 mismatch"):
        verify(s3, BUCKET, PREFIX)


def test_verify_refuses_an_object_of_another_size(s3: Any, export: dict[str, Any]) -> None:
    key = PREFIX + "tables-00002.ndjson.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=stored(s3, key)[:-4])
    with pytest.raises(InvalidExport, match=rf"s3://{BUCKET}/{key}: size mismatch"):
        verify(s3, BUCKET, PREFIX)


def test_verify_refuses_a_truncated_export(s3: Any, export: dict[str, Any]) -> None:
    key = PREFIX + "tables-00000.ndjson.gz"
    s3.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(InvalidExport, match=rf"s3://{BUCKET}/{key}: object missing"):
        verify(s3, BUCKET, PREFIX)


def test_a_missing_manifest_is_refused(s3: Any, export: dict[str, Any]) -> None:
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + MANIFEST)
    with pytest.raises(InvalidExport, match=rf"s3://{BUCKET}/{PREFIX}{MANIFEST}: manifest missing"):
        verify(s3, BUCKET, PREFIX)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"complete": False}, "manifest incomplete"),
        ({"complete": "true"}, "manifest incomplete"),
        ({"format": 2}, "manifest format 2"),
        ({"objects": None}, "lacks its objects list"),
        ({"objects": [{"key": "../x", "kind": "t", "records": 1, "bytes": 1, "sha256": "0" * 64}]}, "malformed"),
    ],
)
def test_a_manifest_that_is_not_complete_or_well_formed_is_refused(
    s3: Any, export: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + MANIFEST, Body=json.dumps({**export, **change}).encode())
    with pytest.raises(InvalidExport, match=message):
        read_manifest(s3, BUCKET, PREFIX)


def test_a_manifest_that_is_not_json_is_refused(s3: Any, export: dict[str, Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + MANIFEST, Body=b'{"format": 1, "complete": tr')
    with pytest.raises(InvalidExport, match="manifest is not JSON"):
        read_manifest(s3, BUCKET, PREFIX)


def test_reading_a_truncated_gzip_object_fails_rather_than_stopping_short(s3: Any, export: dict[str, Any]) -> None:
    key = PREFIX + "tables-00000.ndjson.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=stored(s3, key)[:-8])
    with pytest.raises(InvalidExport, match="gzip stream truncated"):
        list(iter_ndjson(s3, BUCKET, key))
