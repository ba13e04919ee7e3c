"""``make bench`` runs both modes to the end and prints its last line as documented."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.e2e.support import ENV, ROOT


def test_bench_measures_both_modes_and_ends_with_the_ratio_line():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "careflow.localcloud.bench",
            "--no-cold-start",
            "--executions",
            "4",
            "--stock-executions",
            "2",
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"stock\s+2\s+[\d.]+\s+[\d.]+", lines[-3].strip()), lines
    assert re.fullmatch(r"local\s+4\s+[\d.]+\s+[\d.]+", lines[-2].strip()), lines
    last = re.fullmatch(
        r"ratio=([\d.]+) local_exec_per_s=([\d.]+) stock_exec_per_s=([\d.]+)", lines[-1]
    )
    assert last, lines[-1]
    ratio, local, stock = (float(g) for g in last.groups())
    assert local > 0 and stock > 0
    assert abs(ratio - local / stock) <= 0.1 + 0.05 * ratio  # printed values are rounded
