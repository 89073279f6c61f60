"""The project on disk: project-level config in Pulumi.yaml, merged with the stack files as the Pulumi CLI does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pgf_backup.config import ConfigError
from pgf_backup.project import Project

STACKS = ("backup", "lab", "dev", "prod")


def _copy(project: Project, target: Path) -> Project:
    for name in ("Pulumi.yaml", "__main__.py", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        shutil.copy(project.root / name, target / name)
    return Project.find(target)


def test_shared_values_come_from_pulumi_yaml(project: Project) -> None:
    """The shipped stack files set no accounts, regions or roles: every stack reads Pulumi.yaml's."""
    for stack in STACKS:
        assert "pgf-backup:accounts" not in project.stack_settings(stack)["config"]
        cfg = project.load_config(stack)
        assert cfg.accounts["backup"] == "100000000010"
        assert (cfg.regions.primary, cfg.regions.copy_region) == ("ca-central-1", "ca-west-1")
        assert cfg.iam.break_glass_role == "pgf-backup-break-glass"


def test_a_stack_files_value_replaces_the_projects_whole(project: Project, tmp_path: Path) -> None:
    """As the CLI's mergeConfig: the project value applies only where the stack has none; objects are not merged."""
    copy = _copy(project, tmp_path)
    lab = copy.stack_file("lab")
    lab.write_text(
        lab.read_text().replace("config:\n", "config:\n  pgf-backup:regions:\n    primary: ca-central-1\n", 1)
    )
    assert copy.load_config("lab").regions.copy_region is None  # not merged with the project's `copy`
    assert copy.load_config("dev").regions.copy_region == "ca-west-1"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "  pgf-backup:scheduling: account\n",
            "is read by Pulumi as a type; write it as `pgf-backup:scheduling: {value: ...}`",
        ),
        (
            "  pgf-backup:tags:\n    application: pgf\n",
            "'application' are not settings of a project-level config entry",
        ),
        (
            "  pgf-backup:scheduling:\n    value: account\n    default: account\n",
            "cannot have both a 'default' and a 'value'",
        ),
        ("  aws:region:\n    default: ca-central-1\n", "not namespaced by the project: give it a 'value'"),
        ("  pgf-backup:scheduling:\n    value: account\n    secret: true\n", "project-level config is clear text only"),
    ],
)
def test_project_config_the_cli_would_refuse_is_refused(
    project: Project, tmp_path: Path, entry: str, message: str
) -> None:
    copy = _copy(project, tmp_path)
    manifest = copy.root / "Pulumi.yaml"
    manifest.write_text(manifest.read_text().replace("config:\n", "config:\n" + entry, 1))
    with pytest.raises(ConfigError, match=r"Pulumi\.yaml: config key") as caught:
        copy.load_config("lab")
    assert message in str(caught.value)


def test_other_namespaces_take_bare_values_and_unnamespaced_keys_are_the_projects(
    project: Project, tmp_path: Path
) -> None:
    copy = _copy(project, tmp_path)
    manifest = copy.root / "Pulumi.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "config:\n", "config:\n  aws:skipMetadataApiCheck: true\n  scheduling:\n    value: account\n", 1
        )
    )
    flat, _ = copy.stack_config("lab")
    assert flat["aws:skipMetadataApiCheck"] == "true"
    assert flat["pgf-backup:scheduling"] == "account"


def test_each_stack_file_declares_its_stacks_role(project: Project, tmp_path: Path) -> None:
    """`backup` is the backup account, `management` the management account, every other stack a workload."""
    copy = _copy(project, tmp_path)
    dev = copy.stack_file("dev")
    dev.write_text(dev.read_text().replace("pgf-backup:role: workload", "pgf-backup:role: backup-account"))
    with pytest.raises(ConfigError) as caught:
        copy.load_config("dev")
    assert "pgf-backup:role: 'backup-account' in stack 'dev'; the 'dev' stack's role is 'workload'" in str(caught.value)
    assert copy.load_config("lab").role == "workload"
