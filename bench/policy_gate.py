"""Wall time of the policy gate for 10,000 resources through the gRPC Analyzer protocol (target: < 10 s).

The inventory is the real prod stack recorded by the offline engine, copied under new names (vaults,
keys, locks, policies, topics, providers) until it holds N resources, plus data resources (buckets with
their protections, RDS, Lambda) so that every rule has work. Usage: `python bench/policy_gate.py [N]`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from pgf_backup.automation.gate import PolicyGate, tier_config
from pgf_backup.automation.offline import plan_stack
from pgf_backup.project import Project

ROOT = Path(__file__).resolve().parents[1]


def _renamed(resources: list[dict[str, Any]], copy: int) -> list[dict[str, Any]]:
    """A copy of a recorded stack whose URNs and AWS names are unique to `copy`."""
    text = json.dumps(resources)
    for old in ("pgf-prod", "prod-ca-central-1", "prod-ca-west-1", "aws-400000000040"):
        text = text.replace(old, f"{old}-{copy}")
    loaded: list[dict[str, Any]] = json.loads(text)
    return loaded


def _data_resources(index: int, provider: str) -> list[dict[str, Any]]:
    """A protected bucket with its four companions, an RDS instance and a Lambda function."""
    prefix = "urn:pulumi:prod::pgf-backup::"
    bucket = f"pgf-data-{index}"
    tags = {"backup:enabled": "true", "backup:tier": "prod", "data:classification": "confidential"}

    def resource(kind: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {
            "urn": f"{prefix}{kind}::{name}",
            "type": kind,
            "name": name,
            "parent": "",
            "provider": provider,
            "protect": False,
            "retainOnDelete": False,
            "custom": True,
            "inputs": inputs,
        }

    key = "arn:aws:kms:ca-central-1:400000000040:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    tls = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    return [
        resource("aws:s3/bucket:Bucket", bucket, {"bucket": bucket, "tags": tags}),
        resource(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"{bucket}-versioning",
            {"bucket": bucket, "versioningConfiguration": {"status": "Enabled"}},
        ),
        resource(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{bucket}-sse",
            {
                "bucket": bucket,
                "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}}],
            },
        ),
        resource(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{bucket}-pab",
            {
                "bucket": bucket,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
        ),
        resource("aws:s3/bucketPolicy:BucketPolicy", f"{bucket}-policy", {"bucket": bucket, "policy": json.dumps(tls)}),
        resource(
            "aws:rds/instance:Instance",
            f"pgf-db-{index}",
            {
                "backupRetentionPeriod": 35,
                "storageEncrypted": True,
                "kmsKeyId": key,
                "deletionProtection": True,
                "multiAz": True,
                "tags": tags,
            },
        ),
        resource(
            "aws:lambda/function:Function",
            f"pgf-fn-{index}",
            {"publish": True, "environment": {"variables": {"DB_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:x"}}},
        ),
    ]


def inventory(target: int) -> list[dict[str, Any]]:
    """N resources: copies of the recorded prod stack, and data resources, all compliant."""
    project = Project.find(ROOT)
    backup = plan_stack(project, "backup")
    prod = plan_stack(project, "prod", {project.stack_reference_name("backup"): backup.outputs})
    resources: list[dict[str, Any]] = []
    copy = 0
    while len(resources) < target:
        batch = _renamed(prod.resources, copy)
        provider = next(r["urn"] for r in batch if r["type"].startswith("pulumi:providers:"))
        resources += batch + _data_resources(copy, provider)
        copy += 1
    return resources[:target]


def main(argv: list[str]) -> int:
    """Print the gate's wall time for N resources (default 10,000)."""
    target = int(argv[0]) if argv else 10_000
    resources = inventory(target)
    policy_dir = ROOT / "policy"
    started = time.perf_counter()
    with PolicyGate(policy_dir) as gate:
        verdict = gate.analyze("prod", "pgf-backup", resources, tier_config(policy_dir, "prod"))
    elapsed = time.perf_counter() - started
    print(
        f"policy gate: {len(resources):,} resources, {len(verdict.violations)} violations, "
        f"passed={verdict.passed}: {elapsed:.2f} s (start, configure, Analyze x{len(resources):,}, AnalyzeStack, stop)"
    )
    for violation in verdict.violations[:5]:
        print(f"  {violation.enforcement} {violation.policy} {violation.urn}: {violation.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
