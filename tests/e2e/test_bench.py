"""``make bench`` prints a cost line per workflow, runs both modes to the end and prints its
last line as documented."""

from __future__ import annotations

import re
import subprocess
import sys

from careflow.localcloud.demo import demos
from tests.e2e.support import ENV, ROOT

NUMBER = r"(\d+(?:\.\d+)?)"
COST = re.compile(
    rf"cost workflow=(\S+)(?: case=(\S+))? transitions={NUMBER} "
    rf"lambda_invocations={NUMBER} usd_per_1000={NUMBER}"
)


def test_bench_prices_each_workflow_measures_both_modes_and_ends_with_the_ratio_line():
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
            "--api-requests",
            "2",
            "--mllp-messages",
            "20",
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

    costs = [
        m for line in lines if line.startswith("cost workflow=") for m in [COST.fullmatch(line)]
    ]
    assert all(costs), [line for line in lines if line.startswith("cost workflow=")]
    per_workflow = {m[1]: m for m in costs if m and m[2] is None}
    assert len(per_workflow) == len([m for m in costs if m and m[2] is None])  # one line each
    assert set(per_workflow) == {wf.id for wf in demos()}
    for m in costs:
        assert m is not None
        transitions, invocations, usd = float(m[3]), float(m[4]), float(m[5])
        assert transitions > 0 and invocations > 0 and usd > 0
        # a case is at least its transitions' price ($0.025 per 1,000 transitions)
        assert usd >= transitions * 0.025 * 0.999
    (api,) = [line for line in lines if line.startswith("api ")]
    measured = re.fullmatch(
        rf"api route=GET/v1/instances/\{{id\}} clients=32 requests=64 p50_ms={NUMBER} "
        rf"p99_ms={NUMBER} req_per_s={NUMBER} target_p99_ms=50",
        api,
    )
    assert measured, api
    assert 0 < float(measured[1]) <= float(measured[2])
    mllp = [
        re.fullmatch(
            rf"mllp messages=20 msg_per_s=(\d+) ack_p50_ms={NUMBER} ack_p99_ms={NUMBER}",
            line,
        )
        for line in lines
        if line.startswith("mllp ")
    ]
    assert len(mllp) == 1 and mllp[0], [line for line in lines if line.startswith("mllp")]
    assert int(mllp[0][1]) > 0 and 0 < float(mllp[0][2]) <= float(mllp[0][3])

    happy = [m for m in costs if m and (m[1], m[2]) == ("surgical-case-readiness", "appt-1001")]
    assert len(happy) == 1
    assert float(happy[0][5]) < 0.60  # the ceiling per 1,000 happy-path cases
