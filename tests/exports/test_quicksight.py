"""QuickSight asset bundles: every QuickSight call through botocore's Stubber (which checks each request and
response against the model; moto has no asset bundle API), S3 through moto."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.stub import ANY, Stubber
from moto import mock_aws

from pgf_backup.exports import quicksight, store
from pgf_backup.exports.quicksight import (
    BODY_MAX_BYTES,
    BundleTooLargeError,
    ImportResult,
    InvalidOverridesError,
    QuickSightExportError,
    QuickSightTimeoutError,
    export_assets,
    import_bundle,
    list_assets,
)
from pgf_backup.exports.store import MANIFEST, InvalidExport

ACCOUNT = "123456789012"  # moto's account: the bucket's owner
OTHER_ACCOUNT = "210987654321"
REGION: Final = "eu-west-1"
BUCKET = "pgf-exports"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
PREFIX = f"quicksight/{ACCOUNT}/{REGION}/20250102T030405Z/"
DOWNLOAD_URL = "https://quicksight-asset-bundle.example/assetbundle.qs?X-Amz-Signature=abc"
JOB_ID = re.compile(r"^pgf-backup-20250102T030405Z-\d+-[0-9a-f]{8}$")

# Asset type -> (operation, result key) as botocore's model and paginators name them.
LISTS = {
    "dashboards": ("ListDashboards", "DashboardSummaryList"),
    "analyses": ("ListAnalyses", "AnalysisSummaryList"),
    "datasets": ("ListDataSets", "DataSetSummaries"),
    "data_sources": ("ListDataSources", "DataSources"),
    "themes": ("ListThemes", "ThemeSummaryList"),
    "folders": ("ListFolders", "FolderSummaryList"),
}
ARN_TYPE = {
    "dashboards": "dashboard",
    "analyses": "analysis",
    "datasets": "dataset",
    "data_sources": "datasource",
    "themes": "theme",
    "folders": "folder",
}


def arn(asset_type: str, n: int) -> str:
    return f"arn:aws:quicksight:{REGION}:{ACCOUNT}:{ARN_TYPE[asset_type]}/{asset_type}-{n}"


def bundle(*names: str) -> bytes:
    """A zip shaped like a .qs bundle."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in names:
            z.writestr(name, json.dumps({"name": name}))
    return out.getvalue()


def summaries(asset_type: str, arns: list[str]) -> list[dict[str, Any]]:
    extra = {"analyses": {"Status": "CREATION_SUCCESSFUL"}}.get(asset_type, {})
    return [{"Arn": a, **extra} for a in arns]


def stub_lists(stub: Stubber, pages: dict[str, list[list[dict[str, Any]]]]) -> None:
    """Queue every List call, in list_assets' order, one response per page, NextToken between pages."""
    for asset_type, (operation, result_key) in LISTS.items():
        type_pages = pages.get(asset_type, [[]])
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
        for n, page in enumerate(type_pages):
            expected: dict[str, Any] = {"AwsAccountId": ACCOUNT, "MaxResults": 100}
            if asset_type == "themes":
                expected["Type"] = "CUSTOM"
            if n:
                expected["NextToken"] = f"{asset_type}-token-{n}"
            response: dict[str, Any] = {result_key: page, "Status": 200, "RequestId": "r"}
            if n + 1 < len(type_pages):
                response["NextToken"] = f"{asset_type}-token-{n + 1}"
            stub.add_response(method, response, expected)


def one_page_each(counts: dict[str, int]) -> dict[str, list[list[dict[str, Any]]]]:
    return {t: [summaries(t, [arn(t, i) for i in range(counts.get(t, 0))])] for t in LISTS}


# The export's decisions, spelled out (not read from the module): QuickSight's own format, each bundle
# self-contained, permissions, tags and folder memberships kept, lenient validation.
DECIDED = {
    "ExportFormat": "QUICKSIGHT_JSON",
    "IncludeAllDependencies": True,
    "IncludePermissions": True,
    "IncludeTags": True,
    "IncludeFolderMemberships": True,
    "ValidationStrategy": {"StrictModeForAllResources": False},
}


def stub_export_job(stub: Stubber, arns: list[str], statuses: list[str], *, final: dict[str, Any]) -> None:
    """One export job: Start, then a Describe per status (the last one merged with `final`)."""
    stub.add_response(
        "start_asset_bundle_export_job",
        {"Arn": "arn:aws:quicksight:eu-west-1:123456789012:asset-bundle-export-job/x", "Status": 202},
        {"AwsAccountId": ACCOUNT, "AssetBundleExportJobId": ANY, "ResourceArns": arns, **DECIDED},
    )
    for n, status in enumerate(statuses):
        response: dict[str, Any] = {"JobStatus": status, "Status": 200}
        if n == len(statuses) - 1:
            response.update(final)
        stub.add_response(
            "describe_asset_bundle_export_job", response, {"AwsAccountId": ACCOUNT, "AssetBundleExportJobId": ANY}
        )


