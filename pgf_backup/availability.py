"""Where AWS offers a feature, from botocore's endpoint data (read by the builders and by the backup outputs' check).

CloudWatch cross-account observability (the `oam` API): "available in all commercial Regions" is not assumed; the
regions botocore knows for the service are
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Unified-Cross-Account.html).
"""

from __future__ import annotations

import functools

from pgf_backup.botocore_data import available_regions
from pgf_backup.config import WorkloadStack

OAM_SERVICE = "oam"


@functools.cache
def oam_regions() -> frozenset[str]:
    """Regions whose endpoints botocore knows for the `oam` service (aws partition), read once per process."""
    # The program asks in its builder and again in its check of the backup stack's outputs: botocore's endpoint data
    # is parsed once (see pgf_backup/botocore_data.py).
    return available_regions(OAM_SERVICE)


def linked_regions(cfg: WorkloadStack) -> list[str]:
    """The regions where this account links its metrics to the backup account's sink (cross-account dashboards)."""
    settings = cfg.dashboards
    if not (settings.enabled and settings.cross_account):
        return []
    offered = oam_regions()
    return [region for region in cfg.regions.all if region in offered]
