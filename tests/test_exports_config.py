"""The `exports` section of a workload stack: defaults, which exports run where, and what is refused."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from botocore.loaders import Loader

from pgf_backup.config import ConfigError, WorkloadStack
from pgf_backup.project import Project
from tests.conftest import config_of, stack_values

KEY = "pgf-backup:exports"


def _values(project: Project, stack: str, exports: dict[str, Any] | None = None) -> dict[str, Any]:
    """A shipped stack's values, with `exports` replaced when given."""
    values = copy.deepcopy(stack_values(project, stack))
    if exports is not None:
        values[KEY] = exports
    return values


def _workload(values: dict[str, Any]) -> WorkloadStack:
    config = config_of(values)
    assert isinstance(config, WorkloadStack)
    return config


def _cloudwatch_retentions() -> list[int]:
    """The retentions CloudWatch Logs accepts, as botocore's model documents them (shape `Days`)."""
    documentation = Loader().load_service_model("logs", "service-2")["shapes"]["Days"]["documentation"]
    listed = re.search(r"Possible values are: ([\d, and]+)\.", documentation)
    assert listed, documentation
    return [int(n) for n in re.findall(r"\d+", listed.group(1))]


@pytest.mark.parametrize(
    ("stack", "catalog", "quicksight"),
    [("lab", True, False), ("dev", True, False), ("prod", True, True)],
)
def test_shipped_stacks_export_the_catalog_everywhere_and_quicksight_in_prod(
    project: Project, stack: str, catalog: bool, quicksight: bool
) -> None:
    config = _workload(_values(project, stack))
    assert config.exports is not None
    assert (config.catalog_export, config.quicksight_export) == (catalog, quicksight)


def test_without_exports_nothing_is_exported(project: Project) -> None:
    values = _values(project, "prod")
    del values[KEY]
    config = _workload(values)
    assert config.exports is None
    assert not config.catalog_export and not config.quicksight_export


def test_defaults_of_a_bucket_alone(project: Project) -> None:
    config = _workload(_values(project, "dev", {"bucket": "pgf-dev-exports"}))
    exports = config.exports
    assert exports is not None
    assert exports.bucket == "pgf-dev-exports"
    assert exports.log_retention_days == 365 and exports.noncurrent_version_expiration_days == 90
    catalog, quicksight = exports.catalog, exports.quicksight
    assert (catalog.schedule, catalog.timezone) == ("cron(0 3 * * ? *)", "UTC")
    assert (quicksight.schedule, quicksight.timezone) == ("cron(30 3 * * ? *)", "UTC")
    for export in (catalog, quicksight):
        assert export.enabled is None  # the export's default: see the properties below
        assert (export.timeout_seconds, export.memory_mb) == (900, 512)
    assert catalog.include_table_versions is False
    assert config.catalog_export and not config.quicksight_export


@pytest.mark.parametrize(
    ("stack", "catalog", "quicksight", "expected"),
    [
        ("prod", None, False, (True, False)),
        ("prod", False, None, (False, True)),
        ("prod", False, False, (False, False)),
        ("dev", None, True, (True, True)),
        ("lab", True, True, (True, True)),
        ("lab", False, None, (False, False)),
        ("dev", True, False, (True, False)),
    ],
)
def test_enabled_overrides_the_default_both_ways(
    project: Project, stack: str, catalog: bool | None, quicksight: bool | None, expected: tuple[bool, bool]
) -> None:
    values = _values(project, stack)
    for name, enabled in (("catalog", catalog), ("quicksight", quicksight)):
        if enabled is not None:
            values[KEY].setdefault(name, {})["enabled"] = enabled
    config = _workload(values)
    assert (config.catalog_export, config.quicksight_export) == expected


def test_every_retention_cloudwatch_accepts_is_accepted(project: Project) -> None:
    for days in _cloudwatch_retentions():
        values = _values(project, "dev")
        values[KEY]["log_retention_days"] = days
        exports = _workload(values).exports
        assert exports is not None and exports.log_retention_days == days