@pytest.fixture
def aws(fake_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION, config=store.RETRY_CONFIG)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def recorded(client: Any) -> list[tuple[str, dict[str, Any]]]:
    """Record every call of `client` (operation, parameters as the caller gave them)."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, dict(params)))

    client.meta.events.register("provide-client-params", record)
    return calls


@pytest.fixture
def qs(aws: None) -> Iterator[tuple[Any, Stubber, list[tuple[str, dict[str, Any]]]]]:
    """A QuickSight client with adaptive retries, its Stubber (active) and the calls it received."""
    client = boto3.client("quicksight", region_name=REGION, config=store.RETRY_CONFIG)
    calls = recorded(client)
    with Stubber(client) as stub:
        yield client, stub, calls


class Sleeps:
    """A fake `sleep` that records what it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def downloads(*bodies: bytes) -> tuple[Callable[[str], io.BytesIO], list[str]]:
    """A fake `download` returning each body in turn, and the URLs it was given."""
    urls: list[str] = []
    queue = list(bodies)

    def fetch(url: str) -> io.BytesIO:
        urls.append(url)
        return io.BytesIO(queue.pop(0))

    return fetch, urls


def keys(s3: Any, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def export(s3: Any, qs: Any, stub: Stubber, counts: dict[str, int], bodies: list[bytes]) -> dict[str, Any]:
    """A finished export of `counts` assets (jobs of 100 ARNs), each job successful at once."""
    stub_lists(stub, one_page_each(counts))
    typed = [arn(t, i) for t in LISTS for i in range(counts.get(t, 0))]
    for i in range(0, len(typed), 100):
        stub_export_job(stub, typed[i : i + 100], ["SUCCESSFUL"], final={"DownloadUrl": DOWNLOAD_URL})
    fetch, _ = downloads(*bodies)
    manifest = export_assets(
        qs, s3, account_id=ACCOUNT, region=REGION, bucket=BUCKET, now=NOW, sleep=Sleeps(), download=fetch
    )
    stub.assert_no_pending_responses()
    return manifest


# -- the model's limits and states -----------------------------------------------------------------------


def test_constants_are_the_models(aws: None) -> None:
    model = boto3.client("quicksight", region_name=REGION).meta.service_model
    assert model.shape_for("AssetBundleResourceArns").metadata["max"] == quicksight.MAX_ARNS_PER_JOB
    assert model.shape_for("MaxResults").metadata["max"] == quicksight.PAGE_SIZE
    assert model.shape_for("AssetBundleImportBodyBlob").metadata["max"] == BODY_MAX_BYTES
    assert model.shape_for("ShortRestrictiveResourceId").metadata["pattern"] == r"[\w\-]+"
    assert model.shape_for("ShortRestrictiveResourceId").metadata["max"] == 512
    assert model.shape_for("AssetBundleExportFormat").enum == ["CLOUDFORMATION_JSON", "QUICKSIGHT_JSON"]
    # The polled states and the final ones split the model's enums exactly: a new state fails this test.
    export_states = set(model.shape_for("AssetBundleExportJobStatus").enum)
    assert export_states == quicksight.EXPORT_RUNNING | quicksight.EXPORT_DONE
    assert not quicksight.EXPORT_RUNNING & quicksight.EXPORT_DONE
    import_states = set(model.shape_for("AssetBundleImportJobStatus").enum)
    assert import_states == quicksight.IMPORT_RUNNING | quicksight.IMPORT_DONE
    assert not quicksight.IMPORT_RUNNING & quicksight.IMPORT_DONE


# -- listing ---------------------------------------------------------------------------------------------


def test_list_assets_pages_every_type(qs: Any) -> None:
    client, stub, calls = qs
    pages = {t: [summaries(t, [arn(t, 0), arn(t, 1)]), summaries(t, [arn(t, 2)])] for t in LISTS}
    # A deleted analysis (recovery window) stays listed until purged: not exported.
    pages["analyses"][1].append({"Arn": arn("analyses", 9), "Status": "DELETED"})
    stub_lists(stub, pages)

    assets = list_assets(client, ACCOUNT)

    stub.assert_no_pending_responses()
    assert assets == {t: [arn(t, 0), arn(t, 1), arn(t, 2)] for t in LISTS}
    assert [name for name, _ in calls] == [op for op, _ in LISTS.values() for _ in range(2)]
    assert all(params["MaxResults"] == 100 for _, params in calls)
    assert [params.get("NextToken") for name, params in calls if name == "ListFolders"] == [None, "folders-token-1"]
    assert all(params["Type"] == "CUSTOM" for name, params in calls if name == "ListThemes")


def test_list_assets_refuses_a_client_without_adaptive_retries(aws: None) -> None:
    client = boto3.client("quicksight", region_name=REGION)
    with Stubber(client), pytest.raises(ValueError, match="adaptive"):
        list_assets(client, ACCOUNT)


# -- export ----------------------------------------------------------------------------------------------


def test_export_splits_jobs_polls_downloads_and_writes_a_verified_manifest(s3: Any, qs: Any) -> None:
    client, stub, calls = qs
    counts = {"dashboards": 150, "analyses": 30, "datasets": 15, "data_sources": 3, "themes": 1, "folders": 2}
    stub_lists(stub, one_page_each(counts))
    typed = [(t, arn(t, i)) for t in LISTS for i in range(counts[t])]
    assert len(typed) == 201
    batches = [typed[:100], typed[100:200], typed[200:]]
    stub_export_job(
        stub,
        [a for _, a in batches[0]],
        ["QUEUED_FOR_IMMEDIATE_EXECUTION", "IN_PROGRESS", "SUCCESSFUL"],
        final={"DownloadUrl": DOWNLOAD_URL, "Warnings": [{"Arn": arn("dashboards", 3), "Message": "visual hidden"}]},
    )
    stub_export_job(
        stub, [a for _, a in batches[1]], ["IN_PROGRESS", "SUCCESSFUL"], final={"DownloadUrl": DOWNLOAD_URL}
    )
    stub_export_job(stub, [a for _, a in batches[2]], ["SUCCESSFUL"], final={"DownloadUrl": DOWNLOAD_URL})
    bodies = [bundle("dashboard/a.json", "dataset/b.json"), bundle("dashboard/c.json"), bundle("folder/d.json")]
    fetch, urls = downloads(*bodies)
    sleeps = Sleeps()

    manifest = export_assets(
        client,
        s3,
        account_id=ACCOUNT,
        region=REGION,
        bucket=BUCKET,
        now=NOW,
        poll_interval=2.5,
        sleep=sleeps,
        download=fetch,
    )

    stub.assert_no_pending_responses()
    starts = [params for name, params in calls if name == "StartAssetBundleExportJob"]
    assert [len(p["ResourceArns"]) for p in starts] == [100, 100, 1]
    job_ids = [p["AssetBundleExportJobId"] for p in starts]
    assert len(set(job_ids)) == 3
    assert all(JOB_ID.fullmatch(j) for j in job_ids)
    describes = [params["AssetBundleExportJobId"] for name, params in calls if name == "DescribeAssetBundleExportJob"]
    assert describes == [job_ids[0]] * 3 + [job_ids[1]] * 2 + [job_ids[2]]
    assert sleeps.calls == [2.5, 2.5, 2.5]  # between the Describe calls of a job, never after its last
    assert urls == [DOWNLOAD_URL] * 3

    assert store.verify(s3, BUCKET, PREFIX) == manifest
    assert manifest["prefix"] == PREFIX
    assert manifest["source"] == "quicksight"
    assert manifest["asset_counts"] == counts
    assert manifest["counts"] == {"bundle": 3, "assets": 201}
    assert [job["job_id"] for job in manifest["jobs"]] == job_ids
    assert [job["bundle"] for job in manifest["jobs"]] == ["bundle-1.qs", "bundle-2.qs", "bundle-3.qs"]
    assert [job["zip_entries"] for job in manifest["jobs"]] == [2, 1, 1]
    assert manifest["jobs"][0]["warnings"] == [{"Arn": arn("dashboards", 3), "Message": "visual hidden"}]
    assert manifest["export_options"] == DECIDED
    for n, body in enumerate(bodies, start=1):
        assert s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}bundle-{n}.qs")["Body"].read() == body
    assets_key = next(o["key"] for o in manifest["objects"] if o["kind"] == "assets")
    listing = list(store.iter_ndjson(s3, BUCKET, PREFIX + assets_key))
    assert [(r["bundle"], r["type"], r["arn"]) for r in listing] == [
        (f"bundle-{n}.qs", t, a) for n, batch in enumerate(batches, start=1) for t, a in batch
    ]
    assert {r["job_id"] for r in listing if r["bundle"] == "bundle-2.qs"} == {job_ids[1]}
    assert DOWNLOAD_URL not in json.dumps(manifest)  # a pre-signed URL is never stored


