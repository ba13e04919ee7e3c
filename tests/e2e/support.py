"""What the end-to-end tests share: the installed commands and how to run the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from careflow.localcloud.cloud import free_port_run

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CAREFLOW = str(BIN / "careflow")
AWS = str(BIN / "aws")
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PYTHONUNBUFFERED": "1",
}


def run_demo(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``careflow demo`` on a free port, in its own process."""
    return subprocess.run(
        [CAREFLOW, "demo", "--port", str(free_port_run()), *args],
        cwd=ROOT,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
