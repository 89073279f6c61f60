"""Pulumi mock runtime that answers as AWS would and records every registered resource."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

SECRET_SIG = rpc._special_sig_key
SECRET_PLACEHOLDER = "[secret]"

# type token -> (service, resource part of the ARN, regional?, in an account?)
_ARNS: dict[str, tuple[str, str, bool, bool]] = {
    "aws:kms/key:Key": ("kms", "key/{id}", True, True),
    "aws:kms/replicaKey:ReplicaKey": ("kms", "key/{id}", True, True),
    "aws:kms/alias:Alias": ("kms", "{name}", True, True),
    "aws:backup/vault:Vault": ("backup", "backup-vault:{name}", True, True),
    "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault": ("backup", "backup-vault:{name}", True, True),
    "aws:backup/plan:Plan": ("backup", "backup-plan:{id}", True, True),
    "aws:backup/framework:Framework": ("backup", "framework:{name}-{id}", True, True),
    "aws:backup/reportPlan:ReportPlan": ("backup", "report-plan:{name}", True, True),
    "aws:backup/restoreTestingPlan:RestoreTestingPlan": ("backup", "restore-testing-plan:{name}", True, True),
    "aws:sns/topic:Topic": ("sns", "{name}", True, True),
    "aws:sqs/queue:Queue": ("sqs", "{name}", True, True),
    "aws:iam/role:Role": ("iam", "role/{name}", False, True),
    "aws:iam/policy:Policy": ("iam", "policy/{name}", False, True),
    "aws:s3/bucket:Bucket": ("s3", "{name}", False, False),
    "aws:s3/bucketV2:BucketV2": ("s3", "{name}", False, False),
    "aws:cloudwatch/eventRule:EventRule": ("events", "rule/{name}", True, True),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch", "alarm:{name}", True, True),
    "aws:cloudwatch/logGroup:LogGroup": ("logs", "log-group:{name}", True, True),
    "aws:cfg/rule:Rule": ("config", "config-rule/config-rule-{id}", True, True),
    "aws:lambda/function:Function": ("lambda", "function:{name}", True, True),
    "aws:secretsmanager/secret:Secret": ("secretsmanager", "secret:{name}-{id}", True, True),
    "aws:organizations/policy:Policy": ("organizations", "policy/o-mock/backup_policy/p-{id}", False, True),
    "aws:glue/job:Job": ("glue", "job/{name}", True, True),
    "aws:oam/sink:Sink": ("oam", "sink/{id}", True, True),
    "aws:oam/link:Link": ("oam", "link/{id}", True, True),
}
_ID_IS_ARN = {"aws:sns/topic:Topic", "aws:iam/policy:Policy", "aws:sqs/queue:Queue"}
_ID_IS_NAME = {
    "aws:backup/vault:Vault",
    "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault",
    "aws:iam/role:Role",
    "aws:kms/alias:Alias",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:lambda/function:Function",
}


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _uuid(seed: str) -> str:
    h = _digest(seed)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _listish(value: Any) -> list[Any]:
    # Provider inputs reach the monitor as JSON text for non-string values.
    if isinstance(value, str) and value[:1] == "[":
        loaded = json.loads(value)
        return loaded if isinstance(loaded, list) else []
    return list(value) if isinstance(value, (list, tuple)) else []


def partition_of(region: str) -> str:
    """The ARN partition of a region."""
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


@dataclass
class AwsMocks(pulumi_mocks.Mocks):
    """Answers resource registrations and invokes with the ids and ARNs AWS would give."""

    default_account: str = "000000000000"
    default_region: str = "us-east-1"
    # Outputs of other stacks, by fully qualified stack reference name.
    stack_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _providers: dict[str, tuple[str, str]] = field(default_factory=dict)

    def _where(self, provider_ref: str | None, inputs: dict[str, Any]) -> tuple[str, str]:
        provider_id = (provider_ref or "").rsplit("::", 1)[-1]
        account, region = self._providers.get(provider_id, (self.default_account, self.default_region))
        return account, str(inputs.get("region") or region)

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """State of a new resource: its inputs plus what AWS computes (id, arn, name)."""
        inputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(inputs.get("name", args.name))
            return name, {"name": name, "outputs": self.stack_outputs.get(name, {}), "secretOutputNames": []}
        if args.typ.startswith("pulumi:providers:"):
            provider_id = _uuid(args.name)
            accounts = _listish(inputs.get("allowedAccountIds"))
            self._providers[provider_id] = (
                str(accounts[0]) if accounts else self.default_account,
                str(inputs.get("region") or self.default_region),
            )
            return provider_id, inputs
        if not args.custom:
            return None, {}
        account, region = self._where(args.provider, inputs)
        seed = f"{args.typ}|{args.name}|{account}|{region}"
        state: dict[str, Any] = {**inputs, "region": region}
        # A bucket is named by its `bucket` input (S3 has no `name`).
        name = str(inputs.get("name") or inputs.get("bucket") or f"{args.name}-{_digest(seed)[:7]}")
        state.setdefault("name", name)
        resource_id = _uuid(seed)
        if args.typ == "aws:kms/key:Key":
            resource_id = f"mrk-{_digest(seed)[:32]}" if inputs.get("multiRegion") else resource_id
            state["keyId"] = resource_id
        elif args.typ == "aws:kms/replicaKey:ReplicaKey":
            resource_id = str(inputs.get("primaryKeyArn", "")).rsplit("/", 1)[-1] or resource_id
            state["keyId"] = resource_id
        elif args.typ in _ID_IS_NAME:
            resource_id = name
        fmt = _ARNS.get(args.typ)
        if fmt is not None:
            service, resource, regional, in_account = fmt
            state["arn"] = (
                f"arn:{partition_of(region)}:{service}:{region if regional else ''}:"
                f"{account if in_account else ''}:{resource.format(id=resource_id, name=name)}"
            )
            if args.typ in _ID_IS_ARN:
                resource_id = state["arn"]
        if args.typ == "aws:lambda/function:Function" and inputs.get("publish"):
            # A published function's first version ("Versions are numbered sequentially starting from 1").
            state["version"] = "1"
        if args.typ == "aws:lambda/alias:Alias":
            # An alias ARN is its function's ARN and the alias name (Lambda's CreateAlias: AliasArn).
            state["arn"] = (
                f"arn:{partition_of(region)}:lambda:{region}:{account}:function:{inputs.get('functionName')}:{name}"
            )
        if args.typ == "aws:scheduler/schedule:Schedule":
            group = inputs.get("groupName") or "default"
            state["arn"] = f"arn:{partition_of(region)}:scheduler:{region}:{account}:schedule/{group}/{name}"
        if args.typ == "aws:cloudwatch/dashboard:Dashboard":
            # Dashboards are global: "arn:aws:cloudwatch::<account>:dashboard/<name>" (CloudWatch's resource types).
            name = str(inputs.get("dashboardName") or name)
            state["dashboardArn"] = f"arn:{partition_of(region)}:cloudwatch::{account}:dashboard/{name}"
            resource_id = name
        if args.typ in ("aws:oam/sink:Sink", "aws:oam/link:Link"):
            state["sinkId" if args.typ == "aws:oam/sink:Sink" else "linkId"] = resource_id
        if args.typ == "aws:iam/role:Role":
            state["uniqueId"] = "AROA" + _digest(seed)[:17].upper()
        if args.typ == "aws:backup/plan:Plan":
            state["version"] = _digest(seed, "version")[:32]
        return resource_id, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """Invokes: caller identity, region and partition of the provider used."""
        account, region = self._where(args.provider, dict(args.args))
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:{partition_of(region)}:sts::{account}:assumed-role/offline/pgf-backup"
            return {"accountId": account, "arn": arn, "userId": "AROAOFFLINE:pgf-backup", "id": account}, None
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region}, None
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": partition_of(region), "dnsSuffix": "amazonaws.com", "id": partition_of(region)}, None
        return {}, None


def plain(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of wire value
    """A recorded value with secrets replaced by a placeholder (never printed)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == rpc._special_secret_sig:
            return SECRET_PLACEHOLDER
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, pulumi.Resource):
        return None
    if isinstance(value, pulumi.FileArchive):
        # The path as the program gave it (relative to the project: the same on every machine).
        return {"fileArchive": value.path}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire carries numbers as doubles; days and counts are integers
    return value


@dataclass(frozen=True)
class Recorded:
    """One registered resource, as the engine sees it."""

    urn: str
    type: str
    name: str
    parent: str
    provider: str
    protect: bool
    retain_on_delete: bool
    custom: bool
    inputs: dict[str, Any]
    # The ARN the mocks gave it, as AWS would: the path checks find a key or topic by it.
    arn: str = ""

    def to_json(self) -> dict[str, Any]:
        """The plan's JSON shape of a resource."""
        data: dict[str, Any] = {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "custom": self.custom,
            "inputs": self.inputs,
        }
        if self.arn:
            data["arn"] = self.arn
        return data


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping parent, provider, protect and inputs of each resource."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Recorded] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """Register as the SDK's monitor does, then record the request."""
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = plain(rpc.deserialize_properties(request.object))
        # Only the ARN of the state: read from the protobuf Struct, not deserialized whole (per resource).
        field = response.object.fields.get("arn") if response.object is not None else None
        arn = field.string_value if field is not None and field.WhichOneof("kind") == "string_value" else None
        self.recorded.append(
            Recorded(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                custom=bool(request.custom),
                inputs=inputs,
                arn=arn if isinstance(arn, str) else "",
            )
        )
        return response