def test_export_with_kms_key_encrypts_every_object(s3: Any, qs: Any) -> None:
    client, stub, _ = qs
    key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    stub_lists(stub, one_page_each({"dashboards": 1}))
    stub_export_job(stub, [arn("dashboards", 0)], ["SUCCESSFUL"], final={"DownloadUrl": DOWNLOAD_URL})
    fetch, _ = downloads(bundle("dashboard/a.json"))

    export_assets(
        client, s3, account_id=ACCOUNT, region=REGION, bucket=BUCKET, kms_key_id=key_id, now=NOW, download=fetch
    )

    for key in keys(s3, PREFIX):
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_id), key


def test_a_failed_job_raises_its_errors_and_leaves_no_export(s3: Any, qs: Any) -> None:
    client, stub, _ = qs
    stub_lists(stub, one_page_each({"dashboards": 101}))
    stub_export_job(
        stub, [arn("dashboards", i) for i in range(100)], ["SUCCESSFUL"], final={"DownloadUrl": DOWNLOAD_URL}
    )
    errors = [
        {"Arn": arn("dashboards", 100), "Type": "com.amazonaws.services.quicksight.model.Forbidden", "Message": "no"},
        {"Arn": arn("dashboards", 100), "Type": "InvalidDataSet", "Message": "dataset gone"},
    ]
    stub_export_job(stub, [arn("dashboards", 100)], ["IN_PROGRESS", "FAILED"], final={"Errors": errors})
    fetch, _ = downloads(bundle("dashboard/a.json"))

    with pytest.raises(QuickSightExportError, match="dataset gone") as raised:
        export_assets(
            client, s3, account_id=ACCOUNT, region=REGION, bucket=BUCKET, now=NOW, sleep=Sleeps(), download=fetch
        )

    assert raised.value.errors == errors
    assert JOB_ID.fullmatch(raised.value.job_id)
    stub.assert_no_pending_responses()
    assert not [k for k in keys(s3) if k.endswith(MANIFEST)]  # the first job's bundle stays, without a manifest
    with pytest.raises(InvalidExport, match="manifest missing"):
        store.read_manifest(s3, BUCKET, PREFIX)


