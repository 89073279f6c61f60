"""Exports in S3: gzip NDJSON and opaque objects streamed in bounded parts, a manifest written last, verification.

An export is a prefix holding objects and `manifest.json`. The manifest is written last and lists every
object with its size and the SHA-256 of its stored bytes, so an export without one (a failed run) or whose
objects differ from it (tampered, truncated) is refused before anything reads it.

Standard library, boto3 and botocore only: this module is packaged into the export Lambdas.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, BinaryIO

import botocore.config
from botocore.exceptions import ClientError

MANIFEST = "manifest.json"
FORMAT = 1

# Glue and QuickSight throttle listing calls; adaptive mode adds client-side rate limiting to standard
# retries (https://docs.aws.amazon.com/boto3/latest/guide/retries.html). Every exports client uses it.
# In a client Config, max_attempts counts retries ("setting this value to 2 will result in the request being
# retried at most two times after the initial request", botocore's Config reference): 11 attempts in all;
# botocore rewrites this dict in place to {"total_max_attempts": 11} when it makes the first client.
RETRY_CONFIG = botocore.config.Config(retries={"mode": "adaptive", "max_attempts": 10})

# "Part size: 5 MiB to 5 GiB. There is no minimum size limit on the last part of your multipart upload."
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html)
MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PART_BYTES = 5 * 1024 * 1024 * 1024
# "Part numbers: 1 to 10,000 (inclusive)" (same page).
MAX_PARTS = 10_000
_READ_CHUNK = 1024 * 1024
_KIND = re.compile(r"[a-z0-9][a-z0-9_-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Bucket naming rules: 3-63 characters, lowercase letters, digits, dots and hyphens, starting and ending with a
# letter or digit (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RESERVED = frozenset({"format", "complete", "created", "prefix", "objects", "counts"})


class InvalidExport(Exception):  # noqa: N818 (the name the export modules share)
    """An export that must not be read: its manifest is missing or incomplete, or an object differs from it."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> ("bucket", "a/b/"): the bucket and a prefix that is empty or ends with "/"."""
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an S3 URL: expected s3://BUCKET[/PREFIX]")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"{url!r}: {bucket!r} is not a bucket name (3-63 lowercase letters, digits, dots and hyphens)")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if prefix.startswith("/") or "//" in prefix:
        raise ValueError(f"{url!r}: the prefix {prefix!r} has an empty path segment")
    return bucket, prefix


def _normal_prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else f"{prefix}/"


def _url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _json_default(value: object) -> str:
    # Glue returns timestamps as datetimes; botocore accepts ISO 8601 strings for timestamp members.
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(record: object) -> bytes:
    """One compact JSON document as UTF-8 (datetimes as ISO 8601)."""
    return json.dumps(record, default=_json_default, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class ObjectEntry:
    """One object of an export, as its manifest lists it (key relative to the export prefix)."""

    key: str
    kind: str
    records: int
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        """The manifest's entry."""
        return asdict(self)


class _Upload:
    """One object uploaded in parts of `part_bytes` as bytes arrive: a single PutObject when it stays under one
    part, a multipart upload otherwise. At most about one part is buffered."""

    def __init__(self, s3: Any, bucket: str, key: str, *, content_type: str, sse: dict[str, str], part_bytes: int):
        self._s3, self._bucket, self._key = s3, bucket, key
        self._content_type, self._sse, self._part_bytes = content_type, sse, part_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) >= self._part_bytes:
            with memoryview(self._buffer) as view:
                part = bytes(view[: self._part_bytes])
            del self._buffer[: self._part_bytes]
            self._send_part(part)

    def _send_part(self, body: bytes) -> None:
        if self._upload_id is None:
            created = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ContentType=self._content_type, **self._sse
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ValueError(
                f"{_url(self._bucket, self._key)} needs more than {MAX_PARTS} parts of {self._part_bytes} bytes; "
                "raise part_bytes"
            )
        sent = self._s3.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def close(self) -> str:
        """Store what remains; returns the SHA-256 (hex) of the stored bytes."""
        if self._upload_id is None:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=self._buffer,  # botocore takes a bytearray as is: no copy of the object
                ContentType=self._content_type,
                **self._sse,
            )
        else:
            if self._buffer:
                self._send_part(bytes(self._buffer))
            self._s3.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer.clear()
        return self._sha.hexdigest()

    def abort(self) -> None:
        """Drop what was sent (an incomplete multipart upload is stored, and billed, until aborted)."""
        self._buffer.clear()
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
            self._upload_id = None


