"""Shared fixtures: one local cloud per test process (moto's backends are process-wide)."""

from __future__ import annotations

import logging

import pytest

from careflow.localcloud.cloud import LocalCloud, free_port


@pytest.fixture(scope="session")
def cloud():
    for name in ("werkzeug", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with LocalCloud(free_port(), payer_ticker=True) as c:
        yield c