def test_a_slow_job_times_out_and_leaves_no_export(s3: Any, qs: Any) -> None:
    client, stub, _ = qs
    stub_lists(stub, one_page_each({"themes": 1}))
    stub_export_job(stub, [arn("themes", 0)], ["QUEUED_FOR_IMMEDIATE_EXECUTION"] + ["IN_PROGRESS"] * 4, final={})
    sleeps = Sleeps()

    with pytest.raises(QuickSightTimeoutError, match=r"still IN_PROGRESS after 20 s") as raised:
        export_assets(
            client,
            s3,
            account_id=ACCOUNT,
            region=REGION,
            bucket=BUCKET,
            now=NOW,
            poll_interval=5,
            timeout=20,
            sleep=sleeps,
            download=downloads()[0],
        )

    assert raised.value.status == "IN_PROGRESS"
    assert sleeps.calls == [5, 5, 5, 5]
    stub.assert_no_pending_responses()
    assert not [k for k in keys(s3) if k.endswith(MANIFEST)]


def test_a_state_the_model_does_not_know_stops_the_export(s3: Any, qs: Any) -> None:
    client, stub, _ = qs
    stub_lists(stub, one_page_each({"themes": 1}))
    stub_export_job(stub, [arn("themes", 0)], ["PAUSED"], final={})

    with pytest.raises(quicksight.QuickSightError, match="unexpected JobStatus 'PAUSED'"):
        export_assets(client, s3, account_id=ACCOUNT, region=REGION, bucket=BUCKET, now=NOW, sleep=Sleeps())
    assert not [k for k in keys(s3) if k.endswith(MANIFEST)]


def test_a_download_that_is_not_a_zip_is_refused(s3: Any, qs: Any) -> None:
    client, stub, _ = qs
    stub_lists(stub, one_page_each({"datasets": 1}))
    stub_export_job(stub, [arn("datasets", 0)], ["SUCCESSFUL"], final={"DownloadUrl": DOWNLOAD_URL})
    truncated = bundle("dataset/a.json", "dataset/b.json")[:-30]
    fetch, _ = downloads(truncated)

    with pytest.raises(QuickSightExportError, match="not a zip"):
        export_assets(client, s3, account_id=ACCOUNT, region=REGION, bucket=BUCKET, now=NOW, download=fetch)

    assert not [k for k in keys(s3) if k.endswith(MANIFEST)]