@pytest.mark.parametrize("days", [0, 2, 100, 366, 3650, 10_000, -1])
def test_a_retention_cloudwatch_refuses_is_refused_with_the_allowed_values(project: Project, days: int) -> None:
    values = _values(project, "prod")
    values[KEY]["log_retention_days"] = days
    with pytest.raises(ConfigError) as raised:
        config_of(values)
    (line,) = [line for line in str(raised.value).splitlines() if "log_retention_days" in line]
    assert line.startswith("pgf-backup:exports.log_retention_days: ")
    assert str(days) in line
    listed = [int(n) for n in re.findall(r"\d+", line.partition("allowed days:")[2])]
    assert listed == _cloudwatch_retentions()


@pytest.mark.parametrize("export", ["catalog", "quicksight"])
def test_timeout_above_lambdas_fifteen_minutes_is_refused(project: Project, export: str) -> None:
    values = _values(project, "prod")
    values[KEY][export]["timeout_seconds"] = 901
    with pytest.raises(ConfigError, match=rf"pgf-backup:exports\.{export}\.timeout_seconds: .*900"):
        config_of(values)
    values[KEY][export]["timeout_seconds"] = 900
    exports = _workload(values).exports
    assert exports is not None and getattr(exports, export).timeout_seconds == 900


@pytest.mark.parametrize("memory", [127, 10_241])
def test_memory_outside_lambdas_range_is_refused(project: Project, memory: int) -> None:
    values = _values(project, "prod")
    values[KEY]["catalog"]["memory_mb"] = memory
    with pytest.raises(ConfigError, match=r"pgf-backup:exports\.catalog\.memory_mb: "):
        config_of(values)


@pytest.mark.parametrize("bucket", ["Pgf-Exports", "pgf_exports", "ab", "-pgf-exports", "pgf-exports-", "p" * 64])
def test_a_bucket_name_s3_refuses_is_refused(project: Project, bucket: str) -> None:
    values = _values(project, "prod")
    values[KEY]["bucket"] = bucket
    with pytest.raises(ConfigError, match=r"pgf-backup:exports\.bucket: "):
        config_of(values)


def test_the_export_bucket_cannot_also_be_an_application_bucket(project: Project) -> None:
    values = _values(project, "prod")
    application = sorted(values["pgf-backup:buckets"])[0]
    values[KEY]["bucket"] = application
    with pytest.raises(ConfigError) as raised:
        config_of(values)
    message = str(raised.value)
    assert f"pgf-backup:exports.bucket: {application!r} is also under buckets" in message
    assert "give the exports their own bucket" in message


def test_exports_in_the_backup_stack_are_refused_as_a_workload_key(project: Project) -> None:
    values = copy.deepcopy(stack_values(project, "backup"))
    values[KEY] = {"bucket": "pgf-backup-exports-100000000010"}
    with pytest.raises(ConfigError) as raised:
        config_of(values)
    (line,) = [line for line in str(raised.value).splitlines() if line.startswith("pgf-backup:exports")]
    assert "workload account" in line, line


@pytest.mark.parametrize(
    ("export", "field", "value", "message"),
    [
        ("catalog", "schedule", "cron(0 3 * * *)", r"has 5 cron fields; AWS needs 6"),
        ("quicksight", "schedule", "every day", r"pgf-backup:exports\.quicksight\.schedule: "),
        ("catalog", "timezone", "Mars/Olympus", r"is not an IANA time zone"),
        ("quicksight", "timezone", "EST5", r"pgf-backup:exports\.quicksight\.timezone: "),
    ],
)
def test_schedules_and_time_zones_are_checked_like_the_plans(
    project: Project, export: str, field: str, value: str, message: str
) -> None:
    values = _values(project, "prod")
    values[KEY][export][field] = value
    with pytest.raises(ConfigError, match=message) as raised:
        config_of(values)
    assert f"pgf-backup:exports.{export}.{field}: " in str(raised.value)


def test_an_unknown_key_is_refused(project: Project) -> None:
    values = _values(project, "prod")
    values[KEY]["catalog"]["schedul"] = "cron(0 4 * * ? *)"
    with pytest.raises(ConfigError, match=r"pgf-backup:exports\.catalog\.schedul"):
        config_of(values)


def test_the_bucket_is_required(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"pgf-backup:exports\.bucket"):
        config_of(_values(project, "prod", {"catalog": {"enabled": True}}))
