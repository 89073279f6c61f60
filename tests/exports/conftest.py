"""What every export test shares: moto's fake credentials, in the region the tests use."""

from __future__ import annotations

import pytest

REGION = "ca-central-1"


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and a region for boto3, so no test ever reaches a real account (moto answers)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
