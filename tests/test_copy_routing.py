"""Copy routing (issue 14): backup:copy_to_region and backup:copy_to_account turn a copy on or off, among those the
plan allows (plan.tag_copies), and each resource is still selected by exactly one plan of its tier.

A copy of the project where dev lets both tags turn its copies off, with two retention classes; it is planned against
the shipped backup stack's outputs. Prod refuses copy routing: every prod rule copies to both.
"""

from __future__ import annotations

import copy
import shutil
from typing import Any

import pytest
import yaml

from pgf_backup.automation.offline import StackPlan, plan_stack
from pgf_backup.config import ConfigError
from pgf_backup.project import Project
from tests.conftest import config_of, stack_values
from tests.test_tag_routing import PLAN, _plans_selecting, _selections

DEV = {"backup:enabled": "true", "backup:tier": "dev", "application": "pgf"}
S3 = "arn:aws:s3:::pgf-unlisted-bucket"
RDS = "arn:aws:rds:ca-central-1:300000000030:cluster:pgf-unlisted-cluster"
BACKUP_ACCOUNT = "100000000010"
NO_REGION = {"backup:copy_to_region": "none"}
NO_ACCOUNT = {"backup:copy_to_account": "none"}


@pytest.fixture(scope="module")
def routed(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The project with dev's plan routing copies (both tags) and two retention classes (7 and 14 days)."""
    root = tmp_path_factory.mktemp("copy-routing")
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.backup.yaml", "Pulumi.lab.yaml", "Pulumi.prod.yaml"):
        shutil.copy(project.root / name, root / name)
    dev = yaml.safe_load((project.root / "Pulumi.dev.yaml").read_text())
    dev["config"]["pgf-backup:plan"].update(tag_copies=["copy_to_region", "copy_to_account"], retention_classes=[14])
    dev["config"]["pgf-backup:buckets"]["pgf-documents-dev"]["copy_to_region"] = "none"
    (root / "Pulumi.dev.yaml").write_text(yaml.safe_dump(dev))
    return Project.find(root)


@pytest.fixture(scope="module")
def dev(routed: Project, backup_outputs: dict[str, Any]) -> StackPlan:
    return plan_stack(routed, "dev", {"organization/pgf-backup/backup": backup_outputs})


def _copies(plan: StackPlan, name: str) -> set[str]:
    """Where the plan `name`'s daily rule copies: `region` (the copy region), `central` (the backup account)."""
    plans = {r["inputs"]["name"]: r["inputs"] for r in plan.resources if r["type"] == PLAN}
    rule = next(rule for rule in plans[name]["rules"] if rule["ruleName"] == "daily")
    found = set()
    for action in rule.get("copyActions") or []:
        arn = action["destinationVaultArn"]
        found.add("region" if ":ca-west-1:" in arn else "central" if f":{BACKUP_ACCOUNT}:" in arn else arn)
    return found


# (resource, its tags besides the tier's, the one plan that must select it, where that plan copies)
ROUTES = [
    (S3, {}, "pgf-dev", {"central", "region"}),
    (S3, {"backup:copy_to_region": "ca-west-1"}, "pgf-dev", {"central", "region"}),
    (S3, {"backup:copy_to_account": BACKUP_ACCOUNT}, "pgf-dev", {"central", "region"}),
    (S3, NO_REGION, "pgf-dev-noregion", {"central"}),
    (S3, NO_ACCOUNT, "pgf-dev-noaccount", {"region"}),
    (S3, {**NO_REGION, **NO_ACCOUNT}, "pgf-dev-noregion-noaccount", set()),
    (S3, {**NO_ACCOUNT, "backup:retention_days": "14"}, "pgf-dev-14d-noaccount", {"region"}),
    # A value outside the allowed ones is the default (verify names it): never a resource left without a plan.
    (S3, {"backup:copy_to_region": "us-east-1"}, "pgf-dev", {"central", "region"}),
    (S3, {"backup:copy_to_account": "300000000030"}, "pgf-dev", {"central", "region"}),
    (RDS, NO_REGION, "pgf-dev-noregion", {"central"}),
    # Listed by ARN: its configured copy tag routes it, whatever it carries in AWS.
    ("arn:aws:s3:::pgf-documents-dev", {}, "pgf-dev-noregion", {"central"}),
    ("arn:aws:rds:ca-central-1:300000000030:cluster:pgf-core", NO_REGION, "pgf-dev", {"central", "region"}),
]


@pytest.mark.parametrize(("arn", "tags", "expected", "copies"), ROUTES)
def test_copy_tags_route_each_resource_to_exactly_one_plan_and_its_copies(
    dev: StackPlan, arn: str, tags: dict[str, str], expected: str, copies: set[str]
) -> None:
    assert _plans_selecting(_selections(dev), arn, {**DEV, **tags}) == {expected}
    assert _copies(dev, expected) == copies


def test_plan_outputs_show_the_copies_of_each_listed_resource(dev: StackPlan) -> None:
    documents = dev.outputs["buckets"]["pgf-documents-dev"]
    assert documents["backup"] == "plan pgf-dev-noregion, selection by ARN"
    assert documents["routing"] == {"vault": "dev", "retention_days": 7, "copies": ["backup_account"]}
    assert dev.outputs["databases"]["pgf-core"]["routing"]["copies"] == ["backup_account", "copy_region"]
    assert len(dev.outputs["backup_plans"]) == 8  # 2 classes x region copy on/off x account copy on/off


def test_a_tag_may_turn_a_copy_on_when_the_plan_does_not_copy(project: Project) -> None:
    values = copy.deepcopy(stack_values(project, "dev"))
    values["pgf-backup:plan"].update(copy_to_region=False, tag_copies=["copy_to_region"])
    cfg = config_of(values)
    variants = cfg.plan_variants(cfg.plan)  # type: ignore[arg-type, union-attr]
    assert [(v.plan_name, v.equals, v.targets(cfg.copy_targets())) for v in variants] == [  # type: ignore[union-attr]
        ("pgf-dev", {}, ["backup_account"]),
        ("pgf-dev-region", {"backup:copy_to_region": "ca-west-1"}, ["backup_account", "copy_region"]),
    ]
    assert variants[0].not_equals == [("backup:copy_to_region", "ca-west-1")]
    assert cfg.copy_tag_values(cfg.plan) == {  # type: ignore[union-attr]
        "backup:copy_to_region": ("ca-west-1", "none"),
        "backup:copy_to_account": (BACKUP_ACCOUNT,),
    }


def _mutated(project: Project, stack: str, mutate: Any) -> str:
    values = copy.deepcopy(stack_values(project, stack))
    mutate(values)
    with pytest.raises(ConfigError) as caught:
        config_of(values)
    return str(caught.value)


@pytest.mark.parametrize(
    ("stack", "mutate", "expected"),
    [
        # In prod every rule copies to both (policy rule prod-copies-leave-account-and-region).
        (
            "prod",
            lambda v: v["pgf-backup:plan"].update(tag_copies=["copy_to_region"]),
            "plan.tag_copies: in prod every rule copies to the backup account and to the copy region",
        ),
        (
            "dev",
            lambda v: (
                v["pgf-backup:regions"].pop("copy") and v["pgf-backup:plan"].update(tag_copies=["copy_to_region"])
            ),
            "plan.tag_copies: copy_to_region needs a copy region (regions.copy)",
        ),
        (
            "dev",
            lambda v: v["pgf-backup:plan"].update(tag_copies=["copy_to_region", "copy_to_region"]),
            "tag_copies: lists a copy more than once",
        ),
        (
            "prod",
            lambda v: v["pgf-backup:buckets"]["pgf-exports-prod"].update(copy_to_region="none"),
            "buckets.pgf-exports-prod.copy_to_region: 'none' is not a value backup:copy_to_region may take here "
            "(ca-west-1;",
        ),
        (
            "prod",
            lambda v: v["pgf-backup:databases"]["pgf-core"].update(copy_to_account="300000000030"),
            "databases.pgf-core.copy_to_account: '300000000030' is not a value backup:copy_to_account may take here "
            f"({BACKUP_ACCOUNT};",
        ),
        (
            "dev",
            lambda v: (
                v["pgf-backup:plan"].update(copy_to_air_gapped=True, copy_to_backup_account=False)
                or v["pgf-backup:plan"].update(tag_copies=["copy_to_account"])
            ),
            "with copy_to_air_gapped: true set copy_to_backup_account: true too",
        ),
        # AWS Backup's selection names are 1 to 50 characters (botocore's Backup model, BackupSelectionName).
        (
            "dev",
            lambda v: (
                v["pgf-backup:tags"].update(application="pgf-application-longer")
                or v["pgf-backup:plan"].update(tag_copies=["copy_to_region", "copy_to_account"])
            ),
            "the plan 'pgf-application-longer-dev-noregion-noaccount' (vault 'dev', class 7 days) names its selection",
        ),
    ],
)
def test_copy_routing_config_errors_name_the_key(project: Project, stack: str, mutate: Any, expected: str) -> None:
    assert expected in _mutated(project, stack, mutate)