def test_an_account_without_assets_exports_an_empty_manifest(s3: Any, qs: Any) -> None:
    client, stub, calls = qs
    stub_lists(stub, one_page_each({}))

    manifest = export_assets(client, s3, account_id=ACCOUNT, region=REGION, bucket=BUCKET, now=NOW)

    assert not [name for name, _ in calls if name.startswith("Start")]
    assert manifest["jobs"] == []
    assert manifest["asset_counts"] == dict.fromkeys(LISTS, 0)
    assert store.verify(s3, BUCKET, PREFIX) == manifest


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arns_per_job": 101}, "arns_per_job"),
        ({"arns_per_job": 0}, "arns_per_job"),
        ({"job_prefix": "pgf backup"}, "does not match"),
        ({"timeout": 0}, "positive"),
        ({"now": datetime(2025, 1, 2)}, "time zone"),
    ],
)
def test_export_refuses_bad_arguments_before_any_call(s3: Any, qs: Any, kwargs: dict[str, Any], message: str) -> None:
    client, _, calls = qs
    with pytest.raises(ValueError, match=message):
        export_assets(client, s3, **{"account_id": ACCOUNT, "region": REGION, "bucket": BUCKET, "now": NOW, **kwargs})
    assert calls == []


def test_export_refuses_an_s3_client_without_adaptive_retries(aws: None, qs: Any) -> None:
    client, _, calls = qs
    s3 = boto3.client("s3", region_name=REGION)
    with pytest.raises(ValueError, match="the s3 client retries in 'standard' mode"):
        export_assets(client, s3, account_id=ACCOUNT, region=REGION, bucket=BUCKET)
    assert calls == []


def test_the_default_download_takes_only_https(aws: None) -> None:
    with pytest.raises(quicksight.QuickSightError, match="not an https URL"):
        quicksight._https_get("file:///etc/passwd")


# -- import ----------------------------------------------------------------------------------------------

OVERRIDES = {
    "DataSources": [
        {
            "DataSourceId": "pgf-rds",
            "DataSourceParameters": {"PostgreSqlParameters": {"Host": "db.clone", "Port": 5432, "Database": "pgf"}},
            "Credentials": {"CredentialPair": {"Username": "qs_reader", "Password": "s3cret-pw"}},
        }
    ],
    "ResourceIdOverrideConfiguration": {"PrefixForAllResources": "clone-"},
}
PERMISSIONS = {
    "Dashboards": [
        {
            "DashboardIds": ["*"],
            "Permissions": {
                "Principals": [f"arn:aws:quicksight:{REGION}:{OTHER_ACCOUNT}:group/default/bi-readers"],
                "Actions": ["quicksight:DescribeDashboard", "quicksight:QueryDashboard"],
            },
        }
    ]
}


@pytest.fixture
def exported(s3: Any, aws: None) -> dict[str, Any]:
    """An export of 101 assets in two bundles, made by export_assets with its own stubbed client."""
    client = boto3.client("quicksight", region_name=REGION, config=store.RETRY_CONFIG)
    with Stubber(client) as stub:
        return export(
            s3,
            client,
            stub,
            {"dashboards": 99, "datasets": 2},
            [bundle("dashboard/a.json", "dataset/b.json"), bundle("dataset/c.json")],
        )


def stub_import(stub: Stubber, statuses: list[str], *, final: dict[str, Any], **expected: Any) -> None:
    stub.add_response(
        "start_asset_bundle_import_job",
        {"Arn": "arn:aws:quicksight:eu-west-1:123456789012:asset-bundle-import-job/x", "Status": 202},
        {"AwsAccountId": ACCOUNT, "AssetBundleImportJobId": ANY, **expected},
    )
    for n, status in enumerate(statuses):
        response: dict[str, Any] = {"JobStatus": status, "Status": 200}
        if n == len(statuses) - 1:
            response.update(final)
        stub.add_response(
            "describe_asset_bundle_import_job", response, {"AwsAccountId": ACCOUNT, "AssetBundleImportJobId": ANY}
        )


