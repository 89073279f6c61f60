"""Glue Data Catalog export and import at scale: API calls against the fewest possible, wall time, peak memory.

A moto server runs in its own process, populated with a generated catalog (by default 50 databases, 10,000
tables, 200,000 partitions: 1 % of the tables hold 1,200 partitions each, the rest share the remainder, and a
user-defined function per database) through CreateDatabase, CreateTable and BatchCreatePartition (100 a call).
The export then runs in a child process, whose peak RSS (VmHWM) is the exporter's alone (moto's in-memory
catalog lives in the server process), and so does the import, into the empty catalog of another region.

Printed for each size (a tenth of the size asked, then the size asked):
- export: wall time, peak RSS (and the RSS before exporting: interpreter, boto3, clients), Glue calls per
  operation beside the fewest pages the catalog needs at the largest page sizes, and their ratio;
- import: wall time, peak RSS, write calls beside the fewest the batch limits allow (CreateDatabase one per
  database, CreateTable one per table, BatchCreatePartition ceil(n/100) per table, CreateUserDefinedFunction one
  per function), and their ratio.
Targets: calls <= 1.05 x the minimum (export and import); export peak RSS <= 200 MB and flat from a tenth of
the size to the whole.

moto 5's Glue answers GetDatabases/GetTables/GetPartitions/GetTableVersions in a single page and has no
user-defined functions: the server process of this bench patches moto's Glue responses (SHIM below, in that
process only) to page as AWS documents (at most MaxResults items, NextToken while more remain, MaxResults over
the model's maximum refused) and to hold user-defined functions. It also writes those pages with json.dumps
rather than moto's model-driven serializer (same wire format), which is slower than everything measured here.

    .venv/bin/python bench/catalog_export.py [--databases 50 --tables 10000 --partitions 200000] [--scales 0.1 1]
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOURCE_REGION = "ca-central-1"
TARGET_REGION = "ca-west-1"
ACCOUNT = "123456789012"  # moto's default account
BUCKET = "pgf-bench-catalog"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench"}
LIST_OPERATIONS = ("GetDatabases", "GetTables", "GetPartitions", "GetUserDefinedFunctions")
WRITE_OPERATIONS = ("CreateDatabase", "CreateTable", "BatchCreatePartition", "CreateUserDefinedFunction")


# -- the server process: moto with the SHIM --------------------------------------------------------------


def serve() -> None:
    """Run moto's server with the SHIM on a free port; print the port; stop when stdin closes."""
    import botocore.session
    from moto.core.responses import EmptyResult
    from moto.core.utils import utcnow
    from moto.glue.exceptions import AlreadyExistsException, InvalidInputException
    from moto.glue.responses import GlueResponse
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    model = botocore.session.get_session().get_service_model("glue")
    limits = {
        op: int(model.operation_model(op).input_shape.members["MaxResults"].metadata["max"])
        for op in ("GetDatabases", "GetTables", "GetPartitions", "GetTableVersions", "GetUserDefinedFunctions")
    }

    def epoch(value: object) -> float:
        if isinstance(value, datetime):
            return value.timestamp()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    # SHIM: pages as AWS documents them.
    def page(self: Any, operation: str, key: str, items: list[Any]) -> str:
        size = int(self.parameters.get("MaxResults", limits[operation]))
        if not 1 <= size <= limits[operation]:
            raise InvalidInputException(operation, f"MaxResults {size} is outside 1..{limits[operation]}")
        start = int(self.parameters.get("NextToken") or 0)
        body: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            body["NextToken"] = str(start + size)
        return json.dumps(body, default=epoch)

    def paged(method: Any, operation: str, key: str) -> Any:
        def handler(self: Any) -> str:
            return page(self, operation, key, method(self).result[key])

        return handler

    for method, operation, key in (
        ("get_databases", "GetDatabases", "DatabaseList"),
        ("get_tables", "GetTables", "TableList"),
        ("get_partitions", "GetPartitions", "Partitions"),
        ("get_table_versions", "GetTableVersions", "TableVersions"),
    ):
        setattr(GlueResponse, method, paged(getattr(GlueResponse, method), operation, key))

    # SHIM: user-defined functions, held on moto's database object (they go when the database goes).
    def functions(self: Any) -> dict[str, Any]:
        database = self.glue_backend.get_database(self.parameters["DatabaseName"])
        return database.__dict__.setdefault("_shim_functions", {})  # type: ignore[no-any-return]

    def create_function(self: Any) -> EmptyResult:
        held, function = functions(self), self.parameters["FunctionInput"]
        if function["FunctionName"] in held:
            raise AlreadyExistsException("Function")
        held[function["FunctionName"]] = {
            **function,
            "DatabaseName": self.parameters["DatabaseName"],
            "CreateTime": utcnow(),
            "CatalogId": self.current_account,
        }
        return EmptyResult()

    def get_functions(self: Any) -> str:
        pattern = self.parameters["Pattern"]
        matching = [f for name, f in functions(self).items() if fnmatch.fnmatchcase(name, pattern)]
        return page(self, "GetUserDefinedFunctions", "UserDefinedFunctions", matching)

    GlueResponse.create_user_defined_function = create_function  # type: ignore[attr-defined]
    GlueResponse.get_user_defined_functions = get_functions  # type: ignore[attr-defined]

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()


