"""Glue Data Catalog export and import: round trips against moto, faults through botocore's Stubber and
event hooks, conflicts and dry runs.

moto 5 lacks two things this code relies on, so `aws` below adds them to moto's Glue responses for the test
only (a shim, not moto's behaviour):
- user-defined functions (Create/Get/Update/Delete UserDefinedFunction(s)), held on moto's database object so
  that DeleteDatabase drops them as Glue does ("you no longer have access to ... the user-defined functions in
  the deleted database", https://docs.aws.amazon.com/glue/latest/webapi/API_DeleteDatabase.html);
- paging: moto answers GetDatabases/GetTables/GetPartitions/GetTableVersions in one page whatever MaxResults;
  the shim pages them as AWS documents (at most MaxResults items, a NextToken while more remain) and refuses a
  MaxResults over the model's maximum, as AWS's validation does ("Valid Range: Minimum value of 1. Maximum value
  of 100", https://docs.aws.amazon.com/glue/latest/webapi/API_GetDatabases.html). It writes those pages with
  json.dumps (Glue's JSON, timestamps in epoch seconds) rather than moto's model-driven serializer, which would
  take most of the time of the 50,000-partition test.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.endpoint
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.bucket import TokenBucket
from botocore.stub import Stubber
from botocore.validate import validate_parameters
from moto import mock_aws
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.glue.exceptions import AlreadyExistsException, EntityNotFoundException, InvalidInputException
from moto.glue.responses import GlueResponse

from pgf_backup.exports import catalog, store
from pgf_backup.exports.catalog import (
    CatalogConflict,
    CatalogExportError,
    export_catalog,
    import_catalog,
    max_batch,
    max_page_size,
    to_input,
)
from pgf_backup.exports.store import MANIFEST, RETRY_CONFIG, InvalidExport

REGION = "ca-central-1"
ACCOUNT = "123456789012"  # moto's default account
BUCKET = "pgf-catalog-exports"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
PREFIX = f"catalog/{ACCOUNT}/{REGION}/20250102T030405Z/"


# -- the moto shim ---------------------------------------------------------------------------------------

_MODEL = botocore.session.get_session().get_service_model("glue")
_MAX_RESULTS = {
    op: int(_MODEL.operation_model(op).input_shape.members["MaxResults"].metadata["max"])
    for op in ("GetDatabases", "GetTables", "GetPartitions", "GetTableVersions", "GetUserDefinedFunctions")
}
_PAGED = {
    "get_databases": ("GetDatabases", "DatabaseList"),
    "get_tables": ("GetTables", "TableList"),
    "get_partitions": ("GetPartitions", "Partitions"),
    "get_table_versions": ("GetTableVersions", "TableVersions"),
}


def _page(self: GlueResponse, operation: str, key: str, items: list[Any]) -> str:
    limit = _MAX_RESULTS[operation]
    size = int(self.parameters.get("MaxResults", limit))
    if not 1 <= size <= limit:
        raise InvalidInputException(operation, f"MaxResults {size} is outside 1..{limit}")
    start = int(self.parameters.get("NextToken") or 0)
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["NextToken"] = str(start + size)
    # Glue's JSON wire format (timestamps as epoch seconds) straight from json.dumps: moto's model-driven
    # serializer takes half a millisecond a partition, and the 50,000-partition test lists them four times.
    return json.dumps(page, default=_epoch)


def _epoch(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _paged(method: Callable[[GlueResponse], ActionResult], operation: str, key: str) -> Callable[..., str]:
    def handler(self: GlueResponse) -> str:
        result = method(self).result
        assert isinstance(result, dict)
        return _page(self, operation, key, result[key])

    return handler


def _functions(self: GlueResponse, name: str) -> dict[str, dict[str, Any]]:
    database = self.glue_backend.get_database(name)  # EntityNotFoundException when absent
    return database.__dict__.setdefault("_shim_functions", {})  # type: ignore[no-any-return]


def _create_function(self: GlueResponse) -> EmptyResult:
    functions = _functions(self, self.parameters["DatabaseName"])
    function = self.parameters["FunctionInput"]
    if function["FunctionName"] in functions:
        raise AlreadyExistsException("Function")
    functions[function["FunctionName"]] = {
        **function,
        "DatabaseName": self.parameters["DatabaseName"],
        "CreateTime": utcnow(),
        "CatalogId": self.current_account,
    }
    return EmptyResult()


def _get_function(self: GlueResponse) -> ActionResult:
    functions = _functions(self, self.parameters["DatabaseName"])
    if self.parameters["FunctionName"] not in functions:
        raise EntityNotFoundException(f"Function {self.parameters['FunctionName']} not found.")
    return ActionResult({"UserDefinedFunction": functions[self.parameters["FunctionName"]]})


def _get_functions(self: GlueResponse) -> str:
    functions = _functions(self, self.parameters["DatabaseName"])
    matching = [f for name, f in functions.items() if fnmatch.fnmatchcase(name, self.parameters["Pattern"])]
    return _page(self, "GetUserDefinedFunctions", "UserDefinedFunctions", matching)


def _update_function(self: GlueResponse) -> EmptyResult:
    functions = _functions(self, self.parameters["DatabaseName"])
    old = functions.get(self.parameters["FunctionName"])
    if old is None:
        raise EntityNotFoundException(f"Function {self.parameters['FunctionName']} not found.")
    functions[self.parameters["FunctionName"]] = {
        **self.parameters["FunctionInput"],
        "DatabaseName": old["DatabaseName"],
        "CreateTime": old["CreateTime"],
        "CatalogId": old["CatalogId"],
    }
    return EmptyResult()


_SHIM = {
    "create_user_defined_function": _create_function,
    "get_user_defined_function": _get_function,
    "get_user_defined_functions": _get_functions,
    "update_user_defined_function": _update_function,
}


@pytest.fixture
def aws(fake_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto (Glue with the shim above, S3), with credentials and a region."""
    for method, (operation, key) in _PAGED.items():
        monkeypatch.setattr(GlueResponse, method, _paged(getattr(GlueResponse, method), operation, key))
    for method, function in _SHIM.items():
        monkeypatch.setattr(GlueResponse, method, function, raising=False)
    with mock_aws():
        yield