def test_import_sends_the_verified_bundle_inline_with_its_overrides(s3: Any, qs: Any, exported: dict[str, Any]) -> None:
    client, stub, calls = qs
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}bundle-2.qs")["Body"].read()
    stub_import(
        stub,
        ["QUEUED_FOR_IMMEDIATE_EXECUTION", "IN_PROGRESS", "SUCCESSFUL"],
        final={"Warnings": [{"Arn": arn("datasets", 1), "Message": "lenient"}]},
        AssetBundleImportSource={"Body": body},
        FailureAction="ROLLBACK",
        OverrideParameters=OVERRIDES,
        OverridePermissions=PERMISSIONS,
    )
    sleeps = Sleeps()

    result = import_bundle(
        client,
        s3,
        account_id=ACCOUNT,
        bucket=BUCKET,
        key=f"{PREFIX}bundle-2.qs",
        override_parameters=json.loads(json.dumps(OVERRIDES)),  # as loaded from a JSON file
        override_permissions=PERMISSIONS,
        poll_interval=1,
        sleep=sleeps,
        job_id="pgf-restore-1",
    )

    stub.assert_no_pending_responses()
    assert [p["AssetBundleImportJobId"] for _, p in calls] == ["pgf-restore-1"] * 4
    assert sleeps.calls == [1, 1]
    assert result.ok
    assert (result.status, result.source, result.job_id, result.dry_run) == (
        "SUCCESSFUL",
        "Body",
        "pgf-restore-1",
        False,
    )
    assert result.bundle_bytes == len(body)
    assert result.warnings == [{"Arn": arn("datasets", 1), "Message": "lenient"}]
    assert result.assets == [{"type": "datasets", "arn": arn("datasets", 1)}]
    assert result.overrides == {
        "OverrideParameters": ["DataSources", "ResourceIdOverrideConfiguration"],
        "OverridePermissions": ["Dashboards"],
    }
    report = json.loads(result.to_json())
    assert report["ok"] is True
    assert "s3cret-pw" not in result.to_json()


def test_a_failed_import_reports_the_errors_aws_returned(s3: Any, qs: Any, exported: dict[str, Any]) -> None:
    client, stub, _ = qs
    errors = [{"Arn": arn("dashboards", 4), "Type": "InvalidParameterValueException", "Message": "bad sheet"}]
    rollback_errors = [{"Arn": arn("datasets", 0), "Type": "ConflictException", "Message": "in use"}]
    stub_import(
        stub,
        ["IN_PROGRESS", "FAILED_ROLLBACK_IN_PROGRESS", "FAILED_ROLLBACK_COMPLETED"],
        final={"Errors": errors, "RollbackErrors": rollback_errors},
        AssetBundleImportSource=ANY,
        FailureAction="ROLLBACK",
    )

    result = import_bundle(
        client, s3, account_id=ACCOUNT, bucket=BUCKET, key=f"{PREFIX}bundle-1.qs", poll_interval=1, sleep=Sleeps()
    )

    stub.assert_no_pending_responses()
    assert not result.ok
    assert result.status == "FAILED_ROLLBACK_COMPLETED"
    assert (result.errors, result.rollback_errors) == (errors, rollback_errors)
    assert re.fullmatch(r"pgf-import-\d{8}T\d{6}Z-1-[0-9a-f]{8}", result.job_id or "")
    report = json.loads(result.to_json())
    assert (report["ok"], report["errors"], report["rollback_errors"]) == (False, errors, rollback_errors)
    assert len(report["assets"]) == 100


def test_an_import_that_does_not_finish_times_out(s3: Any, qs: Any, exported: dict[str, Any]) -> None:
    client, stub, _ = qs
    stub_import(stub, ["IN_PROGRESS"] * 3, final={}, AssetBundleImportSource=ANY, FailureAction="DO_NOTHING")

    with pytest.raises(QuickSightTimeoutError, match="import job pgf-restore-2 still IN_PROGRESS"):
        import_bundle(
            client,
            s3,
            account_id=ACCOUNT,
            bucket=BUCKET,
            key=f"{PREFIX}bundle-1.qs",
            failure_action="DO_NOTHING",
            poll_interval=10,
            timeout=20,
            sleep=Sleeps(),
            job_id="pgf-restore-2",
        )
    stub.assert_no_pending_responses()


