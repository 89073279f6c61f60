"""botocore's endpoint data, read once per process and kept small.

`endpoints.json` is 1.2 MB of JSON (23,000 objects once parsed). A botocore session keeps what it parsed in
reference cycles until the cycle collector runs, and a parse's objects outlive the collector's young generations:
each read costs the parse and brings the next full collection nearer (0.1 s or more each in a process holding the
Pulumi SDK). Here the data is parsed once with the collector paused, reduced to which regions each service has an
endpoint in, and freed.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import botocore.session
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader, create_loader


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cycle collection inside the block: what it makes and frees by reference counting is never promoted."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@functools.cache
def _data_path() -> str | None:
    """A botocore session's `data_path` setting (AWS_DATA_PATH or the config file): where else it looks for data."""
    path = botocore.session.get_session().get_config_variable("data_path")
    return str(path) if path else None


def _loader() -> Loader:
    """A data loader as a botocore session makes it; a new one each time, as a loader keeps all it loaded."""
    return create_loader(_data_path())


@functools.cache
def _regional_endpoints() -> Mapping[str, Mapping[str, str]]:
    """Endpoint prefix -> {region: partition}: each service's regional endpoints in botocore's endpoint data."""
    found: dict[str, dict[str, str]] = {}
    with collector_paused():
        for part in _loader().load_data("endpoints")["partitions"]:
            regions = part.get("regions", {})
            for prefix, service in part.get("services", {}).items():
                for name in service.get("endpoints", {}):
                    # A regional endpoint only, as botocore's EndpointResolver.get_available_endpoints lists them.
                    if name in regions:
                        found.setdefault(prefix, {})[name] = part["partition"]
    return found


def endpoint_regions(prefix: str) -> Mapping[str, str]:
    """The regions where botocore's endpoint data has an endpoint of `prefix` (as in `endpoints.json`), with their
    partitions."""
    return _regional_endpoints().get(prefix, {})


def available_regions(service: str, partition: str = "aws") -> frozenset[str]:
    """`botocore.session.Session().get_available_regions(service, partition)`, from the data parsed once.

    The same steps as botocore's: the service model's `endpointPrefix` (the service name without one), then that
    prefix's regional endpoints in the partition; an unknown service has none.
    """
    try:
        model = _loader().load_service_model(service, "service-2")
    except UnknownServiceError:
        return frozenset()
    prefix = model["metadata"].get("endpointPrefix", service)
    return frozenset(region for region, part in endpoint_regions(prefix).items() if part == partition)