def recording(client: Any) -> Any:
    """`client`, counting its API calls per operation (`client.calls`) and keeping their parameters."""
    client.calls = Counter()
    client.params = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        client.calls[model.name] += 1
        client.params.append((model.name, dict(params)))

    client.meta.events.register("provide-client-params", record)
    return client


@pytest.fixture
def glue(aws: None) -> Any:
    return recording(boto3.client("glue", region_name=REGION, config=RETRY_CONFIG))


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION, config=RETRY_CONFIG)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


# -- a catalog -------------------------------------------------------------------------------------------

BASE_TIME = datetime(2024, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def database_input(name: str, n: int = 0) -> dict[str, Any]:
    return {
        "Name": name,
        "Description": f"PGF database {n}",
        "LocationUri": f"s3://pgf-lake/{name}/",
        "Parameters": {"application": "pgf", "n": str(n)},
        "CreateTableDefaultPermissions": [
            {"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}
        ],
    }


def columns(n: int) -> list[dict[str, Any]]:
    return [
        {"Name": f"c{i}", "Type": ("string", "bigint", "double", "timestamp")[i % 4], "Comment": f"column {i}"}
        for i in range(n)
    ] + [{"Name": "meta", "Type": "map<string,string>", "Parameters": {"pii": "false"}}]


def table_input(database: str, name: str, n: int = 0, partitioned: bool = True) -> dict[str, Any]:
    location = f"s3://pgf-lake/{database}/{name}/"
    table: dict[str, Any] = {
        "Name": name,
        "Description": f"table {n}",
        "Owner": "pgf-etl",
        "LastAccessTime": BASE_TIME + timedelta(days=n),
        "Retention": n % 7,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "n": str(n)},
        "StorageDescriptor": {
            "Columns": columns(3 + n % 3),
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "Compressed": n % 2 == 0,
            "NumberOfBuckets": -1 if n % 2 else 4,
            "SerdeInfo": {
                "Name": "parquet",
                "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                "Parameters": {"serialization.format": "1"},
            },
            "BucketColumns": [] if n % 2 else ["c0"],
            "SortColumns": [] if n % 2 else [{"Column": "c1", "SortOrder": 1}],
            "Parameters": {"compressionType": "snappy"},
            "SkewedInfo": {"SkewedColumnNames": [], "SkewedColumnValues": [], "SkewedColumnValueLocationMaps": {}},
            "StoredAsSubDirectories": False,
        },
    }
    if partitioned:
        table["PartitionKeys"] = [{"Name": "day", "Type": "string"}, {"Name": "hour", "Type": "int", "Comment": "h"}]
    return table


def view_input(name: str) -> dict[str, Any]:
    return {
        "Name": name,
        "TableType": "VIRTUAL_VIEW",
        "ViewOriginalText": "/* Presto View: e30= */",
        "ViewExpandedText": "/* Presto View */",
        "Parameters": {"presto_view": "true"},
        "StorageDescriptor": {"Columns": columns(2), "SerdeInfo": {}},
        "PartitionKeys": [],
    }


def partition_input(database: str, table: str, k: int) -> dict[str, Any]:
    day = f"2024-{1 + k // 24 // 28 % 12:02d}-{1 + k // 24 % 28:02d}"
    return {
        "Values": [day, str(k % 24)],
        "LastAccessTime": BASE_TIME + timedelta(hours=k),
        "Parameters": {"rows": str(k * 10)},
        "StorageDescriptor": {
            "Columns": columns(3),
            "Location": f"s3://pgf-lake/{database}/{table}/day={day}/hour={k % 24}/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    }


def function_input(name: str) -> dict[str, Any]:
    return {
        "FunctionName": name,
        "ClassName": f"fr.pgf.udf.{name.capitalize()}",
        "OwnerName": "pgf-etl",
        "OwnerType": "ROLE",
        "ResourceUris": [{"ResourceType": "JAR", "Uri": f"s3://pgf-artifacts/udf/{name}.jar"}],
    }


def create_partitions(glue: Any, database: str, table: str, count: int) -> None:
    """`count` partitions through BatchCreatePartition, 100 a call."""
    for start in range(0, count, 100):
        response = glue.batch_create_partition(
            DatabaseName=database,
            TableName=table,
            PartitionInputList=[partition_input(database, table, k) for k in range(start, min(start + 100, count))],
        )
        assert not response.get("Errors"), response["Errors"]


def build_catalog(glue: Any) -> dict[str, int]:
    """A small catalog with every kind of thing: 3 databases (one a resource link), partitioned and unpartitioned
    tables, a view, a table resource link, partitions, user-defined functions, a table with several versions."""
    glue.create_database(DatabaseInput=database_input("sales", 1))
    glue.create_database(DatabaseInput={"Name": "empty"})
    glue.create_database(
        DatabaseInput={"Name": "shared_link", "TargetDatabase": {"CatalogId": "210987654321", "DatabaseName": "ref"}}
    )
    for j in range(4):
        glue.create_table(DatabaseName="sales", TableInput=table_input("sales", f"orders_{j}", j))
    glue.create_table(DatabaseName="sales", TableInput=table_input("sales", "customers", 9, partitioned=False))
    glue.create_table(DatabaseName="sales", TableInput=view_input("orders_view"))
    glue.create_table(
        DatabaseName="sales",
        TableInput={
            "Name": "orders_link",
            "TargetTable": {"CatalogId": "210987654321", "DatabaseName": "ref", "Name": "o"},
        },
    )
    create_partitions(glue, "sales", "orders_0", 130)
    create_partitions(glue, "sales", "orders_1", 7)
    # Two more versions of orders_2 (UpdateTable keeps the previous ones as versions).
    for version in (1, 2):
        changed = table_input("sales", "orders_2", 2)
        changed["Description"] = f"table 2, version {version + 1}"
        glue.update_table(DatabaseName="sales", TableInput=changed)
    glue.create_user_defined_function(DatabaseName="sales", FunctionInput=function_input("mask"))
    glue.create_user_defined_function(DatabaseName="sales", FunctionInput=function_input("unmask"))
    glue.calls.clear()
    glue.params.clear()
    return {"databases": 3, "tables": 7, "partitions": 137, "functions": 2, "table_versions": 8}


# Members Glue sets, never the caller: dropped from the comparison of before and after, and absent from the
# *Input shapes, so an import cannot set them:
#   CreateTime (databases, tables, functions), CreationTime (partitions), UpdateTime (tables): when Glue wrote it;
#   VersionId (tables): Glue numbers a table's versions, a recreated table starts again;
#   CatalogId: the account of the catalog, another one when restoring across accounts;
#   CreatedBy, IsRegisteredWithLakeFormation, IsMultiDialectView, IsMaterializedView, Status, IcebergTableMetadata
#   (tables): computed by Glue or Lake Formation (moto returns none of them).
SERVER_SET = {
    "Database": {"CreateTime", "CatalogId"},
    "Table": {
        "CreateTime",
        "UpdateTime",
        "VersionId",
        "CatalogId",
        "CreatedBy",
        "IsRegisteredWithLakeFormation",
        "IsMultiDialectView",
        "IsMaterializedView",
        "Status",
        "IcebergTableMetadata",
    },
    "Partition": {"CreationTime", "CatalogId"},
    "UserDefinedFunction": {"CreateTime", "CatalogId"},
}
# Members that name where a record lives (arguments of the create call, not of the *Input).
PLACE = {"Database": set(), "Table": {"DatabaseName"}, "Partition": {"DatabaseName", "TableName"}}
PLACE["UserDefinedFunction"] = {"DatabaseName"}


def without(record: dict[str, Any], shape: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in SERVER_SET[shape]}


def snapshot(glue: Any) -> dict[str, Any]:
    """Everything GetDatabases/GetTables/GetPartitions/GetUserDefinedFunctions return, but SERVER_SET."""

    def items(operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        for page in glue.get_paginator(operation).paginate(**params):
            yield from page[key]

    found: dict[str, Any] = {}
    for database in items("get_databases", "DatabaseList"):
        name = database["Name"]
        tables = {t["Name"]: without(t, "Table") for t in items("get_tables", "TableList", DatabaseName=name)}
        found[name] = {
            "database": without(database, "Database"),
            "tables": tables,
            "partitions": {
                t: sorted(
                    (
                        without(p, "Partition")
                        for p in items("get_partitions", "Partitions", DatabaseName=name, TableName=t)
                    ),
                    key=lambda p: p["Values"],
                )
                for t in tables
            },
            "functions": {
                f["FunctionName"]: without(f, "UserDefinedFunction")
                for f in items("get_user_defined_functions", "UserDefinedFunctions", DatabaseName=name, Pattern="*")
            },
        }
    return found


def wipe(glue: Any) -> None:
    """Delete every database (their tables, partitions and functions go with them)."""
    # Names first: deleting while paging would shift the pages.
    names = [d["Name"] for page in glue.get_paginator("get_databases").paginate() for d in page["DatabaseList"]]
    for name in names:
        glue.delete_database(Name=name)
    assert snapshot(glue) == {}
    glue.calls.clear()
    glue.params.clear()


def writes(glue: Any) -> Counter[str]:
    """Calls that change the catalog."""
    return Counter({op: n for op, n in glue.calls.items() if not op.startswith("Get")})


# -- botocore's model ------------------------------------------------------------------------------------


def test_page_sizes_and_the_partition_batch_are_botocore_maxima(aws: None) -> None:
    glue = boto3.client("glue", region_name=REGION)
    assert {op: max_page_size(glue, op) for op in _MAX_RESULTS} == {
        "GetDatabases": 100,
        "GetTables": 100,
        "GetPartitions": 1000,
        "GetTableVersions": 100,
        "GetUserDefinedFunctions": 100,
    }
    assert max_batch(glue, "BatchCreatePartition", "PartitionInputList") == 100


def test_records_become_input_shapes_with_only_their_members(aws: None) -> None:
    glue = boto3.client("glue", region_name=REGION)
    model = glue.meta.service_model
    table = {
        **table_input("sales", "orders", 1),
        "DatabaseName": "sales",
        "CreateTime": BASE_TIME,
        "VersionId": "3",
        "CatalogId": ACCOUNT,
        "IsRegisteredWithLakeFormation": False,
        "ViewDefinition": {
            "IsProtected": True,
            "Definer": "arn:aws:iam::123456789012:role/definer",
            "Representations": [{"Dialect": "ATHENA", "ViewOriginalText": "SELECT 1", "IsStale": False}],
        },
    }
    table_in = to_input(model.shape_for("TableInput"), json.loads(store.dumps(table)))
    assert set(table_in) == set(table_input("sales", "orders", 1)) | {"ViewDefinition"}
    # Nested shapes differ too: a view's Representations drop IsStale (ViewRepresentation, not ...Input).
    assert table_in["ViewDefinition"]["Representations"] == [{"Dialect": "ATHENA", "ViewOriginalText": "SELECT 1"}]
    validate_parameters(table_in, model.shape_for("TableInput"))
    partition = {**partition_input("sales", "orders", 3), "DatabaseName": "sales", "TableName": "orders"}
    partition_in = to_input(model.shape_for("PartitionInput"), json.loads(store.dumps(partition)))
    assert set(partition_in) == set(partition_input("sales", "orders", 3))
    validate_parameters(partition_in, model.shape_for("PartitionInput"))


@pytest.mark.parametrize(
    ("output", "input_"),
    [
        ("Database", "DatabaseInput"),
        ("Table", "TableInput"),
        ("Partition", "PartitionInput"),
        ("UserDefinedFunction", "UserDefinedFunctionInput"),
    ],
)
def test_every_member_an_import_drops_is_set_by_glue(aws: None, output: str, input_: str) -> None:
    """What Glue returns but the *Input shape lacks is either server-set (SERVER_SET, with its reason) or where
    the record lives: nothing the catalog's owner chose is lost on the way back."""
    model = boto3.client("glue", region_name=REGION).meta.service_model
    dropped = set(model.shape_for(output).members) - set(model.shape_for(input_).members)
    unexplained = dropped - SERVER_SET[output] - PLACE[output]
    # RLSProperties: row-level security of a Lake Formation table, set through Lake Formation, not Glue.
    assert unexplained <= {"RLSProperties"}, unexplained


# -- round trips -----------------------------------------------------------------------------------------


def test_round_trip_is_exact(glue: Any, s3: Any) -> None:
    expected = build_catalog(glue)
    before = snapshot(glue)
    glue.calls.clear()

    manifest = export_catalog(
        glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=REGION, include_table_versions=True, now=NOW
    )
    assert manifest["prefix"] == PREFIX
    assert manifest["counts"] == expected
    assert manifest["source"] == "glue-data-catalog"
    assert (manifest["account_id"], manifest["region"], manifest["databases"]) == (ACCOUNT, REGION, 3)
    assert manifest["catalog"]["sales"] == {"tables": 7, "partitions": 137, "functions": 2, "table_versions": 8}
    # A resource link is exported as itself; its target's tables belong to the other account's catalog.
    assert manifest["catalog"]["shared_link"] == {"tables": 0, "partitions": 0, "functions": 0, "table_versions": 0}
    assert writes(glue) == Counter()
    # Nor are a table link's partitions and versions read: the link is recreated, its target is not copied.
    assert (glue.calls["GetPartitions"], glue.calls["GetTableVersions"]) == (6, 6)
    assert store.verify(s3, BUCKET, PREFIX) == manifest

    wipe(glue)
    report = import_catalog(glue, s3, BUCKET, PREFIX)

    assert snapshot(glue) == before
    assert report.counts == {
        "databases": {"created": 3, "skipped": 0, "replaced": 0, "failed": 0},
        "tables": {"created": 7, "skipped": 0, "replaced": 0, "failed": 0},
        "partitions": {"created": 137, "skipped": 0, "replaced": 0, "failed": 0},
        "functions": {"created": 2, "skipped": 0, "replaced": 0, "failed": 0},
    }
    assert report.errors == []
    assert report.not_imported == {"table_versions": 8}
    # 130 partitions of orders_0 take two calls, the 7 of orders_1 one.
    assert writes(glue) == Counter(
        {"CreateDatabase": 3, "CreateTable": 7, "BatchCreatePartition": 3, "CreateUserDefinedFunction": 2}
    )
    assert report.calls == {"GetDatabases": 1, **writes(glue)}
    assert json.loads(json.dumps(report.to_json()))["failed"] == 0


def test_export_reads_each_listing_in_the_fewest_pages(glue: Any, s3: Any) -> None:
    """150 databases (2 pages of 100) and a table of 2,500 partitions (3 pages of 1,000), with the shim paging."""
    for i in range(150):
        glue.create_database(DatabaseInput={"Name": f"db{i:03d}"})
    glue.create_table(DatabaseName="db000", TableInput=table_input("db000", "events"))
    create_partitions(glue, "db000", "events", 2500)
    for j in range(101):
        glue.create_table(DatabaseName="db001", TableInput=table_input("db001", f"t{j:03d}", partitioned=False))
    glue.calls.clear()
    glue.params.clear()

    manifest = export_catalog(glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=REGION, now=NOW)

    assert manifest["counts"] == {"databases": 150, "tables": 102, "partitions": 2500, "functions": 0}
    tables = 102
    assert glue.calls == Counter(
        {
            "GetDatabases": 2,
            "GetTables": 150 + 1,  # one page per database, two for db001's 101 tables
            "GetPartitions": tables + 2,  # one page per table, three for events
            "GetUserDefinedFunctions": 150,
        }
    )
    assert manifest["api_calls"] == dict(glue.calls)
    for operation, params in glue.params:
        assert params["MaxResults"] == _MAX_RESULTS[operation], (operation, params)
    wipe(glue)
    import_catalog(glue, s3, BUCKET, PREFIX)
    assert glue.calls["BatchCreatePartition"] == 25


def test_round_trip_is_exact_at_50_databases_2000_tables_50000_partitions(glue: Any, s3: Any) -> None:
    """The issue's acceptance: a generated catalog of 50 databases, 2,000 tables and 50,000 partitions."""
    for i in range(50):
        db = f"db{i:02d}"
        glue.create_database(DatabaseInput=database_input(db, i))
        for j in range(40):
            glue.create_table(DatabaseName=db, TableInput=table_input(db, f"t{j:02d}", j))
            create_partitions(glue, db, f"t{j:02d}", 25)
        glue.create_user_defined_function(DatabaseName=db, FunctionInput=function_input(f"f{i}"))
    before = snapshot(glue)
    assert sum(len(d["tables"]) for d in before.values()) == 2000
    assert sum(len(p) for d in before.values() for p in d["partitions"].values()) == 50_000

    manifest = export_catalog(glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=REGION, now=NOW)
    assert manifest["counts"] == {"databases": 50, "tables": 2000, "partitions": 50_000, "functions": 50}
    wipe(glue)
    report = import_catalog(glue, s3, BUCKET, PREFIX)

    assert report.failed == 0
    assert glue.calls["BatchCreatePartition"] == 2000  # 25 partitions a table: one call each
    assert snapshot(glue) == before


def test_export_of_chosen_databases_only(glue: Any, s3: Any) -> None:
    build_catalog(glue)
    manifest = export_catalog(glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=REGION, databases=["empty"], now=NOW)
    assert manifest["counts"] == {"databases": 1, "tables": 0, "partitions": 0, "functions": 0}
    assert glue.calls["GetTables"] == 1


def test_export_of_a_database_that_does_not_exist_fails_and_leaves_no_manifest(glue: Any, s3: Any) -> None:
    build_catalog(glue)
    with pytest.raises(CatalogExportError, match="no database named nope"):
        export_catalog(glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=REGION, databases=["sales", "nope"])
    assert no_manifest(s3)


# -- faults during an export -----------------------------------------------------------------------------


def stubbed_glue() -> tuple[Any, Stubber]:
    glue = boto3.client("glue", region_name=REGION, config=RETRY_CONFIG)
    return glue, Stubber(glue)


def partitions_page(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {**partition_input("sales", "orders", k), "DatabaseName": "sales", "TableName": "orders"}
        for k in range(start, start + count)
    ]


def test_a_failure_midway_leaves_no_manifest(s3: Any) -> None:
    """InternalServiceException on the third GetPartitions page: the error names the call and the table, and no
    manifest is written (the objects already stored stay: the function may not delete)."""
    glue, stub = stubbed_glue()
    stub.add_response("get_databases", {"DatabaseList": [{"Name": "sales"}]}, {"MaxResults": 100})
    stub.add_response(
        "get_tables",
        {"TableList": [{**table_input("sales", "orders"), "DatabaseName": "sales"}]},
        {"DatabaseName": "sales", "MaxResults": 100},
    )
    base = {"DatabaseName": "sales", "TableName": "orders", "MaxResults": 1000}
    stub.add_response("get_partitions", {"Partitions": partitions_page(0, 3), "NextToken": "p2"}, base)
    stub.add_response(
        "get_partitions", {"Partitions": partitions_page(3, 3), "NextToken": "p3"}, {**base, "NextToken": "p2"}
    )
    stub.add_client_error(
        "get_partitions",
        service_error_code="InternalServiceException",
        service_message="An internal service error occurred",
        http_status_code=500,
        expected_params={**base, "NextToken": "p3"},
    )
    with stub, pytest.raises(CatalogExportError) as failure:
        export_catalog(
            glue,
            s3,
            bucket=BUCKET,
            account_id=ACCOUNT,
            region=REGION,
            now=NOW,
            # One record an object: the databases and tables objects are stored before the failure.
            writer_options={"max_records_per_object": 1},
        )
    stub.assert_no_pending_responses()
    assert failure.value.operation == "GetPartitions"
    assert "GetPartitions failed for table sales.orders" in str(failure.value)
    assert "InternalServiceException" in str(failure.value)
    assert no_manifest(s3)
    with pytest.raises(InvalidExport, match="manifest missing"):
        store.read_manifest(s3, BUCKET, PREFIX)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def throttle(glue: Any, operation: str, attempts: int | None) -> Counter[str]:
    """Answer the first `attempts` attempts of `operation` (all of them when None) with Glue's HTTP 400
    ThrottlingException, before moto sees them; returns the attempts and throttles counted."""
    seen: Counter[str] = Counter()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        seen["attempts"] += 1
        if attempts is not None and seen["attempts"] > attempts:
            return None
        seen["throttled"] += 1
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        headers = {"x-amzn-ErrorType": "ThrottlingException", "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, headers, _Body(body))

    # First: moto answers at before-send too, and the first answer wins.
    glue.meta.events.register_first(f"before-send.glue.{operation}", handler)
    return seen


def record_backoff(monkeypatch: pytest.MonkeyPatch, sleep: bool) -> list[float]:
    """The delays botocore's retry handler sleeps between attempts (slept too when `sleep`)."""
    delays: list[float] = []

    def recorder(seconds: float) -> None:
        delays.append(seconds)
        if sleep:
            time.sleep(seconds)

    clock = types.SimpleNamespace(**{**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")}})
    clock.sleep = recorder
    monkeypatch.setattr(botocore.endpoint, "time", clock)
    return delays


def test_throttling_with_retries_left_slows_the_export_which_completes_exact(
    glue: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_catalog(glue)
    before = snapshot(glue)
    seen = throttle(glue, "GetPartitions", attempts=3)
    delays = record_backoff(monkeypatch, sleep=True)
    # Adaptive mode's client-side limiter: off until a throttle, then every call first takes a token.
    tokens: list[int] = []
    acquire = TokenBucket.acquire

    def counting(bucket: TokenBucket, *args: Any, **kwargs: Any) -> Any:
        tokens.append(1)
        return acquire(bucket, *args, **kwargs)

    monkeypatch.setattr(TokenBucket, "acquire", counting)

    manifest = export_catalog(glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=REGION, now=NOW)

    assert seen["throttled"] == 3
    # Three retries, each after a backoff; from the first throttle on, the calls went through the rate limiter.
    assert len(delays) == 3
    assert tokens
    assert manifest["api_calls"]["GetPartitions"] == 6  # pages, not attempts: one per table
    wipe(glue)
    import_catalog(glue, s3, BUCKET, PREFIX)
    assert snapshot(glue) == before


def test_throttling_that_never_stops_fails_the_export_without_a_manifest(
    glue: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_catalog(glue)
    seen = throttle(glue, "GetPartitions", attempts=None)
    # Backoffs recorded, not slept, and the rate limiter's tokens granted at once: this test is about the failure
    # (the slowing down is the test above's); sleeping through ten throttled attempts would take a minute.
    delays = record_backoff(monkeypatch, sleep=False)
    monkeypatch.setattr(TokenBucket, "acquire", lambda bucket, *args, **kwargs: True)

    with pytest.raises(CatalogExportError, match=r"GetPartitions failed for table sales\.\w+: .*ThrottlingException"):
        export_catalog(glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=REGION, now=NOW)

    # Config's max_attempts counts retries ("setting this value to 2 will result in the request being retried at
    # most two times after the initial request", botocore's Config reference): 10 retries, 11 attempts.
    assert glue.meta.config.retries["total_max_attempts"] == 11
    assert seen["attempts"] == 11
    assert len(delays) == 10
    assert no_manifest(s3)


# -- import refusals -------------------------------------------------------------------------------------


@pytest.fixture
def exported(glue: Any, s3: Any) -> dict[str, Any]:
    """The small catalog, exported, then wiped from Glue; returns its snapshot from before."""
    build_catalog(glue)
    before = snapshot(glue)
    export_catalog(glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=REGION, include_table_versions=True, now=NOW)
    wipe(glue)
    return before


def test_import_refuses_a_tampered_export_before_any_call_to_glue(glue: Any, s3: Any, exported: Any) -> None:
    key = PREFIX + "partitions-00000.ndjson.gz"
    body = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    with pytest.raises(InvalidExport, match=rf"{key}: sha256 mismatch"):
        import_catalog(glue, s3, BUCKET, PREFIX, on_conflict="replace")
    assert glue.calls == Counter()
    assert snapshot(glue) == {}


def test_import_refuses_a_truncated_export_before_any_call_to_glue(glue: Any, s3: Any, exported: Any) -> None:
    key = PREFIX + "tables-00000.ndjson.gz"
    s3.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(InvalidExport, match=rf"{key}: object missing"):
        import_catalog(glue, s3, BUCKET, PREFIX)
    assert glue.calls == Counter()
    assert snapshot(glue) == {}


def test_import_refuses_an_export_without_its_manifest(glue: Any, s3: Any, exported: Any) -> None:
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + MANIFEST)
    with pytest.raises(InvalidExport, match="manifest missing"):
        import_catalog(glue, s3, BUCKET, PREFIX)
    assert glue.calls == Counter()


def test_an_unknown_conflict_mode_is_refused_before_reading(glue: Any, s3: Any) -> None:
    with pytest.raises(ValueError, match="on_conflict='merge': one of fail, skip, replace"):
        import_catalog(glue, s3, BUCKET, PREFIX, on_conflict="merge")


# -- conflicts, dry runs, one database -------------------------------------------------------------------


def diverge(glue: Any) -> None:
    """The target already holds `sales` with another description, orders_0 with another schema and one
    partition of its own, and `mask` with another class."""
    glue.create_database(DatabaseInput={**database_input("sales", 1), "Description": "local"})
    local = table_input("sales", "orders_0", 0)
    local["StorageDescriptor"]["Columns"] = [{"Name": "local", "Type": "string"}]
    glue.create_table(DatabaseName="sales", TableInput=local)
    glue.batch_create_partition(
        DatabaseName="sales", TableName="orders_0", PartitionInputList=[{"Values": ["local", "0"]}]
    )
    glue.create_user_defined_function(
        DatabaseName="sales", FunctionInput={**function_input("mask"), "ClassName": "local.Mask"}
    )
    glue.calls.clear()


def test_fail_refuses_naming_the_first_conflict_and_writes_nothing(glue: Any, s3: Any, exported: Any) -> None:
    diverge(glue)
    target = snapshot(glue)
    glue.calls.clear()
    conflict = r"database 'sales' already exists in the target catalog; .*wrote nothing"
    with pytest.raises(CatalogConflict, match=conflict):
        import_catalog(glue, s3, BUCKET, PREFIX)
    assert writes(glue) == Counter()
    assert snapshot(glue) == target


def test_skip_leaves_what_exists_and_creates_what_is_missing(glue: Any, s3: Any, exported: Any) -> None:
    diverge(glue)
    target = snapshot(glue)
    report = import_catalog(glue, s3, BUCKET, PREFIX, on_conflict="skip")
    after = snapshot(glue)

    # What existed is untouched, partitions of the existing table included.
    assert after["sales"]["database"] == target["sales"]["database"]
    assert after["sales"]["tables"]["orders_0"] == target["sales"]["tables"]["orders_0"]
    assert after["sales"]["partitions"]["orders_0"] == target["sales"]["partitions"]["orders_0"]
    assert after["sales"]["functions"]["mask"] == target["sales"]["functions"]["mask"]
    # The rest is the export's.
    for name in ("orders_1", "orders_2", "orders_3", "customers", "orders_view", "orders_link"):
        assert after["sales"]["tables"][name] == exported["sales"]["tables"][name]
        assert after["sales"]["partitions"][name] == exported["sales"]["partitions"][name]
    assert after["sales"]["functions"]["unmask"] == exported["sales"]["functions"]["unmask"]
    assert {k: after[k] for k in ("empty", "shared_link")} == {k: exported[k] for k in ("empty", "shared_link")}
    assert report.counts == {
        "databases": {"created": 2, "skipped": 1, "replaced": 0, "failed": 0},
        "tables": {"created": 6, "skipped": 1, "replaced": 0, "failed": 0},
        "partitions": {"created": 7, "skipped": 130, "replaced": 0, "failed": 0},
        "functions": {"created": 1, "skipped": 1, "replaced": 0, "failed": 0},
    }
    assert "UpdateDatabase" not in glue.calls
    assert "DeleteTable" not in glue.calls


def test_replace_makes_the_catalog_the_exports(glue: Any, s3: Any, exported: Any) -> None:
    diverge(glue)
    report = import_catalog(glue, s3, BUCKET, PREFIX, on_conflict="replace")

    # The local partition of orders_0 went with the table; the export's 130 replaced it.
    assert snapshot(glue) == exported
    assert report.counts == {
        "databases": {"created": 2, "skipped": 0, "replaced": 1, "failed": 0},
        "tables": {"created": 6, "skipped": 0, "replaced": 1, "failed": 0},
        "partitions": {"created": 137, "skipped": 0, "replaced": 0, "failed": 0},
        "functions": {"created": 1, "skipped": 0, "replaced": 1, "failed": 0},
    }
    assert writes(glue) == Counter(
        {
            "CreateDatabase": 2,
            "UpdateDatabase": 1,
            "DeleteTable": 1,
            "CreateTable": 7,
            "BatchCreatePartition": 3,
            "CreateUserDefinedFunction": 1,
            "UpdateUserDefinedFunction": 1,
        }
    )


@pytest.mark.parametrize("on_conflict", ["skip", "replace"])
def test_a_dry_run_reports_and_writes_nothing(glue: Any, s3: Any, exported: Any, on_conflict: str) -> None:
    diverge(glue)
    target = snapshot(glue)
    glue.calls.clear()
    dry = import_catalog(glue, s3, BUCKET, PREFIX, on_conflict=on_conflict, dry_run=True)
    assert writes(glue) == Counter()
    assert snapshot(glue) == target
    assert dry.dry_run is True
    # What it reports is what the real run then does.
    glue.calls.clear()
    real = import_catalog(glue, s3, BUCKET, PREFIX, on_conflict=on_conflict)
    assert dry.counts == real.counts


def test_a_dry_run_in_fail_mode_refuses_as_the_real_run_would(glue: Any, s3: Any, exported: Any) -> None:
    diverge(glue)
    with pytest.raises(CatalogConflict, match="'sales'"):
        import_catalog(glue, s3, BUCKET, PREFIX, dry_run=True)


def test_a_dry_run_on_an_empty_catalog_counts_the_export(glue: Any, s3: Any, exported: Any) -> None:
    report = import_catalog(glue, s3, BUCKET, PREFIX, dry_run=True)
    assert {kind: c["created"] for kind, c in report.counts.items()} == {
        "databases": 3,
        "tables": 7,
        "partitions": 137,
        "functions": 2,
    }
    assert report.calls == {"GetDatabases": 1}
    assert snapshot(glue) == {}


def test_one_database_only(glue: Any, s3: Any, exported: Any) -> None:
    seen: list[tuple[int, int, str]] = []
    report = import_catalog(glue, s3, BUCKET, PREFIX, database="sales", progress=lambda *a: seen.append(a))
    assert snapshot(glue) == {"sales": exported["sales"]}
    assert report.counts["databases"]["created"] == 1
    # Progress: totals are the database's (from the manifest), and each kind ends at its total.
    last = {what: (done, total) for done, total, what in seen}
    assert last == {"databases": (1, 1), "tables": (7, 7), "partitions": (137, 137), "functions": (2, 2)}
    tables = [done for done, _, what in seen if what == "tables"]
    assert tables == list(range(1, 8))
    partitions = [done for done, _, what in seen if what == "partitions"]
    assert partitions == sorted(partitions)


def test_a_database_absent_from_the_export_is_refused_naming_what_it_holds(glue: Any, s3: Any, exported: Any) -> None:
    with pytest.raises(
        catalog.DatabaseNotInExport,
        match=r"database 'billing' is not in the export .* \(it holds: empty, sales, shared_link\)",
    ) as refusal:
        import_catalog(glue, s3, BUCKET, PREFIX, database="billing")
    # Both an invalid export (what the CLI reports) and a ValueError (a bad argument).
    assert isinstance(refusal.value, InvalidExport)
    assert isinstance(refusal.value, ValueError)
    assert glue.calls == Counter()


def hand_export(s3: Any, partitions: list[dict[str, Any]]) -> str:
    """An export written with the store directly: one database, one table, the partitions given."""
    prefix = "catalog/hand/"
    writer = store.ExportWriter(s3, BUCKET, prefix)
    with writer.ndjson("databases") as out:
        out.write({"Name": "sales"})
    with writer.ndjson("tables") as out:
        out.write({**table_input("sales", "orders"), "DatabaseName": "sales"})
    with writer.ndjson("partitions") as out:
        for partition in partitions:
            out.write({**partition, "DatabaseName": "sales", "TableName": "orders"})
    writer.finish()
    return prefix


@pytest.mark.parametrize(("on_conflict", "outcome"), [("fail", "failed"), ("skip", "skipped")])
def test_partition_errors_of_a_batch_are_reported(glue: Any, s3: Any, on_conflict: str, outcome: str) -> None:
    partitions = [partition_input("sales", "orders", k) for k in range(5)]
    prefix = hand_export(s3, [*partitions, copy.deepcopy(partitions[2])])
    report = import_catalog(glue, s3, BUCKET, prefix, on_conflict=on_conflict)
    assert report.counts["partitions"]["created"] == 5
    assert report.counts["partitions"][outcome] == 1
    if on_conflict == "fail":
        (error,) = report.errors
        assert error["code"] == "AlreadyExistsException"
        assert error["operation"] == "BatchCreatePartition"
        assert error["name"] == f"sales.orders[{','.join(partitions[2]['Values'])}]"
    else:
        assert report.errors == []


def test_a_call_error_that_is_not_about_one_item_stops_the_import(glue: Any, s3: Any, exported: Any) -> None:
    stub_errors = {"n": 0}

    def deny(model: Any, **_: Any) -> None:
        if model.name == "CreateTable":
            stub_errors["n"] += 1
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "CreateTable")

    glue.meta.events.register("before-call.glue", deny)
    with pytest.raises(catalog.CatalogImportError, match=r"CreateTable failed for tables sales\.orders_0") as stop:
        import_catalog(glue, s3, BUCKET, PREFIX)
    assert stub_errors["n"] == 1
    assert stop.value.report.counts["databases"]["created"] == 3
    assert stop.value.report.counts["tables"]["created"] == 0


def no_manifest(s3: Any) -> bool:
    """No manifest anywhere in the bucket: whatever a failed run stored, no reader takes it for an export."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return not any(key.endswith("/" + MANIFEST) for key in keys)