def test_dry_run_verifies_and_reports_without_starting_a_job(s3: Any, qs: Any, exported: dict[str, Any]) -> None:
    client, _, calls = qs  # nothing queued: any QuickSight call would fail

    result = import_bundle(
        client,
        s3,
        account_id=OTHER_ACCOUNT,
        bucket=BUCKET,
        key=f"{PREFIX}bundle-1.qs",
        override_parameters=OVERRIDES,
        dry_run=True,
    )

    assert calls == []
    assert (result.status, result.job_id, result.dry_run, result.ok) == ("DRY_RUN", None, True, True)
    assert result.source == "Body"
    assert result.assets == [{"type": "dashboards", "arn": arn("dashboards", i)} for i in range(99)] + [
        {"type": "datasets", "arn": arn("datasets", 0)}
    ]
    assert result.sha256 == next(o["sha256"] for o in exported["objects"] if o["key"] == "bundle-1.qs")
    assert "s3cret-pw" not in result.to_json()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DataSources": [{"Name": "no id"}]}, 'Missing required parameter in DataSources\\[0\\]: "DataSourceId"'),
        ({"Dashboards": [{"DashboardId": "d", "Title": "x"}]}, 'Unknown parameter in Dashboards\\[0\\]: "Title"'),
        ({"DataSources": {"DataSourceId": "d"}}, "Invalid type for parameter DataSources"),
        ({"Datasources": []}, 'Unknown parameter in input: "Datasources"'),
    ],
)
def test_invalid_overrides_are_refused_before_any_call(
    aws: None, qs: Any, overrides: dict[str, Any], message: str
) -> None:
    client, _, calls = qs
    s3 = boto3.client("s3", region_name=REGION, config=store.RETRY_CONFIG)
    with Stubber(s3), pytest.raises(InvalidOverridesError, match=message):  # S3 stubbed empty too: no read either
        import_bundle(
            client, s3, account_id=ACCOUNT, bucket=BUCKET, key=f"{PREFIX}bundle-1.qs", override_parameters=overrides
        )
    assert calls == []


def test_a_wrongly_typed_secret_is_not_echoed(aws: None, qs: Any) -> None:
    client, _, _ = qs
    s3 = boto3.client("s3", region_name=REGION, config=store.RETRY_CONFIG)
    bad = {
        "DataSources": [{"DataSourceId": "d", "Credentials": {"CredentialPair": {"Username": "u", "Password": 987654}}}]
    }
    with Stubber(s3), pytest.raises(InvalidOverridesError, match="Password") as raised:
        import_bundle(
            client, s3, account_id=ACCOUNT, bucket=BUCKET, key=f"{PREFIX}bundle-1.qs", override_parameters=bad
        )
    assert "987654" not in str(raised.value)


def test_invalid_permission_overrides_are_refused(aws: None, qs: Any) -> None:
    client, _, _ = qs
    s3 = boto3.client("s3", region_name=REGION, config=store.RETRY_CONFIG)
    with Stubber(s3), pytest.raises(InvalidOverridesError, match=r"OverridePermissions(.|\n)*Actions(.|\n)*Principals"):
        import_bundle(
            client,
            s3,
            account_id=ACCOUNT,
            bucket=BUCKET,
            key=f"{PREFIX}bundle-1.qs",
            override_permissions={"Dashboards": [{"DashboardIds": ["*"], "Permissions": {"Principals": []}}]},
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_action": "IGNORE"}, "failure_action"),
        ({"job_id": "a/b"}, "does not match"),
        ({"timeout": -1}, "positive"),
    ],
)
def test_import_refuses_bad_arguments_before_any_call(aws: None, qs: Any, kwargs: dict[str, Any], message: str) -> None:
    client, _, calls = qs
    s3 = boto3.client("s3", region_name=REGION, config=store.RETRY_CONFIG)
    with Stubber(s3), pytest.raises(ValueError, match=message):
        import_bundle(client, s3, account_id=ACCOUNT, bucket=BUCKET, key=f"{PREFIX}bundle-1.qs", **kwargs)
    assert calls == []


def test_a_tampered_bundle_is_refused(s3: Any, qs: Any, exported: dict[str, Any]) -> None:
    client, _, calls = qs
    original = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}bundle-2.qs")["Body"].read()
    tampered = original.replace(b"dataset/c.json", b"dataset/x.json")
    assert len(tampered) == len(original) and tampered != original
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}bundle-2.qs", Body=tampered)

    with pytest.raises(InvalidExport, match=r"bundle-2\.qs: sha256 mismatch"):
        import_bundle(client, s3, account_id=ACCOUNT, bucket=BUCKET, key=f"{PREFIX}bundle-1.qs")
    assert calls == []