# -- the catalog -----------------------------------------------------------------------------------------


def layout(databases: int, tables: int, partitions: int) -> list[tuple[str, str, int]]:
    """(database, table, partitions) of every table: 1 % of the tables (at least one) hold 1,200 partitions
    each (two GetPartitions pages), the others share the rest evenly; tables go round-robin to databases."""
    big = max(1, tables // 100)
    big_each = min(1200, partitions // big)
    small = tables - big
    base, extra = divmod(partitions - big * big_each, small) if small else (0, 0)
    rows = []
    for i in range(tables):
        n = big_each if i < big else base + (1 if i - big < extra else 0)
        rows.append((f"db{i % databases:03d}", f"t{i:05d}", n))
    return rows


def columns(n: int) -> list[dict[str, Any]]:
    return [{"Name": f"c{i}", "Type": ("string", "bigint", "double", "timestamp")[i % 4]} for i in range(n)]


def table_input(database: str, name: str) -> dict[str, Any]:
    return {
        "Name": name,
        "Owner": "pgf-etl",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": "day", "Type": "string"}, {"Name": "hour", "Type": "int"}],
        "StorageDescriptor": {
            "Columns": columns(6),
            "Location": f"s3://pgf-lake/{database}/{name}/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    }


def partition_input(database: str, table: str, k: int) -> dict[str, Any]:
    day = f"{2020 + k // 24 // 336}-{1 + k // 24 // 28 % 12:02d}-{1 + k // 24 % 28:02d}"
    return {
        "Values": [day, str(k % 24)],
        "LastAccessTime": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=k),
        # What a crawler records, with figures that differ from partition to partition (as sizes do), so gzip
        # does not shrink the export more than it would a real one.
        "Parameters": {
            "classification": "parquet",
            "compressionType": "snappy",
            "typeOfData": "file",
            "UPDATED_BY_CRAWLER": "pgf-crawler",
            "CrawlerSchemaSerializerVersion": "1.0",
            "recordCount": str(noise(table, k, 10**7)),
            "averageRecordSize": str(noise(table, k, 900) + 100),
            "objectCount": str(noise(table, k, 40) + 1),
            "sizeKey": str(noise(table, k, 10**10)),
        },
        "StorageDescriptor": {
            "Columns": columns(6),
            "Location": f"s3://pgf-lake/{database}/{table}/day={day}/hour={k % 24}/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    }


def noise(table: str, k: int, below: int) -> int:
    """A number below `below` that looks random but is the same on every run."""
    return int.from_bytes(hashlib.blake2b(f"{table}/{k}".encode(), digest_size=8).digest(), "big") % below


def client(service: str, endpoint: str, region: str) -> Any:
    """A client of moto's server, made as the CLI and the Lambda make theirs (store.RETRY_CONFIG)."""
    import boto3
    from botocore.config import Config

    from pgf_backup.exports.store import RETRY_CONFIG

    config = RETRY_CONFIG.merge(Config(s3={"addressing_style": "path"})) if service == "s3" else RETRY_CONFIG
    return boto3.session.Session(region_name=region).client(service, endpoint_url=endpoint, config=config)


def clients(endpoint: str, region: str) -> tuple[Any, Any]:
    """Glue and S3 clients of moto's server in `region`."""
    return client("glue", endpoint, region), client("s3", endpoint, region)


def populate(endpoint: str, rows: list[tuple[str, str, int]]) -> Counter[str]:
    """Create the catalog in the source region; returns the calls made per operation."""
    glue, s3 = clients(endpoint, SOURCE_REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": SOURCE_REGION})
    calls: Counter[str] = Counter()
    for database in sorted({db for db, _, _ in rows}):
        glue.create_database(DatabaseInput={"Name": database, "Description": f"bench {database}"})
        glue.create_user_defined_function(
            DatabaseName=database,
            FunctionInput={"FunctionName": "mask", "ClassName": "fr.pgf.udf.Mask", "OwnerName": "pgf"},
        )
        calls.update(["CreateDatabase", "CreateUserDefinedFunction"])

    def create(row: tuple[str, str, int]) -> Counter[str]:
        database, table, count = row
        made = Counter(["CreateTable"])
        glue.create_table(DatabaseName=database, TableInput=table_input(database, table))
        for start in range(0, count, 100):
            batch = [partition_input(database, table, k) for k in range(start, min(start + 100, count))]
            response = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=batch)
            if response.get("Errors"):
                raise RuntimeError(f"populating {database}.{table}: {response['Errors'][:1]}")
            made["BatchCreatePartition"] += 1
        return made

    # Server and client are separate processes: a few requests in flight keep both busy.
    with ThreadPoolExecutor(4) as pool:
        for made in pool.map(create, rows):
            calls.update(made)
    return calls


def minimum_export(rows: list[tuple[str, str, int]]) -> dict[str, int]:
    """The fewest pages each listing needs at its largest page (100, 100, 1,000, 100): a listing is at least
    one page, even when empty."""
    per_database = Counter(db for db, _, _ in rows)
    return {
        "GetDatabases": max(1, math.ceil(len(per_database) / 100)),
        "GetTables": sum(max(1, math.ceil(n / 100)) for n in per_database.values()),
        "GetPartitions": sum(max(1, math.ceil(n / 1000)) for _, _, n in rows),
        "GetUserDefinedFunctions": len(per_database),  # one function each
    }


def minimum_import(rows: list[tuple[str, str, int]]) -> dict[str, int]:
    """The fewest writes the batch limits allow."""
    databases = len({db for db, _, _ in rows})
    return {
        "CreateDatabase": databases,
        "CreateTable": len(rows),
        "BatchCreatePartition": sum(math.ceil(n / 100) for _, _, n in rows),
        "CreateUserDefinedFunction": databases,
    }


# -- the measured children -------------------------------------------------------------------------------


def _counting(client: Any) -> tuple[Counter[str], Counter[str]]:
    """Calls (before-call: once per API call) and attempts (before-send: once per HTTP request) per operation."""
    calls: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))

    def attempt(event_name: str, **_: Any) -> None:
        attempts.update([event_name.rsplit(".", 1)[-1]])

    client.meta.events.register("before-send", attempt)
    return calls, attempts


def _peak_mib() -> float:
    """This process's peak RSS in MiB.

    Linux keeps ru_maxrss across fork and exec: a child started by a big parent starts at the parent's peak
    (this bench's parent populates the catalog). VmHWM belongs to the process's own address space, new at exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def child_export(endpoint: str) -> dict[str, Any]:
    """Export the source catalog; figures of this process only."""
    from pgf_backup.exports.catalog import export_catalog

    glue, s3 = clients(endpoint, SOURCE_REGION)
    glue_calls, glue_attempts = _counting(glue)
    s3_calls, _ = _counting(s3)
    glue.meta.service_model.operation_model("GetPartitions")  # the model, loaded before the baseline
    before = _peak_mib()
    start = time.perf_counter()
    manifest = export_catalog(glue, s3, bucket=BUCKET, account_id=ACCOUNT, region=SOURCE_REGION, now=NOW)
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "rss_before_mib": before,
        "rss_peak_mib": _peak_mib(),
        "calls": dict(glue_calls),
        "attempts": dict(glue_attempts),
        "s3_calls": dict(s3_calls),
        "prefix": manifest["prefix"],
        "counts": manifest["counts"],
        "manifest_calls": manifest["api_calls"],
        "stored_bytes": sum(o["bytes"] for o in manifest["objects"]),
        "objects": len(manifest["objects"]),
    }


def child_import(endpoint: str, prefix: str) -> dict[str, Any]:
    """Import the export into the empty catalog of the target region; figures of this process only."""
    from pgf_backup.exports.catalog import import_catalog

    glue, s3 = client("glue", endpoint, TARGET_REGION), client("s3", endpoint, SOURCE_REGION)
    glue_calls, glue_attempts = _counting(glue)
    glue.meta.service_model.operation_model("BatchCreatePartition")
    before = _peak_mib()
    start = time.perf_counter()
    report = import_catalog(glue, s3, BUCKET, prefix)
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "rss_before_mib": before,
        "rss_peak_mib": _peak_mib(),
        "calls": dict(glue_calls),
        "attempts": dict(glue_attempts),
        "report": report.to_json(),
    }


def measure(*args: str) -> dict[str, Any]:
    """One child measurement in a fresh process."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **CREDENTIALS},
    )
    if done.returncode:
        raise SystemExit(f"child {args[0]} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the figures -----------------------------------------------------------------------------------------


def spot_check(endpoint: str, rows: list[tuple[str, str, int]], sample: int = 25) -> int:
    """Tables whose imported partitions differ from the source's (a sample, spread over the catalog)."""
    source, target = client("glue", endpoint, SOURCE_REGION), client("glue", endpoint, TARGET_REGION)
    server_set = {"CreationTime", "CatalogId"}

    def partitions(glue: Any, database: str, table: str) -> list[dict[str, Any]]:
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
        found = [{k: v for k, v in p.items() if k not in server_set} for page in pages for p in page["Partitions"]]
        return sorted(found, key=lambda p: p["Values"])

    step = max(1, len(rows) // sample)
    return sum(partitions(source, db, t) != partitions(target, db, t) for db, t, _ in rows[::step])


def table(title: str, calls: dict[str, int], minimum: dict[str, int]) -> float:
    """Print calls beside the minimum per operation; returns the total ratio."""
    print(f"  {title:<27} {'calls':>8} {'minimum':>8} {'ratio':>6}")
    for operation, least in minimum.items():
        made = calls.get(operation, 0)
        print(f"  {operation:<27} {made:>8,} {least:>8,} {made / least:>6.3f}")
    total, least = sum(calls.get(op, 0) for op in minimum), sum(minimum.values())
    ratio = total / least
    print(
        f"  {'total':<27} {total:>8,} {least:>8,} {ratio:>6.3f}   target <= 1.05: "
        + ("met" if ratio <= 1.05 else "MISSED")
    )
    return ratio


def run_size(endpoint: str, databases: int, tables: int, partitions: int) -> dict[str, Any]:
    """Populate, export, import and print the figures of one size."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    rows = layout(databases, tables, partitions)
    big = sum(1 for _, _, n in rows if n >= 1000)
    others = sorted({n for _, _, n in rows[big:]})
    print(
        f"\n== {databases:,} databases, {tables:,} tables, {partitions:,} partitions: {big} tables of "
        f"{rows[0][2]:,} partitions, the others {'-'.join(str(n) for n in others[:: max(1, len(others) - 1)])}; "
        f"{databases} user-defined functions"
    )
    start = time.perf_counter()
    populated = populate(endpoint, rows)
    print(f"populated in {time.perf_counter() - start:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in populated.items()))

    export = measure("export", endpoint)
    print(
        f"export: {export['wall']:.1f} s, peak RSS {export['rss_peak_mib']:.1f} MiB "
        f"(before exporting: {export['rss_before_mib']:.1f} MiB, "
        f"so +{export['rss_peak_mib'] - export['rss_before_mib']:.1f})"
    )
    print(
        f"  stored {export['objects']} objects, {export['stored_bytes'] / 2**20:.1f} MiB of gzip NDJSON; "
        f"counts {export['counts']}"
    )
    print("  S3 calls: " + ", ".join(f"{k} {v}" for k, v in sorted(export["s3_calls"].items())))
    retried = {
        op: n - export["calls"].get(op, 0) for op, n in export["attempts"].items() if n != export["calls"].get(op, 0)
    }
    print(
        f"  retried attempts: {retried or 'none'}; "
        f"the manifest's api_calls agree: {export['manifest_calls'] == export['calls']}"
    )
    export_ratio = table("Glue (export)", export["calls"], minimum_export(rows))

    imported = measure("import", endpoint, export["prefix"])
    report = imported["report"]
    print(
        f"import: {imported['wall']:.1f} s, peak RSS {imported['rss_peak_mib']:.1f} MiB "
        f"(before importing: {imported['rss_before_mib']:.1f} MiB); failed items: {report['failed']}"
    )
    print("  created: " + ", ".join(f"{kind} {c['created']:,}" for kind, c in report["counts"].items()))
    reads = {op: n for op, n in imported["calls"].items() if op not in WRITE_OPERATIONS}
    print(f"  reads besides (what the target holds): {reads}")
    import_ratio = table("Glue writes (import)", imported["calls"], minimum_import(rows))
    differ = spot_check(endpoint, rows)
    print(f"  spot check, partitions of 25 tables read back from both regions: {differ} differ")
    return {"export": export, "import": imported, "export_ratio": export_ratio, "import_ratio": import_ratio}


def main() -> None:
    """Start the server, run each size, print the figures and the memory comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=200_000)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0], help="fractions of the size to run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.child:
        kind, endpoint, *rest = args.child
        result = child_export(endpoint) if kind == "export" else child_import(endpoint, rest[0])
        print(json.dumps(result))
        return

    print(
        "moto's Glue does not page GetDatabases/GetTables/GetPartitions and has no user-defined functions: the "
        "moto server of this bench pages them as AWS documents and holds functions (a shim in this file)."
    )
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **CREDENTIALS},
    )
    try:
        assert server.stdout is not None
        endpoint = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        os.environ.update(CREDENTIALS)
        results = []
        for scale in args.scales:
            sizes = (max(1, round(args.databases * scale)), round(args.tables * scale), round(args.partitions * scale))
            results.append((sizes, run_size(endpoint, *sizes)))
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)

    print("\n== peak RSS by size (target: export <= 200 MB, flat across sizes)")
    for (_, tables, partitions), result in results:
        print(
            f"  {tables:>7,} tables {partitions:>8,} partitions: export {result['export']['rss_peak_mib']:6.1f} MiB,"
            f" import {result['import']['rss_peak_mib']:6.1f} MiB"
        )
    peaks = [r["export"]["rss_peak_mib"] for _, r in results]
    limit = 200e6 / 2**20  # 200 MB in MiB
    print(f"  export peak <= 200 MB ({limit:.1f} MiB): {'met' if max(peaks) <= limit else 'MISSED'}")
    if len(peaks) > 1:
        print(
            f"  export peak, largest size over smallest: {peaks[-1] / peaks[0]:.3f} ({peaks[-1] - peaks[0]:+.1f} MiB)"
        )


if __name__ == "__main__":
    main()
