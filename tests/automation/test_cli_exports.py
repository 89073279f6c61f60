"""`pgf-backup catalog export|import` and `quicksight import` through the command line, against moto: what an
operator types, what they see, and the exit codes the README documents."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from pgf_backup.automation.cli import main
from pgf_backup.automation.status import ExitStatus
from pgf_backup.exports.store import MANIFEST
from pgf_backup.project import Project
from tests.exports.conftest import fake_credentials
from tests.exports.test_catalog import ACCOUNT, BUCKET, REGION, aws, build_catalog, glue, s3, snapshot, wipe

__all__ = ["aws", "fake_credentials", "glue", "s3"]  # fixtures, used by name


def _run(*argv: str) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def _exports(s3: Any) -> list[str]:
    """The export folders (each with its manifest) in the bucket."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return sorted(key.removesuffix(MANIFEST) for key in keys if key.endswith("/" + MANIFEST))


def test_export_then_import_restores_a_wiped_catalog(glue: Any, s3: Any, tmp_path: Path) -> None:
    build_catalog(glue)
    before = snapshot(glue)
    status, out, err = _run("catalog", "export", "--to", f"s3://{BUCKET}/catalog/", "--region", REGION)
    assert (status, err) == (ExitStatus.OK, "")
    (prefix,) = _exports(s3)
    assert prefix.startswith(f"catalog/{ACCOUNT}/{REGION}/")
    assert f"exported to s3://{BUCKET}/{prefix}" in out and "manifest written last" in out

    wipe(glue)
    report = tmp_path / "report.json"
    status, out, err = _run("catalog", "import", f"s3://{BUCKET}/{prefix}", "--region", REGION, "--json", str(report))
    assert (status, err) == (ExitStatus.OK, ""), err
    assert snapshot(glue) == before
    assert "imported partitions:" in out
    assert json.loads(report.read_text())["errors"] == []


def test_a_dry_run_writes_nothing(glue: Any, s3: Any) -> None:
    build_catalog(glue)
    _run("catalog", "export", "--to", f"s3://{BUCKET}/catalog/", "--region", REGION)
    (prefix,) = _exports(s3)
    wipe(glue)
    status, out, _ = _run("catalog", "import", f"s3://{BUCKET}/{prefix}", "--region", REGION, "--dry-run")
    assert status == ExitStatus.OK and "would import" in out
    assert glue.get_databases()["DatabaseList"] == []


def test_an_existing_database_stops_the_default_import_before_any_write(glue: Any, s3: Any) -> None:
    build_catalog(glue)
    _run("catalog", "export", "--to", f"s3://{BUCKET}/catalog/", "--region", REGION)
    (prefix,) = _exports(s3)
    before = snapshot(glue)
    status, _, err = _run("catalog", "import", f"s3://{BUCKET}/{prefix}", "--region", REGION)
    assert status == ExitStatus.FAILED and err.startswith("error: ") and "exist" in err
    assert snapshot(glue) == before
    # ... and `skip` keeps what exists.
    status, _, err = _run("catalog", "import", f"s3://{BUCKET}/{prefix}", "--region", REGION, "--on-conflict", "skip")
    assert (status, err) == (ExitStatus.OK, "")
    assert snapshot(glue) == before


def test_a_tampered_export_is_refused_naming_the_object(glue: Any, s3: Any) -> None:
    build_catalog(glue)
    _run("catalog", "export", "--to", f"s3://{BUCKET}/catalog/", "--region", REGION)
    (prefix,) = _exports(s3)
    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"] if "partitions" in o["Key"])
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not what was exported")
    wipe(glue)
    status, _, err = _run("catalog", "import", f"s3://{BUCKET}/{prefix}", "--region", REGION)
    assert status == ExitStatus.FAILED
    assert err.startswith("error: invalid export: ") and key in err and "Traceback" not in err
    assert glue.get_databases()["DatabaseList"] == []


def test_a_folder_without_manifest_is_no_export(glue: Any, s3: Any) -> None:
    status, _, err = _run("catalog", "import", f"s3://{BUCKET}/catalog/nothing-here/", "--region", REGION)
    assert status == ExitStatus.FAILED and "manifest missing" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["catalog", "import", "https://example.com/x"], "is not an S3 URL"),
        (["catalog", "import", "s3://my-bucket/p/", "--on-conflict", "merge"], "invalid choice: 'merge'"),
        (["catalog", "export"], None),
        (["quicksight", "import", "s3://my-bucket/p/", "--target-account", "12345"], "not an AWS account id"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv: list[str], message: str | None, capsys: Any, aws: None) -> None:
    status, _, err = _run(*argv)
    assert status == ExitStatus.USAGE
    text = err + capsys.readouterr().err
    assert "Traceback" not in text
    if message is None:  # neither --stack nor --to
        assert "say where to write: --stack NAME" in text
    else:
        assert message in text


def test_an_override_file_that_is_not_json_exits_2(tmp_path: Path, capsys: Any, aws: None) -> None:
    overrides = tmp_path / "overrides.json"
    overrides.write_text("{not json")
    status, _, err = _run("quicksight", "import", "s3://my-bucket/p/", "--override-parameters", str(overrides))
    assert status == ExitStatus.USAGE
    assert f"{overrides} is not JSON" in err + capsys.readouterr().err


def test_stack_credentials_of_another_account_are_refused(project: Project, aws: None) -> None:
    """moto's account is not prod's: the export refuses to write prod's bucket with them."""
    status, _, err = _run("--project-dir", str(project.root), "catalog", "export", "--stack", "prod")
    assert status == ExitStatus.USAGE
    assert f"the credentials are for account {ACCOUNT}, and stack prod is account 400000000040" in err


@pytest.mark.parametrize(
    ("stack", "message"), [("backup", "exports run in workload stacks"), ("nope", "unknown stack")]
)
def test_export_stack_must_be_a_workload_stack_with_exports(project: Project, stack: str, message: str) -> None:
    status, _, err = _run("--project-dir", str(project.root), "quicksight", "export", "--stack", stack)
    assert status == ExitStatus.USAGE and message in err


def test_quicksight_import_of_an_export_without_bundles_exits_1(glue: Any, s3: Any) -> None:
    build_catalog(glue)
    _run("catalog", "export", "--to", f"s3://{BUCKET}/catalog/", "--region", REGION)
    (prefix,) = _exports(s3)
    status, _, err = _run("quicksight", "import", f"s3://{BUCKET}/{prefix}", "--target-region", REGION)
    assert status == ExitStatus.FAILED and "holds no asset bundle" in err
