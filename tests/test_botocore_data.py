"""botocore's endpoint data, read once per process: the regions botocore's own session lists, for less."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.loaders import Loader

from pgf_backup import availability, botocore_data
from pgf_backup.botocore_data import available_regions, collector_paused, endpoint_regions


@pytest.fixture
def fresh() -> Iterator[None]:
    """Forget what this process read, before and after the test."""
    botocore_data._regional_endpoints.cache_clear()
    availability.oam_regions.cache_clear()
    yield
    botocore_data._regional_endpoints.cache_clear()
    availability.oam_regions.cache_clear()


@pytest.mark.parametrize(
    ("service", "partition"),
    [
        ("oam", "aws"),
        ("backup", "aws"),
        ("backup", "aws-cn"),
        ("backup", "aws-us-gov"),
        ("s3", "aws"),
        # Global services have no regional endpoint: none listed, as by botocore.
        ("iam", "aws"),
        ("no-such-service", "aws"),
    ],
)
def test_available_regions_are_those_botocore_lists(service: str, partition: str) -> None:
    expected = frozenset(botocore.session.get_session().get_available_regions(service, partition))
    assert available_regions(service, partition) == expected


def test_oam_regions_are_those_botocore_lists(fresh: None) -> None:
    offered = availability.oam_regions()
    assert offered == frozenset(botocore.session.get_session().get_available_regions("oam"))
    assert "ca-central-1" in offered


def test_endpoint_regions_map_each_region_to_its_partition() -> None:
    regions = endpoint_regions("backup")
    assert regions["ca-central-1"] == "aws"
    assert regions["cn-north-1"] == "aws-cn"
    assert regions["us-gov-west-1"] == "aws-us-gov"
    assert endpoint_regions("no-such-prefix") == {}


def test_the_endpoint_data_is_parsed_once_per_process(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    original = Loader.load_data

    def counting(self: Loader, name: str) -> Any:
        loaded.append(name)
        return original(self, name)

    monkeypatch.setattr(Loader, "load_data", counting)
    availability.oam_regions()
    availability.oam_regions()
    available_regions("backup", "aws-cn")
    endpoint_regions("backup")
    assert loaded.count("endpoints") == 1


def test_reading_the_data_leaves_no_garbage_for_the_collector(fresh: None) -> None:
    # A botocore session holds what it parsed in reference cycles (some 25,000 objects) until a collection.
    gc.collect()
    available_regions("oam")
    assert gc.collect() < 1000


def test_the_collector_runs_again_after_the_pause_even_on_an_error() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_turned_off_before_the_pause_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