def test_a_bundle_changed_between_verification_and_import_is_refused(
    s3: Any, qs: Any, exported: dict[str, Any]
) -> None:
    client, _, calls = qs
    key = f"{PREFIX}bundle-1.qs"
    reads: list[str] = []

    def swap_after_verification(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetObject" and params["Key"] == key:
            reads.append(key)
            if len(reads) == 2:  # verify read it once; this is the read of the bytes to send
                s3.put_object(Bucket=BUCKET, Key=key, Body=bundle("dashboard/evil.json"))

    s3.meta.events.register("provide-client-params.s3", swap_after_verification)

    with pytest.raises(InvalidExport, match="changed since its export was verified"):
        import_bundle(client, s3, account_id=ACCOUNT, bucket=BUCKET, key=key)
    assert calls == []


def test_a_key_outside_an_export_is_refused(s3: Any, qs: Any, exported: dict[str, Any]) -> None:
    client, _, calls = qs
    with pytest.raises(InvalidExport, match="not listed"):
        import_bundle(client, s3, account_id=ACCOUNT, bucket=BUCKET, key=f"{PREFIX}bundle-9.qs")
    assets_key = next(o["key"] for o in exported["objects"] if o["kind"] == "assets")
    with pytest.raises(InvalidExport, match="not a bundle"):
        import_bundle(client, s3, account_id=ACCOUNT, bucket=BUCKET, key=PREFIX + assets_key)
    with pytest.raises(InvalidExport, match="manifest missing"):
        import_bundle(client, s3, account_id=ACCOUNT, bucket=BUCKET, key="elsewhere/bundle-1.qs")
    assert calls == []


def test_an_export_of_something_else_is_refused(s3: Any, qs: Any) -> None:
    client, _, calls = qs
    writer = store.ExportWriter(s3, BUCKET, "catalog/x/")
    writer.put_stream("bundle", "bundle-1.qs", io.BytesIO(bundle("a.json")))
    writer.finish(source="glue")

    with pytest.raises(InvalidExport, match="not a QuickSight export"):
        import_bundle(client, s3, account_id=ACCOUNT, bucket=BUCKET, key="catalog/x/bundle-1.qs")
    assert calls == []


def test_a_bundle_over_the_inline_limit_goes_by_s3_uri_from_a_bucket_of_the_account(
    s3: Any, qs: Any, exported: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stub, _ = qs
    monkeypatch.setattr(quicksight, "BODY_MAX_BYTES", 100)  # the bundles here are a few hundred bytes
    stub_import(
        stub,
        ["SUCCESSFUL"],
        final={},
        AssetBundleImportSource={"S3Uri": f"s3://{BUCKET}/{PREFIX}bundle-1.qs"},
        FailureAction="ROLLBACK",
    )

    result = import_bundle(client, s3, account_id=ACCOUNT, bucket=BUCKET, key=f"{PREFIX}bundle-1.qs")

    stub.assert_no_pending_responses()
    assert (result.status, result.source) == ("SUCCESSFUL", "S3Uri")


def test_a_bundle_over_the_inline_limit_in_another_accounts_bucket_is_explained(
    s3: Any, qs: Any, exported: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, calls = qs
    monkeypatch.setattr(quicksight, "BODY_MAX_BYTES", 100)
    owners: list[str] = []

    def not_the_owner(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        # moto ignores ExpectedBucketOwner; S3 answers 403 when the bucket belongs to another account.
        owners.append(params["headers"].get("x-amz-expected-bucket-owner", ""))
        error = {"Error": {"Code": "403", "Message": "Forbidden"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return AWSResponse("", 403, HTTPHeaders(), None), error

    s3.meta.events.register("before-call.s3.HeadObject", not_the_owner)

    with pytest.raises(BundleTooLargeError, match=f"copy the bundle to a bucket of account {OTHER_ACCOUNT}"):
        import_bundle(client, s3, account_id=OTHER_ACCOUNT, bucket=BUCKET, key=f"{PREFIX}bundle-1.qs")
    assert owners == [OTHER_ACCOUNT]
    assert calls == []


def test_import_result_is_frozen_json() -> None:
    result = ImportResult(
        account_id=ACCOUNT,
        bucket=BUCKET,
        key="k",
        status="FAILED",
        job_id="j",
        source="Body",
        bundle_bytes=1,
        sha256="0" * 64,
        failure_action="ROLLBACK",
        overrides={},
        assets=[],
        errors=[{"Arn": "a", "Type": "t", "Message": "m"}],
        rollback_errors=[],
        warnings=[],
        dry_run=False,
    )
    assert json.loads(result.to_json())["errors"] == [{"Arn": "a", "Type": "t", "Message": "m"}]
    assert not result.ok
    with pytest.raises(AttributeError):
        result.status = "SUCCESSFUL"  # type: ignore[misc]