class NdjsonWriter:
    """Records of one kind as gzip NDJSON objects `{kind}-{n:05d}.ndjson.gz`, rolled every
    `max_records_per_object` records; a context manager (an exception aborts the object being written)."""

    def __init__(self, export: ExportWriter, kind: str) -> None:
        self._export = export
        self.kind = kind
        self._upload: _Upload | None = None
        self._compressor: Any = None
        self._key = ""
        self._records = 0
        self.closed = False

    def __enter__(self) -> NdjsonWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (a JSON object)."""
        if self.closed:
            raise RuntimeError(f"the {self.kind} writer is closed")
        if self._upload is None:
            self._key = self._export._next_name(self.kind)
            self._upload = self._export._upload(self._key, "application/x-ndjson")
            # wbits 31: a gzip member (header and trailer) rather than a raw zlib stream.
            self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        self._upload.write(self._compressor.compress(dumps(record) + b"\n"))
        self._records += 1
        if self._records >= self._export.max_records_per_object:
            self._close_object()

    def _close_object(self) -> None:
        if self._upload is None:
            return
        self._upload.write(self._compressor.flush())
        digest = self._upload.close()
        self._export._add(ObjectEntry(self._key, self.kind, self._records, self._upload.size, digest))
        self._upload, self._compressor, self._records = None, None, 0

    def close(self) -> None:
        """Store the last object (a kind without records stores none)."""
        if not self.closed:
            self._close_object()
            self.closed = True
            self._export._open.discard(self)

    def _abort(self) -> None:
        if self._upload is not None:
            self._upload.abort()
            self._upload = None
        self.closed = True
        self._export._open.discard(self)


class ExportWriter:
    """Writes one export under `prefix` of `bucket`: NDJSON and streamed objects, then the manifest (`finish`)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str,
        *,
        kms_key_id: str | None = None,
        part_bytes: int = 8 * 1024 * 1024,
        max_records_per_object: int = 250_000,
    ) -> None:
        if not MIN_PART_BYTES <= part_bytes <= MAX_PART_BYTES:
            raise ValueError(
                f"part_bytes={part_bytes}: S3 multipart parts are 5 MiB ({MIN_PART_BYTES}) to 5 GiB (except the last)"
            )
        if max_records_per_object < 1:
            raise ValueError(f"max_records_per_object={max_records_per_object}: at least 1")
        self.s3 = s3
        self.bucket = bucket
        self.prefix = _normal_prefix(prefix)
        self.part_bytes = part_bytes
        self.max_records_per_object = max_records_per_object
        self._sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
        self.objects: list[ObjectEntry] = []
        self.counts: dict[str, int] = {}
        self._sequence: dict[str, int] = {}
        self._names: set[str] = set()
        self._open: set[NdjsonWriter] = set()
        self._finished = False

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError(f"the export {_url(self.bucket, self.prefix)} is finished")

    def _kind(self, kind: str) -> str:
        if not _KIND.fullmatch(kind):
            raise ValueError(f"kind {kind!r}: lowercase letters, digits, '_' and '-' only")
        self.counts.setdefault(kind, 0)
        return kind

    def _next_name(self, kind: str) -> str:
        n = self._sequence.get(kind, 0)
        self._sequence[kind] = n + 1
        return self._claim(f"{kind}-{n:05d}.ndjson.gz")

    def _claim(self, name: str) -> str:
        if not name or name.startswith("/") or ".." in name.split("/") or name == MANIFEST or name in self._names:
            raise ValueError(f"object name {name!r} is not a new relative name in the export (nor {MANIFEST})")
        self._names.add(name)
        return name

    def _upload(self, name: str, content_type: str) -> _Upload:
        return _Upload(
            self.s3,
            self.bucket,
            self.prefix + name,
            content_type=content_type,
            sse=self._sse,
            part_bytes=self.part_bytes,
        )

    def _add(self, entry: ObjectEntry) -> None:
        self.objects.append(entry)
        self.counts[entry.kind] = self.counts.get(entry.kind, 0) + entry.records

    def ndjson(self, kind: str) -> NdjsonWriter:
        """A writer of `kind` records (use it as a context manager)."""
        self._check_open()
        writer = NdjsonWriter(self, self._kind(kind))
        self._open.add(writer)
        return writer

    def put_stream(
        self,
        kind: str,
        name: str,
        stream: BinaryIO,
        content_type: str = "application/octet-stream",
        records: int = 1,
    ) -> ObjectEntry:
        """Store what `stream` yields as `name` (relative to the prefix), in bounded parts."""
        self._check_open()
        self._kind(kind)
        upload = self._upload(self._claim(name), content_type)
        try:
            # Reads of at most a part (an HTTP body may return less than asked): one part buffered, about.
            while chunk := stream.read(min(self.part_bytes, _READ_CHUNK)):
                upload.write(chunk)
            digest = upload.close()
        except BaseException:
            upload.abort()
            raise
        entry = ObjectEntry(name, kind, records, upload.size, digest)
        self._add(entry)
        return entry

    def finish(self, **summary: Any) -> dict[str, Any]:
        """Write `manifest.json` (last, marking the export complete) and return it."""
        self._check_open()
        if self._open:
            raise RuntimeError(f"writers still open: {sorted(w.kind for w in self._open)}; close them first")
        clash = sorted(_RESERVED & summary.keys())
        if clash:
            raise ValueError(f"summary fields {clash} are the manifest's own")
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "complete": True,
            "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "prefix": self.prefix,
            "objects": [entry.to_json() for entry in self.objects],
            "counts": dict(self.counts),
            **summary,
        }
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self.prefix + MANIFEST,
            Body=dumps(manifest),
            ContentType="application/json",
            **self._sse,
        )
        self._finished = True
        return manifest

    def abort(self) -> None:
        """After a failure: abort the open uploads; the objects already stored stay, without a manifest.

        Nothing is deleted on purpose: the export functions hold no s3:DeleteObject on the bucket that keeps the
        backups (a compromised function must not be able to hide them behind delete markers). A folder without
        `manifest.json` is no export to any reader here (`read_manifest`, `verify`, the imports refuse it).
        """
        for writer in list(self._open):
            writer._abort()
        self.objects.clear()
        self._finished = True


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


