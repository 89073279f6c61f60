"""Glue Data Catalog export to S3 (databases, tables, partitions, user-defined functions, optionally table
versions) and import back from a verified export.

Listing goes through botocore's paginators at each operation's largest page (read from botocore's model),
one page in memory at a time, streamed into the export store; the manifest is written last, so a failed run
leaves none. An import verifies the whole export first, then recreates what it holds with the *Input shapes
botocore defines (each record keeps only their members), partitions in batches of BatchCreatePartition's
maximum.

Standard library, boto3 and botocore only: this module is packaged into the export Lambda.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from pgf_backup.exports.store import ExportWriter, InvalidExport, verify
from pgf_backup.exports.store import iter_ndjson as _iter_ndjson

logger = logging.getLogger(__name__)

DATABASES, TABLES, PARTITIONS, FUNCTIONS, TABLE_VERSIONS = (
    "databases",
    "tables",
    "partitions",
    "functions",
    "table_versions",
)
IMPORTED = (DATABASES, TABLES, PARTITIONS, FUNCTIONS)
ON_CONFLICT = ("fail", "skip", "replace")
# Failures that concern one item (reported, the import goes on); any other error stops the import.
ITEM_ERRORS = frozenset({"AlreadyExistsException", "InvalidInputException", "EntityNotFoundException"})
MAX_REPORTED_ERRORS = 1000
SOURCE = "glue-data-catalog"

Progress = Callable[[int, int, str], None]


class CatalogExportError(RuntimeError):
    """A Glue call failed during an export (after botocore's retries); no manifest was written."""

    def __init__(self, operation: str, where: str, cause: object) -> None:
        self.operation = operation
        self.where = where
        super().__init__(f"{operation} failed for {where}: {cause}; the export was abandoned, no manifest written")


class CatalogConflict(Exception):  # noqa: N818 (a refusal, not a failure)
    """on_conflict='fail' found a database of the export already in the target catalog; nothing was written."""


class DatabaseNotInExport(InvalidExport, ValueError):  # noqa: N818 (a kind of InvalidExport)
    """import_catalog(database=NAME) for a database the export does not hold; nothing was called."""


class CatalogImportError(RuntimeError):
    """A Glue call failed during an import for a reason that is not about one item (access, quota, throttling
    past retries); what was written before it is in `report`."""

    def __init__(self, operation: str, where: str, cause: object, report: ImportReport) -> None:
        self.operation = operation
        self.where = where
        self.report = report
        super().__init__(f"{operation} failed for {where}: {cause}; the import stopped there")


def max_page_size(glue: Any, operation: str) -> int:
    """The largest MaxResults botocore's model allows for `operation` (fewest pages)."""
    shape = glue.meta.service_model.operation_model(operation).input_shape.members["MaxResults"]
    return int(shape.metadata["max"])


def max_batch(glue: Any, operation: str, member: str) -> int:
    """The most items the list `member` of `operation` takes in one call, from botocore's model."""
    shape = glue.meta.service_model.operation_model(operation).input_shape.members[member]
    return int(shape.metadata["max"])


def to_input(shape: Any, value: Any) -> Any:
    """`value` (a record as Glue returns it) reduced to the members of botocore's input `shape`, recursively."""
    if shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members
        return {name: to_input(members[name], item) for name, item in value.items() if name in members}
    if shape.type_name == "list" and isinstance(value, list):
        return [to_input(shape.member, item) for item in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {key: to_input(shape.value, item) for key, item in value.items()}
    if shape.type_name == "timestamp" and isinstance(value, str):
        # The export writes timestamps in ISO 8601; botocore would parse the string with dateutil, twice (to
        # validate and to serialize), at a millisecond each.
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return value


class _Pages:
    """Items of Glue listings, page by page at the largest page size; counts the pages of each operation."""

    def __init__(
        self, glue: Any, error: Callable[[str, str, Exception], Exception], calls: dict[str, int] | None = None
    ) -> None:
        self.glue = glue
        self.calls: dict[str, int] = {} if calls is None else calls
        self._error = error

    def items(self, operation: str, where: str, **params: Any) -> Iterator[dict[str, Any]]:
        pages = self.glue.get_paginator(xform_name(operation)).paginate(
            **params, PaginationConfig={"PageSize": max_page_size(self.glue, operation)}
        )
        key = pages.result_keys[0].expression
        try:
            for page in pages:
                self.calls[operation] = self.calls.get(operation, 0) + 1
                yield from page.get(key, [])
        except (ClientError, BotoCoreError) as e:
            raise self._error(operation, where, e) from e


def _elsewhere(record: Mapping[str, Any]) -> bool:
    # A resource link (TargetDatabase, TargetTable) or a federated database: what it holds belongs to another
    # catalog, which exports itself; the link is exported and recreated, not its target's content. A link's
    # name answers "wherever you would use the database or table name"
    # (https://docs.aws.amazon.com/lake-formation/latest/dg/resource-links-about.html), so listing through it
    # would copy the target's tables or partitions into this export, and an import would write them here.
    return bool(record.get("TargetDatabase") or record.get("FederatedDatabase") or record.get("TargetTable"))


def export_prefix(root: str, account_id: str, region: str, now: datetime) -> str:
    """`{root}/{account}/{region}/{UTC time}/`."""
    stamp = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return f"{root.strip('/')}/{account_id}/{region}/{stamp:%Y%m%dT%H%M%SZ}/"


def export_catalog(
    glue: Any,
    s3: Any,
    *,
    bucket: str,
    account_id: str,
    region: str,
    kms_key_id: str | None = None,
    include_table_versions: bool = False,
    databases: list[str] | None = None,
    root: str = "catalog",
    now: datetime | None = None,
    writer_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the catalog of `glue`'s account and region under `{root}/{account}/{region}/{time}/`; returns
    the manifest (written last). CatalogExportError when a call fails: then nothing stays in S3."""
    if not root.strip("/"):
        raise ValueError("root must not be empty")
    prefix = export_prefix(root, account_id, region, now or datetime.now(UTC))
    writer = ExportWriter(s3, bucket, prefix, kms_key_id=kms_key_id, **dict(writer_options or {}))
    pages = _Pages(glue, CatalogExportError)
    wanted = None if databases is None else set(databases)
    kinds = [DATABASES, TABLES, PARTITIONS, FUNCTIONS] + ([TABLE_VERSIONS] if include_table_versions else [])
    catalog: dict[str, dict[str, int]] = {}
    try:
        with contextlib.ExitStack() as stack:
            out = {kind: stack.enter_context(writer.ndjson(kind)) for kind in kinds}
            for database in pages.items("GetDatabases", "the catalog"):
                name = database["Name"]
                if wanted is not None and name not in wanted:
                    continue
                out[DATABASES].write(database)
                tally = catalog[name] = dict.fromkeys(kinds[1:], 0)
                if _elsewhere(database):
                    continue
                for table in pages.items("GetTables", f"database {name!r}", DatabaseName=name):
                    table_name = table["Name"]
                    out[TABLES].write({**table, "DatabaseName": name})
                    tally[TABLES] += 1
                    if _elsewhere(table):
                        continue
                    where = f"table {name}.{table_name}"
                    for partition in pages.items("GetPartitions", where, DatabaseName=name, TableName=table_name):
                        out[PARTITIONS].write({**partition, "DatabaseName": name, "TableName": table_name})
                        tally[PARTITIONS] += 1
                    if include_table_versions:
                        for version in pages.items("GetTableVersions", where, DatabaseName=name, TableName=table_name):
                            out[TABLE_VERSIONS].write({"DatabaseName": name, "TableName": table_name, **version})
                            tally[TABLE_VERSIONS] += 1
                # Pattern is required ("Required: Yes",
                # https://docs.aws.amazon.com/glue/latest/webapi/API_GetUserDefinedFunctions.html) but its syntax is
                # not documented there: "*" is the Hive metastore's match-all, which Glue's catalog mirrors.
                for function in pages.items(
                    "GetUserDefinedFunctions", f"database {name!r}", DatabaseName=name, Pattern="*"
                ):
                    out[FUNCTIONS].write({**function, "DatabaseName": name})
                    tally[FUNCTIONS] += 1
            missing = sorted((wanted or set()) - catalog.keys())
            if missing:
                raise CatalogExportError("GetDatabases", "the catalog", f"no database named {', '.join(missing)}")
        return writer.finish(
            source=SOURCE,
            account_id=account_id,
            region=region,
            include_table_versions=include_table_versions,
            databases=len(catalog),
            catalog=catalog,
            api_calls=dict(pages.calls),
        )
    except BaseException:
        try:
            writer.abort()
        except (ClientError, BotoCoreError):
            logger.warning("could not abort the uploads of the abandoned export s3://%s/%s", bucket, prefix)
        raise


# -- import ----------------------------------------------------------------------------------------------


def _blank() -> dict[str, dict[str, int]]:
    return {kind: {"created": 0, "skipped": 0, "replaced": 0, "failed": 0} for kind in IMPORTED}


@dataclass
class ImportReport:
    """What an import did (or, dry run, would do): counts per kind and outcome, item errors, Glue calls."""

    source: str
    on_conflict: str
    dry_run: bool
    database: str | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=_blank)
    errors: list[dict[str, str]] = field(default_factory=list)
    errors_omitted: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    not_imported: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Items that were not imported because of an error."""
        return sum(outcome["failed"] for outcome in self.counts.values())

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        """Add `n` items of `kind` to `outcome`."""
        self.counts[kind][outcome] += n

    def error(self, kind: str, name: str, operation: str, code: str, message: str) -> None:
        """Record one item's failure (the first MAX_REPORTED_ERRORS are kept, the rest counted)."""
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"kind": kind, "name": name, "operation": operation, "code": code, "message": message})
        else:
            self.errors_omitted += 1

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {**asdict(self), "failed": self.failed}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", error))


class _Import:
    """One import: its Glue calls (counted; no write in a dry run), what the target holds, the report."""

    def __init__(
        self,
        glue: Any,
        s3: Any,
        *,
        bucket: str,
        prefix: str,
        manifest: Mapping[str, Any],
        report: ImportReport,
        progress: Progress | None,
    ) -> None:
        self.glue, self.s3, self.bucket = glue, s3, bucket
        self.report = report
        self.skip = report.on_conflict == "skip"
        self.progress = progress
        self.pages = _Pages(glue, self._stop, report.calls)
        model = glue.meta.service_model
        self.shapes = {
            DATABASES: model.shape_for("DatabaseInput"),
            TABLES: model.shape_for("TableInput"),
            PARTITIONS: model.shape_for("PartitionInput"),
            FUNCTIONS: model.shape_for("UserDefinedFunctionInput"),
        }
        self.objects: dict[str, list[str]] = {}
        for entry in manifest["objects"]:
            self.objects.setdefault(entry["kind"], []).append(prefix + entry["key"])
        self.totals = _totals(manifest, report.database)
        self.selected: set[str] = set()
        self.existing: set[str] = set()
        self.existing_tables: dict[str, set[str]] = {}
        self.existing_functions: dict[str, set[str]] = {}
        self.failed_databases: set[str] = set()
        # Tables whose partitions are not written, with the outcome their partitions take (skipped, failed).
        self.held: dict[tuple[str, str], str] = {}

    def records(self, kind: str) -> Iterator[dict[str, Any]]:
        """The export's records of `kind` in the selected databases, streamed."""
        for key in self.objects.get(kind, []):
            for record in _iter_ndjson(self.s3, self.bucket, key):
                if kind == DATABASES or record["DatabaseName"] in self.selected:
                    yield record

    def _stop(self, operation: str, where: str, cause: Exception) -> Exception:
        return CatalogImportError(operation, where, cause, self.report)

    def _names(self, operation: str, where: str, name_key: str, **params: Any) -> set[str]:
        return {item[name_key] for item in self.pages.items(operation, where, **params)}

    def _input(self, kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
        return dict(to_input(self.shapes[kind], record))

    def _tick(self, kind: str, done: int) -> None:
        if self.progress is not None:
            self.progress(done, self.totals.get(kind, done), kind)

    def call(self, operation: str, kind: str, name: str, **params: Any) -> dict[str, Any] | None:
        """One write ({} in a dry run, without calling); None when it failed for this item (reported)."""
        if self.report.dry_run:
            return {}
        self.report.calls[operation] = self.report.calls.get(operation, 0) + 1
        try:
            return dict(getattr(self.glue, xform_name(operation))(**params))
        except ClientError as e:
            if _code(e) not in ITEM_ERRORS:
                raise CatalogImportError(operation, f"{kind} {name}", e, self.report) from e
            self.report.error(kind, name, operation, _code(e), _message(e))
            return None
        except BotoCoreError as e:
            raise CatalogImportError(operation, f"{kind} {name}", e, self.report) from e

    def outcome(self, kind: str, response: dict[str, Any] | None, success: str) -> str:
        """Count one write's outcome; in skip mode an item created since the listing counts as skipped."""
        if response is not None:
            self.report.count(kind, success)
            return success
        errors = self.report.errors
        if self.skip and errors and errors[-1]["code"] == "AlreadyExistsException":
            errors.pop()
            self.report.count(kind, "skipped")
            return "skipped"
        self.report.count(kind, "failed")
        return "failed"

    def plan(self, databases: list[dict[str, Any]]) -> None:
        """Read what the target holds of the export's databases, before any write; refuse in fail mode."""
        self.selected = {d["Name"] for d in databases}
        self.existing = self._names("GetDatabases", "the target catalog", "Name")
        conflicts = [d["Name"] for d in databases if d["Name"] in self.existing]
        if conflicts and self.report.on_conflict == "fail":
            # Tables and functions live in databases: none can exist where the database does not.
            more = f" (and {len(conflicts) - 1} more of the export's)" if len(conflicts) > 1 else ""
            raise CatalogConflict(
                f"database {conflicts[0]!r} already exists in the target catalog{more}; "
                "on_conflict='fail' wrote nothing (use 'skip' or 'replace')"
            )
        for name in conflicts:
            where = f"database {name!r}"
            self.existing_tables[name] = self._names("GetTables", where, "Name", DatabaseName=name)
            self.existing_functions[name] = self._names(
                "GetUserDefinedFunctions", where, "FunctionName", DatabaseName=name, Pattern="*"
            )

    def databases(self, databases: list[dict[str, Any]]) -> None:
        """CreateDatabase, or for an existing one UpdateDatabase (replace) or nothing (skip)."""
        for done, record in enumerate(databases, start=1):
            name = record["Name"]
            db_input = self._input(DATABASES, record)
            if name not in self.existing:
                outcome = self.outcome(
                    DATABASES, self.call("CreateDatabase", DATABASES, name, DatabaseInput=db_input), "created"
                )
            elif self.skip:
                outcome = "skipped"
                self.report.count(DATABASES, outcome)
            else:
                response = self.call("UpdateDatabase", DATABASES, name, Name=name, DatabaseInput=db_input)
                outcome = self.outcome(DATABASES, response, "replaced")
            if outcome == "failed":
                self.failed_databases.add(name)
            self._tick(DATABASES, done)

    def tables(self) -> None:
        """CreateTable, or for an existing one DeleteTable then CreateTable (replace) or nothing (skip)."""
        for done, record in enumerate(self.records(TABLES), start=1):
            db, name = record["DatabaseName"], record["Name"]
            label = f"{db}.{name}"
            if db in self.failed_databases:
                self.report.count(TABLES, "failed")
                self.held[(db, name)] = "failed"
            elif name in self.existing_tables.get(db, ()):
                if self.skip:
                    self.report.count(TABLES, "skipped")
                    self.held[(db, name)] = "skipped"
                elif self._replace_table(db, name, record) == "failed":
                    self.held[(db, name)] = "failed"
            else:
                table_input = self._input(TABLES, record)
                response = self.call("CreateTable", TABLES, label, DatabaseName=db, TableInput=table_input)
                outcome = self.outcome(TABLES, response, "created")
                if outcome != "created":
                    self.held[(db, name)] = outcome
            self._tick(TABLES, done)

    def _replace_table(self, db: str, name: str, record: Mapping[str, Any]) -> str:
        # DeleteTable drops the table's partitions and versions with it ("you no longer have access to the table
        # versions and partitions that belong to the deleted table",
        # https://docs.aws.amazon.com/glue/latest/webapi/API_DeleteTable.html): the export's take their place.
        label = f"{db}.{name}"
        if self.call("DeleteTable", TABLES, label, DatabaseName=db, Name=name) is None:
            return self.outcome(TABLES, None, "replaced")
        table_input = self._input(TABLES, record)
        response = self.call("CreateTable", TABLES, label, DatabaseName=db, TableInput=table_input)
        if response is None:
            self.report.errors[-1]["message"] = "deleted, then not recreated: " + self.report.errors[-1]["message"]
        return self.outcome(TABLES, response, "replaced")

    def partitions(self) -> None:
        """BatchCreatePartition per table in batches of the API's maximum; the export lists each table's
        partitions together, so every table takes the fewest calls."""
        # 100 in botocore's model, as documented: PartitionInputList "Array Members: Minimum number of 0 items.
        # Maximum number of 100 items." (https://docs.aws.amazon.com/glue/latest/webapi/API_BatchCreatePartition.html)
        limit = max_batch(self.glue, "BatchCreatePartition", "PartitionInputList")
        batch: list[dict[str, Any]] = []
        table: tuple[str, str] = ("", "")
        done = 0
        for record in self.records(PARTITIONS):
            key = (record["DatabaseName"], record["TableName"])
            if key in self.held:
                self.report.count(PARTITIONS, self.held[key])
            else:
                if key != table or len(batch) >= limit:
                    self._create_partitions(table, batch)
                    self._tick(PARTITIONS, done)
                    table, batch = key, []
                batch.append(self._input(PARTITIONS, record))
            done += 1
        self._create_partitions(table, batch)
        self._tick(PARTITIONS, done)

    def _create_partitions(self, table: tuple[str, str], batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        db, name = table
        label = f"{db}.{name}"
        response = self.call(
            "BatchCreatePartition", PARTITIONS, label, DatabaseName=db, TableName=name, PartitionInputList=batch
        )
        if response is None:
            self.report.count(PARTITIONS, "failed", len(batch))
            return
        # The call succeeds as a whole; each partition it could not create is in Errors.
        errors = response.get("Errors", [])
        for error in errors:
            detail = error.get("ErrorDetail", {})
            code = str(detail.get("ErrorCode", ""))
            if code == "AlreadyExistsException" and self.skip:
                self.report.count(PARTITIONS, "skipped")
                continue
            self.report.count(PARTITIONS, "failed")
            values = ",".join(error.get("PartitionValues", []))
            message = str(detail.get("ErrorMessage", ""))
            self.report.error(PARTITIONS, f"{label}[{values}]", "BatchCreatePartition", code, message)
        self.report.count(PARTITIONS, "created", len(batch) - len(errors))

    def functions(self) -> None:
        """CreateUserDefinedFunction, or for an existing one UpdateUserDefinedFunction (replace) or nothing."""
        for done, record in enumerate(self.records(FUNCTIONS), start=1):
            db, name = record["DatabaseName"], record["FunctionName"]
            label = f"{db}.{name}"
            function_input = self._input(FUNCTIONS, record)
            if db in self.failed_databases:
                self.report.count(FUNCTIONS, "failed")
            elif name not in self.existing_functions.get(db, ()):
                response = self.call(
                    "CreateUserDefinedFunction", FUNCTIONS, label, DatabaseName=db, FunctionInput=function_input
                )
                self.outcome(FUNCTIONS, response, "created")
            elif self.skip:
                self.report.count(FUNCTIONS, "skipped")
            else:
                response = self.call(
                    "UpdateUserDefinedFunction",
                    FUNCTIONS,
                    label,
                    DatabaseName=db,
                    FunctionName=name,
                    FunctionInput=function_input,
                )
                self.outcome(FUNCTIONS, response, "replaced")
            self._tick(FUNCTIONS, done)


def _totals(manifest: Mapping[str, Any], database: str | None) -> dict[str, int]:
    per_database = manifest.get("catalog")
    if database is not None and isinstance(per_database, Mapping) and database in per_database:
        return {DATABASES: 1, **per_database[database]}
    return {kind: int(n) for kind, n in manifest["counts"].items()}


def import_catalog(
    glue: Any,
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    database: str | None = None,
    on_conflict: str = "fail",
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Recreate the catalog (or one `database`) of a verified export in `glue`'s account and region.

    The export is verified first (every object's size and SHA-256): store.InvalidExport before any call to
    Glue. on_conflict: "fail" refuses (CatalogConflict) when a database of the export exists, before any
    write; "skip" leaves existing databases, tables (with their partitions) and functions as they are;
    "replace" updates existing databases and functions and deletes then recreates existing tables.
    A dry run reads the export and the target and reports what it would do, without writing.
    Table versions are history: exported, not imported (counted in `not_imported`).
    """
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict={on_conflict!r}: one of {', '.join(ON_CONFLICT)}")
    prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
    source = f"s3://{bucket}/{prefix}"
    manifest = verify(s3, bucket, prefix)
    report = ImportReport(source=source, on_conflict=on_conflict, dry_run=dry_run, database=database)
    report.not_imported = {kind: int(n) for kind, n in manifest["counts"].items() if kind not in IMPORTED and n}
    run = _Import(glue, s3, bucket=bucket, prefix=prefix, manifest=manifest, report=report, progress=progress)

    # One record per database: small enough to hold, and needed before anything is written.
    databases = list(run.records(DATABASES))
    if database is not None:
        if database not in {d["Name"] for d in databases}:
            held = ", ".join(sorted(d["Name"] for d in databases)) or "none"
            raise DatabaseNotInExport(f"database {database!r} is not in the export {source} (it holds: {held})")
        databases = [d for d in databases if d["Name"] == database]
    run.plan(databases)
    run.databases(databases)
    run.tables()
    run.partitions()
    run.functions()
    return report
