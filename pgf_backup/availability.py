"""Where AWS offers a feature, from botocore's endpoint data (read by the builders and by the backup outputs' check).

CloudWatch cross-account observability (the `oam` API): "available in all commercial Regions" is not assumed; the
regions botocore knows for the service are
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Unified-Cross-Account.html).
"""

from __future__ import annotations

import botocore.session

from pgf_backup.config import WorkloadStack

OAM_SERVICE = "oam"


def oam_regions() -> frozenset[str]:
    """Regions whose endpoints botocore knows for the `oam` service (aws partition)."""
    return frozenset(botocore.session.get_session().get_available_regions(OAM_SERVICE))


def linked_regions(cfg: WorkloadStack) -> list[str]:
    """The regions where this account links its metrics to the backup account's sink (cross-account dashboards)."""
    settings = cfg.dashboards
    if not (settings.enabled and settings.cross_account):
        return []
    offered = oam_regions()
    return [region for region in cfg.regions.all if region in offered]
