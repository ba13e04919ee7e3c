"""``make bench`` prints a cost line per workflow, runs both modes to the end (surgical
readiness alone, then the mix of every registered workflow) and prints its last line as
documented. Every registered workflow is in the mix (the ones that wait for a person or a
later event through their bench case's driver)."""

from __future__ import annotations

import re
import subprocess
import sys

from careflow.kit.registry import workflows
from careflow.localcloud.demo import demos
from tests.e2e.support import ENV, ROOT

NUMBER = r"(\d+(?:\.\d+)?)"
COST = re.compile(
    rf"cost workflow=(\S+)(?: case=(\S+))? transitions={NUMBER} "
    rf"lambda_invocations={NUMBER} usd_per_1000={NUMBER}"
)


MIX_MEASURED = re.compile(
    rf"mix workflow=(\S+) local_exec_per_s={NUMBER} stock_exec_per_s={NUMBER} ratio={NUMBER}"
)
MIX_UNSUPPORTED = re.compile(
    rf"mix workflow=(\S+) local_exec_per_s={NUMBER} stock=unsupported \((.+)\)"
)
MIX_EXCLUDED = re.compile(r"mix workflow=(\S+) excluded \((.+)\)")
MIX_LAST = re.compile(
    rf"ratio={NUMBER} local_exec_per_s={NUMBER} stock_exec_per_s={NUMBER} workflows=(\d+)"
    r"(?: stock_unsupported=(\S+))?"
)


def _close(ratio: float, local: float, stock: float) -> bool:
    return abs(ratio - local / stock) <= 0.1 + 0.05 * ratio  # printed values are rounded


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
            "--mix-executions",
            "2",
            "--mix-stock-executions",
            "1",
            "--model-samples",
            "5",
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    # one line per trained triage model (JSON scorer vs scikit-learn), then their cold cost
    from careflow.ml import registry

    trained = [m for m in registry.definitions() if registry.artifact(m)]
    models = [line for line in lines if line.startswith("models model=")]
    assert [line.split()[1] for line in models] == [f"model={m}" for m in trained], lines
    for line in models:
        assert re.fullmatch(
            r"models model=\w+ local_pred_per_s=\d+ sklearn_pred_per_s=\d+ ratio=[\d.]+ n=5",
            line,
        ), line
    assert any(
        re.fullmatch(r"models cold_load_ms=\d+ sklearn_import_ms=\d+ ratio=[\d.]+", x)
        for x in lines
    ), lines
    table = lines.index(next(line for line in lines if line.startswith("mode ")))
    assert re.fullmatch(r"stock\s+2\s+[\d.]+\s+[\d.]+", lines[table + 1].strip()), lines
    assert re.fullmatch(r"local\s+4\s+[\d.]+\s+[\d.]+", lines[table + 2].strip()), lines
    surgical = re.fullmatch(
        r"surgical ratio=([\d.]+) local_exec_per_s=([\d.]+) stock_exec_per_s=([\d.]+)",
        lines[table + 3],
    )
    assert surgical, lines[table + 3]
    ratio, local, stock = (float(g) for g in surgical.groups())
    assert local > 0 and stock > 0 and _close(ratio, local, stock)

    # one mix line per registered workflow, in the registry's order, then the mix's line
    registered = workflows()
    mix = lines[table + 4 : table + 4 + len(registered)]
    assert len(mix) == len(registered) and lines[table + 4 + len(registered) :] == [lines[-1]]
    measured, unsupported = {}, []
    for wf, line in zip(registered, mix, strict=True):
        # the mix is of every workflow: those that wait for people or events are driven
        assert wf.bench is not None and not MIX_EXCLUDED.fullmatch(line), line
        if m := MIX_MEASURED.fullmatch(line):
            assert m[1] == wf.id, line
            ratio, local, stock = float(m[4]), float(m[2]), float(m[3])
            assert local > 0 and stock > 0 and _close(ratio, local, stock), line
            measured[wf.id] = (local, stock)
        else:
            m = MIX_UNSUPPORTED.fullmatch(line)
            assert m and m[1] == wf.id and float(m[2]) > 0, line
            unsupported.append(wf.id)
    assert measured, mix
    last = MIX_LAST.fullmatch(lines[-1])
    assert last, lines[-1]
    ratio, local, stock = float(last[1]), float(last[2]), float(last[3])
    assert local > 0 and stock > 0 and _close(ratio, local, stock)
    assert int(last[4]) == len(measured)
    assert (last[5] or "") == ",".join(unsupported)

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