_MISSING = ("NoSuchKey", "404", "NotFound")


def read_manifest(s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """The export's manifest; InvalidExport when it is missing, not JSON, malformed or not complete."""
    key = _normal_prefix(prefix) + MANIFEST
    where = _url(bucket, key)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if _error_code(e) in _MISSING:
            raise InvalidExport(f"{where}: manifest missing (no export here, or its run failed before the end)") from e
        raise
    try:
        manifest = json.loads(body)
    except ValueError as e:
        raise InvalidExport(f"{where}: manifest is not JSON ({e})") from e
    if not isinstance(manifest, dict):
        raise InvalidExport(f"{where}: manifest is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise InvalidExport(f"{where}: manifest format {manifest.get('format')!r}, this reader knows {FORMAT}")
    if manifest.get("complete") is not True:
        raise InvalidExport(f"{where}: manifest incomplete (complete is {manifest.get('complete')!r}, not true)")
    objects = manifest.get("objects")
    counts = manifest.get("counts")
    if not isinstance(objects, list) or not isinstance(counts, dict):
        raise InvalidExport(f"{where}: manifest lacks its objects list or counts")
    if not all(isinstance(n, int) for n in counts.values()):
        raise InvalidExport(f"{where}: manifest counts are not all integers: {counts!r}")
    seen: set[str] = set()
    for n, entry in enumerate(objects):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("key"), str)
            and entry["key"]
            and not entry["key"].startswith("/")
            and ".." not in entry["key"].split("/")
            and entry["key"] not in seen
            and isinstance(entry.get("kind"), str)
            and isinstance(entry.get("records"), int)
            and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256"), str)
            and _SHA256.fullmatch(entry["sha256"])
        ):
            raise InvalidExport(f"{where}: manifest entry {n} is malformed or repeated: {entry!r}")
        seen.add(entry["key"])
    return manifest


def verify(s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """The manifest, once every object it lists exists with its size and SHA-256; InvalidExport names the first
    object that differs."""
    prefix = _normal_prefix(prefix)
    manifest = read_manifest(s3, bucket, prefix)
    for entry in manifest["objects"]:
        key = prefix + entry["key"]
        where = _url(bucket, key)
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if _error_code(e) in _MISSING:
                raise InvalidExport(f"{where}: object missing (the manifest lists it)") from e
            raise
        body = response["Body"]
        try:
            if response["ContentLength"] != entry["bytes"]:
                raise InvalidExport(
                    f"{where}: size mismatch ({response['ContentLength']} bytes stored, {entry['bytes']} listed)"
                )
            sha = hashlib.sha256()
            while chunk := body.read(_READ_CHUNK):
                sha.update(chunk)
        finally:
            body.close()
        if sha.hexdigest() != entry["sha256"]:
            raise InvalidExport(f"{where}: sha256 mismatch ({sha.hexdigest()} stored, {entry['sha256']} listed)")
    return manifest


def iter_ndjson(s3: Any, bucket: str, key: str) -> Iterator[dict[str, Any]]:
    """The records of one gzip NDJSON object (`key` is the object's full key), streamed."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        decompressor = zlib.decompressobj(31)
        pending = b""
        while True:
            # max_length bounds what one step inflates (gzip can expand a chunk a hundredfold).
            if decompressor.unconsumed_tail:
                data = decompressor.decompress(decompressor.unconsumed_tail, _READ_CHUNK)
            elif chunk := body.read(_READ_CHUNK):
                data = decompressor.decompress(chunk, _READ_CHUNK)
            else:
                break
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if line.strip():
                    yield json.loads(line)
        if not decompressor.eof:
            raise InvalidExport(f"{_url(bucket, key)}: gzip stream truncated")
        if pending.strip():
            yield json.loads(pending)
    finally:
        body.close()
