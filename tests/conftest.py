"""Shared fixtures: one local cloud per test process (moto's backends are process-wide)."""

from __future__ import annotations

import logging
import os

import pytest

from careflow.localcloud.cloud import LocalCloud, free_port_run

# See stacks/__init__.py: jsii's Node 20 end-of-life banner, before any aws_cdk import.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture(scope="session")
def cloud():
    for name in ("werkzeug", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # port and port + 1 (tests start a control server there), below the ephemeral range
    with LocalCloud(free_port_run(2), payer_ticker=True) as c:
        yield c
